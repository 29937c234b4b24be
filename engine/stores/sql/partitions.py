"""Partition leases on PostgreSQL: which worker owns which users, renewed by heartbeats.

Users hash into `count` partitions (the count is recorded in the database's `meta`, so every
worker agrees). `partition_leases` holds one row per partition: its owner and until when.
Each worker heartbeats every few seconds in one short transaction: it records itself in
`workers`, renews its leases, and takes free or expired partitions (of a worker that left or
died) up to an even share among the live workers. A worker above its share (another joined)
gives the surplus up separately (`give_up`), when no batch of its own is in flight. Expiry
runs on the database's clock, so machines whose clocks differ still agree on who owns what.
A worker that dies loses its partitions when its leases run out; one that stops gives them up
at once (`release`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from datetime import timedelta
from typing import Any

from sqlalchemy import insert, inspect, select
from sqlalchemy.engine import Connection
from sqlalchemy.engine import Engine as SaEngine

from engine.state import PARTITIONS, Lease, Partitioning, partition_of
from engine.stores.sql.claims import DB_NOW
from engine.stores.sql.driver import Driver, placeholder
from engine.stores.sql.schema import META
from engine.stores.sql.translate import translating

PARTITION_HASH = "blake2b-64"  # engine.state.user_hash; recorded beside the count


class SqlPartitions:
    """`PartitionLeases` over one PostgreSQL database."""

    def __init__(self, engine: SaEngine, partitioning: Partitioning) -> None:
        self._engine = engine
        self.partitioning = partitioning
        self.count = partitioning.count
        self.worker: str | None = None
        self.owned: frozenset[int] = frozenset()
        # told the partitions owned after every change of leases (the store's cache keeps only their users)
        self.on_owned: Callable[[frozenset[int]], None] = lambda owned: None

    @translating
    def heartbeat(self, ttl: timedelta, stats: Callable[[Lease], Mapping[str, Any]]) -> Lease:
        me = self._me()
        with self._engine.begin() as conn:
            db = Driver(conn, "postgresql")
            live = [str(r[0]) for r in db.rows(f"SELECT worker_id FROM workers WHERE expires_at > {DB_NOW} "
                                               "ORDER BY worker_id")]
            owned = {int(r[0]) for r in db.rows(f"UPDATE partition_leases SET expires_at = {DB_NOW} + "
                                                "make_interval(secs => %s) WHERE owner = %s RETURNING part",
                                                [ttl.total_seconds(), me])}
            share = _share(self.count, live, me)
            gained = _take(db, me, ttl, share - len(owned)) if len(owned) < share else set()
            lease = Lease(frozenset(owned | gained), frozenset(gained), max(0, len(owned) - share),
                          len(set(live) | {me}))
            _record_worker(db, me, ttl, stats(lease))
        self._owning(lease.owned)
        return lease

    @translating
    def give_up(self, count: int) -> frozenset[int]:
        me = self._me()
        with self._engine.begin() as conn:
            rows = Driver(conn, "postgresql").rows(
                "UPDATE partition_leases SET owner = NULL, expires_at = NULL WHERE part IN (SELECT part FROM "
                "partition_leases WHERE owner = %s ORDER BY part DESC LIMIT %s) RETURNING part", [me, count])
        given = frozenset(int(r[0]) for r in rows)
        self._owning(self.owned - given)
        return given

    @translating
    def release(self, stats: Mapping[str, Any]) -> None:
        me = self._me()
        with self._engine.begin() as conn:
            db = Driver(conn, "postgresql")
            _record_worker(db, me, timedelta(0), stats)
            db.rows("UPDATE partition_leases SET owner = NULL, expires_at = NULL WHERE owner = %s RETURNING part",
                    [me])
        self._owning(frozenset())

    @translating
    def live_workers(self) -> list[dict[str, Any]]:
        with self._autocommit() as conn:
            rows = Driver(conn, "postgresql").rows(f"SELECT worker_id, heartbeat_at, stats FROM workers "
                                                   f"WHERE expires_at > {DB_NOW} ORDER BY worker_id")
        return [{"worker": str(w), "heartbeat_at": at, "stats": stats if isinstance(stats, dict) else {}}
                for w, at, stats in rows]

    @translating
    def queued_in(self, parts: Collection[int]) -> bool:
        if not parts:
            return False
        with self._autocommit() as conn:
            return bool(Driver(conn, "postgresql").rows(
                "SELECT 1 FROM inbox WHERE part = ANY(%s) AND error IS NULL LIMIT 1", [sorted(parts)]))

    @translating
    def queued_users(self, parts: Collection[int]) -> dict[str, int]:
        """How many accepted events wait for each user of these partitions."""
        if not parts:
            return {}
        with self._autocommit() as conn:
            rows = Driver(conn, "postgresql").rows("SELECT user_id, count(*) FROM inbox WHERE part = ANY(%s) "
                                                   "AND error IS NULL GROUP BY user_id", [sorted(parts)])
        return {str(user_id): int(n) for user_id, n in rows}

    @translating
    def queued_count(self, parts: Collection[int]) -> int:
        """How many accepted events wait for the users of these partitions: those another worker
        accepted too, which no count of this worker's saw come in."""
        if not parts:
            return 0
        with self._autocommit() as conn:
            rows = Driver(conn, "postgresql").rows("SELECT count(*) FROM inbox WHERE part = ANY(%s) AND error IS NULL",
                                                   [sorted(parts)])
        return int(rows[0][0])

    def _autocommit(self) -> Connection:
        """Reads outside a transaction: one round trip each (`Database.reading`)."""
        return self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")

    def _owning(self, owned: frozenset[int]) -> None:
        self.owned = owned
        self.on_owned(owned)

    def _me(self) -> str:
        if self.worker is None:
            raise ValueError("partition leases need a worker id: set `worker` first")
        return self.worker


