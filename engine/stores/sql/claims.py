"""The rows the sweeps take: queued events from the inbox and timers that came due.

On PostgreSQL several workers share one database and each user belongs to one partition
(`engine.state.partition_of`); a worker takes only the rows of the partitions it holds a
live lease on (`Owner`), checked in the same statement, so a worker that lost a lease (it
stalled past its expiry, another took over) takes nothing more of that partition. Rows are
locked with SKIP LOCKED besides: during a handover the old and the new owner never take the
same row. SQLite has one process and no partitions: everything is taken in order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine.events import Event
from engine.stores.sql.driver import Driver
from engine.stores.sql.schema import chunks
from engine.stores.sql.shard_reads import ShardReads

DB_NOW = "now()"  # leases run on the database's clock (timestamptz columns): one clock for every machine


@dataclass(frozen=True, slots=True)
class Owner:
    """The worker a transaction takes rows for (PostgreSQL only)."""

    worker: str

    def clause(self, db: Driver) -> tuple[str, list[Any]]:
        """` AND part IN (the partitions this worker holds a live lease on)`, with its parameter."""
        # One array from a scalar subquery, not `part IN (SELECT ...)`: the planner then walks the
        # table's own order (seq, due) and stops at the limit, rather than joining every owned row
        # and sorting them (2 ms rather than 40 ms for a batch out of an inbox of 100,000).
        return (f" AND part = ANY((SELECT array_agg(part) FROM partition_leases WHERE owner = {db.mark} "
                f"AND expires_at > {DB_NOW})::int[])", [self.worker])


def due_timers(db: Driver, owner: Owner | None, now: datetime, limit: int, lock: bool,
               ) -> list[tuple[str, str, str]]:
    """(instance_id, timer_id, user_id) of the earliest timers due by `now`; `lock`: FOR UPDATE SKIP LOCKED."""
    where, params = owner.clause(db) if owner is not None else ("", [])
    query = (f"SELECT instance_id, timer_id, user_id, part FROM timers WHERE due <= {db.mark}{where} ORDER BY due "
             f"LIMIT {int(limit)}" + (" FOR UPDATE SKIP LOCKED" if lock else ""))
    return [(str(i), str(t), str(u)) for i, t, u, _ in _in_due_order(db, query, [db.time(now), *params])]


def _in_due_order(db: Driver, query: str, params: list[Any]) -> Sequence[Sequence[Any]]:
    """PostgreSQL: the earliest due timers read along the due index, stopping at the limit, with
    sorting off for this one statement of the transaction, which leaves the planner no other
    plan. It cannot know what share of the timers the owned partitions (a parameter) hold, and
    with statistics taken before a backlog built up it read every due timer (by a bitmap scan,
    or the whole table) and sorted them: at N = 100,000, 50,000 timers read and sorted on disk
    for a claim of 1,000 (30 ms), and the same again for the sweep's look ahead (10 ms)."""
    if db.sqlite:
        return db.rows(query, params)
    db.conn.exec_driver_sql("SET LOCAL enable_sort = off")
    rows = db.rows(query, params)
    db.conn.exec_driver_sql("SET LOCAL enable_sort TO DEFAULT")
    return rows


def due_shard_timers(reads: ShardReads, owner: Owner | None, now: datetime, limit: int, ahead: bool = False,
                     ) -> list[tuple[str, str]]:
    """Citus: (user_id, timer_id) of the earliest due timers of the next partition (shard) `owner`
    holds that has any, read on the shard's node (engine/stores/sql/shard_reads.py); `ahead`: of
    as many of the next ones as a sweep's claims of `limit` would take."""
    shards = reads.owned(owner.worker) if owner is not None else None
    if ahead:
        return reads.ahead("journey_due_timers", now, limit, shards)
    return reads.due("journey_due_timers", now, limit, shards)


