"""The durable store on SQLAlchemy/SQLModel: SQLite by default, PostgreSQL for many workers.

The only package of the project that imports SQLAlchemy or SQLModel: `store` (the store and
its reads), `tx` (one transaction as the engine sees it), `schema` (the tables), `driver`
(values encoded as the driver wants them), `outbox` (the dispatcher's side of the messages
table), `writer_lock` (SQLite's writers taking turns) and `translate` (SQLAlchemy's errors
become `engine.errors.StoreError`).
"""

from engine.errors import StoreError, TemporaryStoreError
from engine.stores.sql.outbox import claim_sql
from engine.stores.sql.schema import MESSAGES
from engine.stores.sql.store import SqlStore
from engine.stores.sql.tx import SqlTx
from engine.stores.sql.writer_lock import WriterLock

__all__ = ["MESSAGES", "SqlStore", "SqlTx", "StoreError", "TemporaryStoreError", "WriterLock", "claim_sql"]
