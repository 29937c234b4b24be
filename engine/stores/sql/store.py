"""The durable store: SQLite by default (WAL), PostgreSQL for many workers.

`SqlStore.transaction()` gives a `SqlTx` (engine/stores/sql_tx.py) per batch of events or
timers. Timers are rows with an indexed due time, claimed in batches (on PostgreSQL with
FOR UPDATE SKIP LOCKED, so several workers can sweep at once). The outbox is the messages
table, leased to the dispatcher row by row. On SQLite this process is the only writer, so
committed user state is also kept in memory (`StateCache`); on PostgreSQL it is not, so
several workers can share the database.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, delete, event, func, insert, select
from sqlalchemy.engine import Engine as SaEngine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import create_engine

from channels import Profile
from engine.ports import JourneyVersion, OutboxItem
from engine.state import Instance
from engine.stores.sql.claims import Owner
from engine.stores.sql.driver import Driver
from engine.stores.sql.migrate import create_schema
from engine.stores.sql.outbox import claim_sql, expire, record_attempts, release_held
from engine.stores.sql.partitions import SqlPartitions
from engine.stores.sql.privacy import SqlPrivacy
from engine.stores.sql.runs import RunTx, SqlRuns
from engine.stores.sql.schema import (
    INSTANCES,
    JOURNEY_STATES,
    JOURNEY_VERSIONS,
    MESSAGES,
    PROFILES,
    SKIPS,
    TIMERS,
    aware,
    chunks,
    dialect_insert,
)
from engine.stores.sql.stats import SqlStats
from engine.stores.sql.suppression import read_suppressions
from engine.stores.sql.translate import check_url, store_error, translated, translating
from engine.stores.sql.tx import SqlTx, StateCache
from engine.stores.sql.writer_lock import WriterLock

V = TypeVar("V")


class SqlStore(SqlRuns, SqlPrivacy):
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

    # --- outbox: the dispatcher's side of the messages table ----------------------------

    @translating
    def claim_outbox(self, now: datetime, limit: int, lease: timedelta, sending: int | None = None
                     ) -> list[OutboxItem]:
        """Pending messages due for an attempt, leased to this caller until now + lease: the first
        `sending` (default: all) as about to be handed to a provider, the rest as `leased`."""
        with self._writing(urgent=False), self.engine.begin() as conn:
            db = Driver(conn, self.dialect)
            if not db.sqlite:  # see `claim_sql`: walk the index to the limit, whatever the stale statistics say
                conn.exec_driver_sql("SET LOCAL enable_bitmapscan = off")
            query = claim_sql(self.dialect, limit)
            items = [OutboxItem(r[0], r[1], r[2], r[3], db.read_json(r[4]), r[5], r[6], r[7])
                     for r in db.rows(query, [db.time(now)])]
            ids = [i.message_id for i in items]
            split = len(ids) if sending is None else sending
            lease_until = db.time(now + lease)
            for state, part in (("sending", ids[:split]), ("leased", ids[split:])):
                for chunk in chunks(part):
                    db.run_in(f"UPDATE messages SET dispatch = '{state}', next_attempt_at = {db.mark} "
                              "WHERE message_id IN ({in})", chunk, [lease_until])
        return items

    @translating
    def finish_outbox(self, results: Sequence[Mapping[str, Any]], sending: Sequence[str] = ()) -> None:
        """Record attempts (keys message_id, dispatch, status, attempts, next_attempt_at, provider,
        provider_id, error, at) and, in the same transaction, mark the leased messages `sending`
        that are about to be handed to a provider."""
        if not results and not sending:
            return
        with self._writing(urgent=False), self.engine.begin() as conn:
            db = Driver(conn, self.dialect)
            record_attempts(db, [(r["dispatch"], r["status"], db.time(r["at"]), r["attempts"],
                                  db.maybe_time(r["next_attempt_at"]), r["provider"], r["provider_id"], r["error"],
                                  r["message_id"]) for r in results])
            for chunk in chunks(list(sending)):
                db.run_in("UPDATE messages SET dispatch = 'sending' WHERE message_id IN ({in})", chunk)

    @translating
    def expire_interrupted(self, now: datetime, retry_channels: Collection[str] = ()) -> int:
        """Leases that ran out: never-handed messages go back to pending, the ones caught mid-call
        are retried (idempotent channels) or `unknown`; returns how many are now `unknown`."""
        with self._writing(urgent=False), self.engine.begin() as conn:
            return expire(Driver(conn, self.dialect), now, retry_channels)

    @translating
    def release_held(self, error: str, now: datetime) -> int:
        with self._writing(urgent=False), self.engine.begin() as conn:
            return release_held(Driver(conn, self.dialect), error, now)

    @translating
    def outbox_next_due(self) -> datetime | None:
        with self.engine.connect() as conn:  # a literal 'pending', so the partial index applies
            due = conn.exec_driver_sql("SELECT min(next_attempt_at) FROM messages WHERE dispatch = 'pending'").scalar()
        return Driver.read_time(due) if due is not None else None

    @translating
    def outbox_queued(self) -> dict[str, int]:
        with self.engine.connect() as conn:  # a literal 'pending', so the partial index applies
            rows = conn.exec_driver_sql("SELECT channel, count(*) FROM messages WHERE dispatch = 'pending' "
                                        "GROUP BY channel")
            return {str(channel): int(count) for channel, count in rows}

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
            rows = conn.execute(select(MESSAGES).where(MESSAGES.c.user_id == user_id)
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

    # --- journeys: versions and lifecycle states -----------------------------------------

    @translating
    def save_versions(self, versions: Sequence[JourneyVersion]) -> None:
        rows = [{"journey_id": v.journey_id, "version": v.version, "file": v.file, "source": v.source,
                 "first_loaded_at": v.first_loaded_at} for v in versions]
        if rows:
            with self._writing(urgent=True), self.engine.begin() as conn:
                conn.execute(dialect_insert(self.dialect, JOURNEY_VERSIONS).values(rows).on_conflict_do_nothing())

    @translating
    def journey_version(self, journey_id: str, version: str) -> JourneyVersion | None:
        query = select(JOURNEY_VERSIONS).where(JOURNEY_VERSIONS.c.journey_id == journey_id,
                                               JOURNEY_VERSIONS.c.version == version)
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        return _version(row) if row else None

    @translating
    def journey_versions(self, journey_id: str) -> list[JourneyVersion]:
        query = select(JOURNEY_VERSIONS).where(JOURNEY_VERSIONS.c.journey_id == journey_id) \
            .order_by(JOURNEY_VERSIONS.c.first_loaded_at, JOURNEY_VERSIONS.c.version)
        with self.engine.connect() as conn:
            return [_version(row) for row in conn.execute(query).mappings()]

    @translating
    def journey_states(self) -> dict[str, str]:
        with self.engine.connect() as conn:
            return {str(j): str(s) for j, s in conn.execute(select(JOURNEY_STATES.c.journey_id,
                                                                    JOURNEY_STATES.c.state))}

    @translating
    def set_journey_state(self, journey_id: str, state: str, at: datetime) -> None:
        with self._writing(urgent=True), self.engine.begin() as conn:
            conn.execute(delete(JOURNEY_STATES).where(JOURNEY_STATES.c.journey_id == journey_id))
            if state != "active":
                conn.execute(insert(JOURNEY_STATES).values(journey_id=journey_id, state=state, at=at))

    @translating
    def active_counts(self, journey_id: str) -> dict[str, int]:
        query = (select(INSTANCES.c.version, func.count()).where(INSTANCES.c.journey_id == journey_id,
                                                                 INSTANCES.c.status == "active")
                 .group_by(INSTANCES.c.version))
        with self.engine.connect() as conn:
            return {str(v): int(n) for v, n in conn.execute(query)}

    @translating
    def cancel_pending(self, journey_id: str, reason: str, at: datetime) -> int:
        with self._writing(urgent=False), self.engine.begin() as conn:
            db = Driver(conn, self.dialect)
            m = db.mark
            result = conn.exec_driver_sql(
                f"UPDATE messages SET dispatch = 'cancelled', status = 'cancelled', status_at = {m}, error = {m} "
                f"WHERE dispatch = 'pending' AND journey_id = {m}", (db.time(at), reason, journey_id))
            return int(result.rowcount or 0)

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


def _version(row: Any) -> JourneyVersion:
    return JourneyVersion(row["journey_id"], row["version"], row["file"], row["source"], aware(row["first_loaded_at"]))


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
