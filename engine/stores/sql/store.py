"""The durable store: SQLite by default (WAL), PostgreSQL for many workers.

`SqlStore` composes the store over one `Database`: `transaction()` gives a `SqlTx`
(engine/stores/sql/tx.py) per batch of events or timers, and the host's ports are one object
each (`outbox`, `views`, `journeys`, `runs`, `privacy`, `feed`, `links`, and `partitions` on PostgreSQL).
Timers are rows with an indexed due time, claimed in batches (on PostgreSQL with FOR UPDATE
SKIP LOCKED, so several workers can sweep at once). The outbox is the messages table, leased to the dispatcher
row by row. Committed user state is also kept in memory (`StateCache`): on SQLite, where this
process is the only writer, as it is; on PostgreSQL, where several workers share the database,
only for the partitions this worker owns and checked against the rows' versions before each use
(engine/stores/sql/stamps.py).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from engine.stores.sql.cache import StateCache
from engine.stores.sql.citus import custom_plans
from engine.stores.sql.claims import Owner
from engine.stores.sql.database import Database, SqlPort
from engine.stores.sql.driver import Driver
from engine.stores.sql.feed import SqlFeed
from engine.stores.sql.journeys import SqlJourneys
from engine.stores.sql.links import SqlLinks
from engine.stores.sql.migrate import create_schema
from engine.stores.sql.outbox import SqlOutbox
from engine.stores.sql.partitions import SqlPartitions
from engine.stores.sql.privacy import SqlPrivacy
from engine.stores.sql.runs import SqlRuns
from engine.stores.sql.schema import INBOX, MESSAGES, TIMERS, aware
from engine.stores.sql.shard_reads import ShardReads
from engine.stores.sql.translate import store_error, translated, translating
from engine.stores.sql.tx import SqlTx
from engine.stores.sql.views import SqlViews


class SqlStore(SqlPort):
    """A database URL in, transactions and the host's ports out. Creates the schema on first use."""

    def __init__(self, url: str, echo: bool = False, cache: bool | None = None) -> None:
        super().__init__(Database(url, echo))
        self.url = self.database.url
        with translated(f"{self.safe_url}: cannot open the database"):
            self.partitioning = self.database.partitioning = create_schema(self.engine, self.url, self.dialect)
        # no state cache on Citus: its check (stamps.py) joins the users' rows in a way Citus does not
        # route, and reads row versions that each node numbers on its own
        keep = (cache is None or cache) and not self.partitioning.shards
        self.cache = StateCache(checked=self.dialect == "postgresql") if keep else None
        # several workers may share a PostgreSQL database: they own its users by partitions
        self.partitions = SqlPartitions(self.engine, self.partitioning) if self.dialect == "postgresql" else None
        if self.partitioning.shards:
            custom_plans(self.engine)
            self.database.shard_reads = ShardReads(self.engine, self.partitioning.count)
        if self.partitions is not None and self.cache is not None:
            kept, partitioning = self.cache, self.partitioning
            self.partitions.on_owned = lambda owned: kept.own(owned, partitioning)
        self.database.worker = lambda: self.partitions.worker if self.partitions is not None else None
        self.location = self.safe_url
        self.stats = self.database.stats  # statements and rows, for `journey bench` and /metrics
        self.outbox = SqlOutbox(self.database, self.cache)
        self.views = SqlViews(self.database)
        self.journeys = SqlJourneys(self.database)
        self.runs = SqlRuns(self.database)
        self.privacy = SqlPrivacy(self.database, self.cache)
        self.feed = SqlFeed(self.database)
        self.links = SqlLinks(self.database)

    @contextmanager
    def transaction(self) -> Iterator[SqlTx]:
        """Commit at the end of the block; on any failure roll back and forget cached users it touched."""
        tx: SqlTx | None = None
        try:
            with self._writing(urgent=True):
                try:
                    with self.engine.begin() as conn:
                        tx = SqlTx(conn, self.dialect, self.cache, self._owner(), self.partitioning,
                                   self.database.shard_reads)
                        yield tx
                        tx.flush()
                except BaseException:
                    if tx is not None and self.cache is not None:  # before the dispatcher's recheck reads it
                        self.cache.evict(list(tx.users))
                        self.cache.forget_numbers(list(tx.suppressions.changed))
                    raise
                finally:
                    if tx is not None:
                        tx.release()
        except SQLAlchemyError as exc:
            raise store_error(exc, self.safe_url) from exc

    def _owner(self) -> Owner | None:
        worker = self.partitions.worker if self.partitions is not None else None
        return Owner(worker) if worker is not None else None

    @translating
    def next_due(self) -> datetime | None:
        """The earliest timer this process would fire (of its partitions, on a shared database)."""
        with self._autocommit() as conn:
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
        with self._autocommit() as conn:
            return int(conn.exec_driver_sql("SELECT count(*) FROM inbox WHERE error IS NULL").scalar() or 0)

    @translating
    def queued_users(self) -> dict[str, int]:
        """How many accepted events wait in the inbox for each user."""
        with self._autocommit() as conn:
            rows = conn.exec_driver_sql("SELECT user_id, count(*) FROM inbox WHERE error IS NULL GROUP BY user_id")
            return {str(user_id): int(count) for user_id, count in rows}

    @translating
    def ping(self) -> None:
        with self._autocommit() as conn:
            conn.exec_driver_sql("SELECT 1")

    def close(self) -> None:
        self.engine.dispose()

    @translating
    def backend_pid(self) -> int | None:
        """PostgreSQL: the server process serving this store's connection (`journey bench` reads its CPU)."""
        if self.dialect != "postgresql":
            return None
        with self._autocommit() as conn:
            return int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar() or 0)

    # --- reads for `journey bench` ------------------------------------------------------------

    @translating
    def delivery_progress(self, user_prefix: str) -> tuple[int, int]:
        """(SMS handed to a provider, messages not yet handed over) of the users with this id prefix."""
        mine = MESSAGES.c.user_id.like(f"{user_prefix}%")
        with self._autocommit() as conn:
            sms = conn.execute(select(func.count()).where(mine, MESSAGES.c.channel == "sms",
                                                          MESSAGES.c.dispatch == "sent")).scalar() or 0
            pending = conn.execute(select(func.count()).where(mine, MESSAGES.c.dispatch != "sent")).scalar() or 0
        return int(sms), int(pending)

    @translating
    def waiting_of(self, user_ids: Sequence[str]) -> set[str]:
        """Which of these users have events waiting in the inbox. An accepted event that no longer
        waits was processed, in the transaction that took it out: its user's messages are queued."""
        if not user_ids:
            return set()
        query = select(INBOX.c.user_id).where(INBOX.c.user_id.in_(list(user_ids)), INBOX.c.error.is_(None))
        with self._autocommit() as conn:
            return {str(row[0]) for row in conn.execute(query.distinct())}

    @translating
    def message_outcomes(self, user_prefix: str) -> list[tuple[str, str, datetime, str, datetime | None]]:
        """(user_id, channel, at, dispatch, status_at) of every message to users with this id prefix."""
        query = select(MESSAGES.c.user_id, MESSAGES.c.channel, MESSAGES.c.at, MESSAGES.c.dispatch,
                       MESSAGES.c.status_at).where(MESSAGES.c.user_id.like(f"{user_prefix}%"))
        with self._autocommit() as conn:
            return [(r[0], r[1], aware(r[2]), r[3], aware(r[4]) if r[4] is not None else None)
                    for r in conn.execute(query)]

    @translating
    def size_mb(self) -> float:
        """The database's size on disk (SQLite: the file with its WAL)."""
        if self.dialect == "sqlite":
            path = Path(self.url.removeprefix("sqlite:///"))
            return sum(p.stat().st_size for p in path.parent.glob(path.name + "*")) / 2**20
        with self._autocommit() as conn:
            return float(conn.exec_driver_sql("select pg_database_size(current_database())").scalar() or 0) / 2**20

    @translating
    def entries_of(self, journey_id: str) -> tuple[int, int]:
        """(instances, distinct people) of a journey: what `journey bench --audience` checks."""
        with self._autocommit() as conn:
            db = Driver(conn, self.dialect)
            row = db.rows(f"SELECT count(*), count(DISTINCT user_id) FROM instances WHERE journey_id = {db.mark}",
                          [journey_id])[0]
        return int(row[0]), int(row[1])
