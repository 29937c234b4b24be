"""The durable store: SQLite by default (WAL), PostgreSQL for many workers.

`SqlStore.transaction()` gives a `SqlTx` (engine/stores/sql_tx.py) per batch of events or
timers. Timers are rows with an indexed due time, claimed in batches (on PostgreSQL with
FOR UPDATE SKIP LOCKED, so several workers can sweep at once). The outbox is the messages
table, leased to the dispatcher row by row. On SQLite this process is the only writer, so
committed user state is also kept in memory (`StateCache`); on PostgreSQL it is not, so
several workers can share the database.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, event, func, select
from sqlalchemy.engine import Engine as SaEngine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import create_engine

from channels import Profile
from engine.state import Instance
from engine.stores.sql.claims import Owner
from engine.stores.sql.driver import Driver
from engine.stores.sql.journeys import SqlJourneys
from engine.stores.sql.migrate import create_schema
from engine.stores.sql.outbox import SqlOutbox
from engine.stores.sql.partitions import SqlPartitions
from engine.stores.sql.privacy import SqlPrivacy
from engine.stores.sql.runs import RunTx, SqlRuns
from engine.stores.sql.schema import (
    INSTANCES,
    MESSAGES,
    PROFILES,
    SKIPS,
    TIMERS,
    aware,
)
from engine.stores.sql.stats import SqlStats
from engine.stores.sql.suppression import read_suppressions
from engine.stores.sql.translate import check_url, store_error, translated, translating
from engine.stores.sql.tx import SqlTx, StateCache
from engine.stores.sql.writer_lock import WriterLock

V = TypeVar("V")


class SqlStore(SqlOutbox, SqlRuns, SqlPrivacy, SqlJourneys):
    """A database URL in, transactions out. Creates the schema on first use."""

    def __init__(self, url: str, echo: bool = False, cache: bool | None = None) -> None:
        self.url = check_url(url)
        self.dialect = "postgresql" if url.startswith("postgresql") else "sqlite"
        self.safe_url = _without_password(url)
        with translated(f"{self.safe_url}: cannot open the database"):
            self.engine: SaEngine = _make_engine(url, self.dialect, echo)
            self.stats = SqlStats.watch(self.engine, pings=self.dialect == "postgresql")  # pool_pre_ping
            use_cache = self.dialect == "sqlite" if cache is None else cache
            self.cache = StateCache() if use_cache else None
            self._writer = WriterLock() if self.dialect == "sqlite" else None
            self.partition_count = create_schema(self.engine, self.url, self.dialect)
        # several workers may share a PostgreSQL database: they own its users by partitions
        self.partitions = SqlPartitions(self.engine, self.partition_count) if self.dialect == "postgresql" else None

    def _writing(self, urgent: bool) -> AbstractContextManager[Any]:
        return self._writer.hold(urgent) if self._writer is not None else nullcontext()

    @contextmanager
    def transaction(self) -> Iterator[RunTx]:
        """Commit at the end of the block; on any failure roll back and forget cached users it touched."""
        tx: RunTx | None = None
        try:
            with self._writing(urgent=True), self.engine.begin() as conn:
                tx = RunTx(conn, self.dialect, self.cache, self._owner(), self.partition_count)
                yield tx
                tx.flush()
        except BaseException as exc:
            if tx is not None and self.cache is not None:
                self.cache.evict(list(tx.users))
                self.cache.forget_numbers(list(tx.suppressions.changed))
            if isinstance(exc, SQLAlchemyError):
                raise store_error(exc, self.safe_url) from exc
            raise

    def _owner(self) -> Owner | None:
        worker = self.partitions.worker if self.partitions is not None else None
        return Owner(worker) if worker is not None else None

    @translating
    def next_due(self) -> datetime | None:
        """The earliest timer this process would fire (of its partitions, on a shared database)."""
        with self.engine.connect() as conn:
            owner = self._owner()
            if owner is None:
                due = conn.execute(select(func.min(TIMERS.c.due))).scalar()
            else:
                db = Driver(conn, self.dialect)
                where, params = owner.clause(db)
                due = db.rows(f"SELECT min(due) FROM timers WHERE true{where}", params)[0][0]
        return aware(due) if due is not None else None

    @translating
    def queued_count(self) -> int:
        """Accepted events waiting in the inbox (not those set aside as failed)."""
        with self.engine.connect() as conn:
            return int(conn.exec_driver_sql("SELECT count(*) FROM inbox WHERE error IS NULL").scalar() or 0)

    @translating
    def queued_users(self) -> dict[str, int]:
        """How many accepted events wait in the inbox for each user."""
        with self.engine.connect() as conn:
            rows = conn.exec_driver_sql("SELECT user_id, count(*) FROM inbox WHERE error IS NULL GROUP BY user_id")
            return {str(user_id): int(count) for user_id, count in rows}

    @translating
    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")

    def close(self) -> None:
        self.engine.dispose()

    @translating
    def backend_pid(self) -> int | None:
        """PostgreSQL: the server process serving this store's connection (`journey bench` reads its CPU)."""
        if self.dialect != "postgresql":
            return None
        with self.engine.connect() as conn:
            return int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar() or 0)

    # --- reads for the HTTP API ---------------------------------------------------------

    @translating
    def instances_for_user(self, user_id: str) -> list[Instance]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(INSTANCES.c.doc).where(INSTANCES.c.user_id == user_id)
                                .order_by(INSTANCES.c.entered_at))
            return [Instance.from_dict(doc) for (doc,) in rows]

    @translating
    def messages_for_user(self, user_id: str, limit: int = 200) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            shown = [c for c in MESSAGES.c if c.name != "claim"]  # the dispatcher's token: no one else's business
            rows = conn.execute(select(*shown).where(MESSAGES.c.user_id == user_id)
                                .order_by(MESSAGES.c.at.desc()).limit(limit)).mappings()
            return [dict(r) for r in rows]

    @translating
    def skips_for_user(self, user_id: str, limit: int = 200) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(SKIPS).where(SKIPS.c.user_id == user_id)
                                .order_by(SKIPS.c.at.desc()).limit(limit)).mappings()
            return [dict(r) for r in rows]

    @translating
    def message_by_provider_id(self, provider_id: str) -> dict[str, Any] | None:
        """The message a provider knows as `provider_id` (its message_id, user_id, channel, provider)."""
        query = select(MESSAGES.c.message_id, MESSAGES.c.user_id, MESSAGES.c.channel, MESSAGES.c.provider) \
            .where(MESSAGES.c.provider_id == provider_id).limit(1)
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        return dict(row) if row else None

    @translating
    def users_by_phone(self, phone: str) -> list[str]:
        """The users whose profile has this E.164 phone number, in user_id order."""
        query = select(PROFILES.c.user_id).where(PROFILES.c.phone == phone).order_by(PROFILES.c.user_id)
        with self.engine.connect() as conn:
            return [str(row[0]) for row in conn.execute(query)]

    @translating
    def step_counts(self, journey_id: str) -> dict[str, dict[str, int]]:
        """Instances per current step and status, for the journeys API."""
        query = (select(INSTANCES.c.step, INSTANCES.c.status, func.count())
                 .where(INSTANCES.c.journey_id == journey_id).group_by(INSTANCES.c.step, INSTANCES.c.status))
        counts: dict[str, dict[str, int]] = {}
        with self.engine.connect() as conn:
            for step, status, count in conn.execute(query):
                counts.setdefault(step or "(none)", {})[status] = int(count)
        return counts

    # --- what the dispatcher checks again before each attempt --------------------------------

    @translating
    def recipients(self, user_ids: Collection[str]) -> dict[str, Profile]:
        return self._committed(user_ids, self.cache.profiles if self.cache else None,
                               lambda conn, users: SqlTx(conn, self.dialect, None).load_profiles(sorted(users)))

    @translating
    def suppressions(self, numbers: Collection[str]) -> dict[str, datetime]:
        return self._committed(numbers, self.cache.suppressions if self.cache else None,
                               lambda conn, missing: read_suppressions(Driver(conn, self.dialect), missing))

    def _committed(self, keys: Collection[str], cached: Callable[[Collection[str]], tuple[dict[str, V], list[str]]]
                   | None, load: Callable[[Connection, list[str]], dict[str, V]]) -> dict[str, V]:
        """SQLite: what the cache holds, taken while no transaction is in flight (so as committed;
        an erasure evicts before it lets go), the rest from the database."""
        found: dict[str, V] = {}
        missing = list(keys)
        if cached is not None:
            with self._writing(urgent=False):
                found, missing = cached(keys)
        if missing:
            with self.engine.connect() as conn:
                found.update(load(conn, missing))
        return found

    # --- reads for `journey bench` ------------------------------------------------------------

    @translating
    def delivery_progress(self, user_prefix: str) -> tuple[int, int]:
        """(SMS handed to a provider, messages not yet handed over) of the users with this id prefix."""
        mine = MESSAGES.c.user_id.like(f"{user_prefix}%")
        with self.engine.connect() as conn:
            sms = conn.execute(select(func.count()).where(mine, MESSAGES.c.channel == "sms",
                                                          MESSAGES.c.dispatch == "sent")).scalar() or 0
            pending = conn.execute(select(func.count()).where(mine, MESSAGES.c.dispatch != "sent")).scalar() or 0
        return int(sms), int(pending)

    @translating
    def message_outcomes(self, user_prefix: str) -> list[tuple[str, str, datetime, str, datetime | None]]:
        """(user_id, channel, at, dispatch, status_at) of every message to users with this id prefix."""
        query = select(MESSAGES.c.user_id, MESSAGES.c.channel, MESSAGES.c.at, MESSAGES.c.dispatch,
                       MESSAGES.c.status_at).where(MESSAGES.c.user_id.like(f"{user_prefix}%"))
        with self.engine.connect() as conn:
            return [(r[0], r[1], aware(r[2]), r[3], aware(r[4]) if r[4] is not None else None)
                    for r in conn.execute(query)]

    @translating
    def size_mb(self) -> float:
        """The database's size on disk (SQLite: the file with its WAL)."""
        if self.dialect == "sqlite":
            path = Path(self.url.removeprefix("sqlite:///"))
            return sum(p.stat().st_size for p in path.parent.glob(path.name + "*")) / 2**20
        with self.engine.connect() as conn:
            return float(conn.exec_driver_sql("select pg_database_size(current_database())").scalar() or 0) / 2**20




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
    return create_engine(url, echo=echo, pool_pre_ping=True)
