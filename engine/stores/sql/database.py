"""One database as every part of the SQL store uses it: SQLAlchemy's engine, the dialect, the URL
to name in messages (without its password), and on SQLite the writers' turns.

Each port of the store (`SqlOutbox`, `SqlRuns`, `SqlJourneys`, `SqlPrivacy`, `SqlViews`, `SqlFeed`,
`SqlLinks`) is a `SqlPort` over the same `Database`: they share its connections and its writer lock,
nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.engine import Engine as SaEngine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import create_engine

from engine.state import Partitioning
from engine.stores.sql.ping import IdlePing
from engine.stores.sql.shard_reads import ShardReads
from engine.stores.sql.stats import SqlStats
from engine.stores.sql.translate import check_url, translated
from engine.stores.sql.writer_lock import WriterLock


class Database:
    """A database URL opened: its engine (a pool of connections), who writes when, and the
    statements and rows it has run (`stats`)."""

    def __init__(self, url: str, echo: bool = False) -> None:
        self.url = check_url(url)
        self.dialect = "postgresql" if url.startswith("postgresql") else "sqlite"
        self.safe_url = _without_password(url)
        with translated(f"{self.safe_url}: cannot open the database"):
            self.engine: SaEngine = _make_engine(url, self.dialect, echo)
        ping = IdlePing.watch(self.engine) if self.dialect == "postgresql" else None
        self.stats = SqlStats.watch(self.engine, ping)
        self.writer = WriterLock() if self.dialect == "sqlite" else None  # SQLite: one writer at a time
        self.partitioning = Partitioning()  # as the schema records it, once opened (on Citus: the shards)
        self.shard_reads: ShardReads | None = None  # Citus: a shard's due rows, read on its node
        self.worker: Callable[[], str | None] = lambda: None  # this process's worker id, once it has one

    def autocommit(self) -> Connection:
        """A connection outside any transaction block: on PostgreSQL each statement is its own
        transaction, so a read (each statement of a read committed transaction sees its own
        snapshot anyway), or a write that is one statement, is one round trip rather than BEGIN,
        the statement and ROLLBACK or COMMIT. SQLite reads outside a transaction as it is."""
        conn = self.engine.connect()
        return conn.execution_options(isolation_level="AUTOCOMMIT") if self.dialect == "postgresql" else conn

    def writing(self, urgent: bool) -> AbstractContextManager[Any]:
        """This process's turn to write (SQLite; PostgreSQL takes its writers as they come):
        `urgent` for the engine's transactions, which go before the dispatcher's."""
        return self.writer.hold(urgent) if self.writer is not None else nullcontext()


class SqlPort:
    """One port of the SQL store over a `Database`; `translating` names its URL in errors."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.engine = database.engine
        self.dialect = database.dialect
        self.safe_url = database.safe_url

    def _writing(self, urgent: bool) -> AbstractContextManager[Any]:
        return self.database.writing(urgent)

    def _autocommit(self) -> Connection:
        return self.database.autocommit()

    def _writer(self, role: str) -> str:
        """Whose rows of the journeys' counters a write of this port adds to: this worker's `role`
        (its dispatcher, its host routes), apart from its engine's (engine/stores/sql/counters.py)."""
        return f"{self.database.worker() or ''}/{role}"


def _without_password(url: str) -> str:
    """The URL to show in messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except SQLAlchemyError:
        return url.split("@")[-1]


def _make_engine(url: str, dialect: str, echo: bool) -> SaEngine:
    if dialect == "sqlite":
        engine = create_engine(url, echo=echo, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    engine = create_engine(url, echo=echo)  # pinged when idle: `IdlePing`

    @event.listens_for(engine, "connect")
    def _no_jit(dbapi_conn: Any, _record: Any) -> None:
        """No JIT compilation on the engine's connections, whatever the server's default. It pays
        off for long analytic queries; the engine's are short, and an estimate of their cost far
        above what they do (a profile read of 500 people planned at 650,000, from statistics
        taken while the tables were small) had each compiled for 200 ms to run for 4: at N =
        100,000, a tenth of PostgreSQL's time. Set as a statement, not a startup option, which
        a pooler in front of the server may refuse."""
        autocommit = dbapi_conn.autocommit
        dbapi_conn.autocommit = True
        cursor = dbapi_conn.cursor()
        cursor.execute("SET jit = off")
        cursor.close()
        dbapi_conn.autocommit = autocommit

    return engine
