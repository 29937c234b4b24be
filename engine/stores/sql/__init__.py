"""The durable store on SQLAlchemy/SQLModel: SQLite by default, PostgreSQL for many workers.

The only package of the project that imports SQLAlchemy or SQLModel. `store` composes it over
one `database` (the engine, the dialect, SQLite's `writer_lock`): `tx` is one transaction as the
engine sees it (one class per role over `tx_state`, which `loads` users' state into and `writes`
buffers rows for), and each port the host uses is a module of its own (`outbox`, `views`,
`journeys`, `runs`, `privacy`, `partitions`). `schema` holds the tables and `migrate` makes them
current, `driver` encodes values as the driver wants them, `claims` takes the inbox's events and
the due timers, and `translate` turns SQLAlchemy's errors into `engine.errors.StoreError`.
"""

from engine.errors import StoreError, TemporaryStoreError
from engine.stores.sql.outbox import claim_sql
from engine.stores.sql.schema import MESSAGES
from engine.stores.sql.store import SqlStore
from engine.stores.sql.tx import SqlTx
from engine.stores.sql.writer_lock import WriterLock

__all__ = ["MESSAGES", "SqlStore", "SqlTx", "StoreError", "TemporaryStoreError", "WriterLock", "claim_sql"]