def partition_count(conn: Connection) -> int:
    """The database's partition count, recorded the first time (every worker then agrees)."""
    row = conn.execute(select(META.c.value).where(META.c.key == "partitions")).first()
    if row is not None:
        return int(row[0])
    conn.execute(insert(META).values([{"key": "partitions", "value": str(PARTITIONS)},
                                      {"key": "partition_hash", "value": PARTITION_HASH}]))
    return PARTITIONS


def add_partitions(conn: Connection) -> None:
    """Migration to schema 11: timers carry their user and partition, the inbox its partition,
    filled in for the rows already there (an owner must find its users' timers and events)."""
    for table, column, kind in (("timers", "user_id", "VARCHAR NOT NULL DEFAULT ''"),
                                ("timers", "part", "INTEGER NOT NULL DEFAULT 0"),
                                ("inbox", "part", "INTEGER NOT NULL DEFAULT 0")):
        if column not in {c["name"] for c in inspect(conn).get_columns(table)}:  # older tables lack it
            conn.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
    conn.exec_driver_sql("UPDATE timers SET user_id = (SELECT user_id FROM instances "
                         "WHERE instances.instance_id = timers.instance_id)")
    conn.exec_driver_sql("UPDATE timers SET user_id = '' WHERE user_id IS NULL")
    count = partition_count(conn)
    mark = placeholder(conn.dialect.name)
    for table, key in (("timers", "timer_id"), ("inbox", "seq")):
        rows = conn.exec_driver_sql(f"SELECT {key}, user_id FROM {table}").all()
        if rows:
            conn.exec_driver_sql(f"UPDATE {table} SET part = {mark} WHERE {key} = {mark}",
                                 [(partition_of(str(user), count), k) for k, user in rows])


def prepare(conn: Connection, count: int) -> None:
    """One lease row per partition, and the inbox index the owners' sweeps use, made once: every
    process that opens the database (a worker starting, `journey profiles import`) comes here,
    and CREATE INDEX, even IF NOT EXISTS, waits for the inbox's writers and holds the next ones."""
    if conn.exec_driver_sql("SELECT count(*) FROM partition_leases").scalar_one() < count:
        conn.exec_driver_sql("INSERT INTO partition_leases (part) SELECT g FROM generate_series(0, %s) AS g "
                             "ON CONFLICT DO NOTHING", (count - 1,))
    if not conn.exec_driver_sql("SELECT 1 FROM pg_indexes WHERE indexname = 'ix_inbox_part_seq'").first():
        conn.exec_driver_sql("CREATE INDEX IF NOT EXISTS ix_inbox_part_seq ON inbox (part, seq)")


def _record_worker(db: Driver, me: str, ttl: timedelta, stats: Mapping[str, Any]) -> None:
    db.rows(f"INSERT INTO workers (worker_id, started_at, heartbeat_at, expires_at, stats) VALUES "
            f"(%s, {DB_NOW}, {DB_NOW}, {DB_NOW} + make_interval(secs => %s), %s) ON CONFLICT (worker_id) DO UPDATE "
            "SET heartbeat_at = EXCLUDED.heartbeat_at, expires_at = EXCLUDED.expires_at, stats = EXCLUDED.stats "
            "RETURNING worker_id", [me, ttl.total_seconds(), db.json(dict(stats))])
    db.rows(f"DELETE FROM workers WHERE expires_at < {DB_NOW} - interval '1 hour' RETURNING worker_id")


def _share(count: int, live: list[str], me: str) -> int:
    """An even share of `count` among the live workers (the first few in id order take one more)."""
    workers = live if me in live else sorted([*live, me])
    base, extra = divmod(count, len(workers))
    return base + (1 if workers.index(me) < extra else 0)


def _take(db: Driver, me: str, ttl: timedelta, wanted: int) -> set[int]:
    """Up to `wanted` partitions that nobody holds a live lease on (never waiting for a row
    another worker is taking at this moment)."""
    rows = db.rows(f"UPDATE partition_leases SET owner = %s, expires_at = {DB_NOW} + make_interval(secs => %s) "
                   "WHERE part IN (SELECT part FROM partition_leases WHERE owner IS NULL OR expires_at <= "
                   f"{DB_NOW} ORDER BY part LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING part",
                   [me, ttl.total_seconds(), wanted])
    return {int(r[0]) for r in rows}