def claim_shard_timers(db: Driver, owner: Owner | None, now: datetime, limit: int, reads: ShardReads,
                       ) -> list[tuple[str, str, str]]:
    """Citus: (instance_id, timer_id, user_id) of the earliest due timers of one partition (one
    shard: `due_shard_timers`), claimed by a DELETE routed to that shard by their users, while
    `owner` still holds the partition. A timer another worker took meanwhile (a handover) is not
    returned: the DELETE waits for that worker's transaction and finds it gone."""
    shard = due_shard_timers(reads, owner, now, limit)
    if not shard:
        return []
    where, params = owner.clause(db) if owner is not None else ("", [])
    taken = db.rows(f"DELETE FROM timers WHERE user_id = ANY(%s) AND timer_id = ANY(%s) AND due <= %s{where} "
                    "RETURNING due, instance_id, timer_id, user_id",
                    [sorted({u for u, _ in shard}), [t for _, t in shard], db.time(now), *params])
    return [(str(i), str(t), str(u)) for _, i, t, u in sorted(tuple(row) for row in taken)]


def due_timer_users(db: Driver, owner: Owner | None, now: datetime, limit: int) -> tuple[set[str], list[str]]:
    """The users of the earliest timers due by `now`, and the instances of those with no user."""
    where, params = owner.clause(db) if owner is not None else ("", [])
    rows = _in_due_order(db, f"SELECT user_id, instance_id FROM timers WHERE due <= {db.mark}{where} ORDER BY due "
                         f"LIMIT {int(limit)}", [db.time(now), *params])
    return {str(u) for u, _ in rows if u}, [str(i) for u, i in rows if not u]


def claim_queued(db: Driver, owner: Owner | None, limit: int, one_partition: bool = False) -> list[Event]:
    """The oldest queued events (of the partitions `owner` holds), deleted in this transaction.
    `one_partition` (Citus, where a partition is a shard): only those of the oldest one's
    partition, so that every statement of the batch about its users is routed to one shard
    (a batch of every owned shard's users made each of them a multi-shard statement)."""
    where, params = owner.clause(db) if owner is not None else ("", [])
    if one_partition:
        where, params = (f"{where} AND part = (SELECT part FROM inbox WHERE error IS NULL{where} ORDER BY seq "
                         "LIMIT 1)"), [*params, *params]
    rows = db.rows("SELECT seq, event_id, user_id, type, at, properties FROM inbox WHERE error IS NULL"
                   f"{where} ORDER BY seq LIMIT {int(limit)}" + ("" if db.sqlite else " FOR UPDATE SKIP LOCKED"),
                   params)
    if rows and db.sqlite:  # the only writer, holding the lock: nothing can have come in between
        db.run_in(f"DELETE FROM inbox WHERE seq BETWEEN {db.mark} AND {db.mark} AND error IS NULL",
                  [rows[0][0], rows[-1][0]])
    else:  # other workers commit as they go: only the rows read here
        for chunk in chunks([r[0] for r in rows]):
            db.run_in("DELETE FROM inbox WHERE seq IN ({in})", chunk)
    times: dict[Any, datetime] = {}  # a batch's events mostly share their instant: parse each once
    events = []
    for _, event_id, user_id, kind, at, properties in rows:
        when = times.get(at)
        if when is None:
            when = times[at] = db.read_time(at)
        events.append(Event(kind, user_id, when, db.read_json(properties), event_id))
    return events


def quarantine_queued(db: Driver, owner: Owner | None, error: str) -> str | None:
    """Set the oldest queued event aside with `error`; returns its user, or None if none waits."""
    where, params = owner.clause(db) if owner is not None else ("", [])
    oldest = db.rows(f"SELECT seq, user_id FROM inbox WHERE error IS NULL{where} ORDER BY seq LIMIT 1", params)
    if not oldest:
        return None
    db.run_in(f"UPDATE inbox SET error = {db.mark} WHERE seq = {db.mark}", [error, oldest[0][0]])
    return str(oldest[0][1])


def inbox_rows(db: Driver, events: Sequence[Event], part: Any) -> list[tuple[Any, ...]]:
    """The inbox rows of `events`; `part(user_id)` is the user's partition."""
    return [(e.id, e.user_id, e.type, db.time(e.timestamp), db.json(dict(e.properties)), part(e.user_id))
            for e in events]
