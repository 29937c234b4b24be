"""The dispatcher's side of the messages table: which rows are due, leased, and expired.

A claim puts its token on the rows it leases (`messages.claim`); every later write to them is
fenced (`engine.state.Fence`, engine/stores/sql/fenced.py): `held` is checked in the statement
itself, so a dispatcher whose lease ran out, or whose rows the expiry took back, changes nothing,
whatever it still believes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Connection

from channels import Profile
from channels.selection import ADDRESS_FIELD
from engine.ports import IN_DOUBT, RETRIED, OutboxItem
from engine.state import Fence, Partitioning
from engine.stats import Counts, merge
from engine.stores.sql.cache import StateCache
from engine.stores.sql.counters import add_counts, moved, receipts
from engine.stores.sql.database import Database, SqlPort
from engine.stores.sql.driver import Driver, json_text, placeholder
from engine.stores.sql.fenced import record_and_mark, renew
from engine.stores.sql.loads import profiles_of
from engine.stores.sql.schema import MESSAGE_KEY
from engine.stores.sql.stamps import profile_stamps
from engine.stores.sql.suppression import read_suppressions
from engine.stores.sql.translate import translating

V = TypeVar("V")


def expire(db: Driver, now: datetime, writer: str, retry_channels: Collection[str] = (),
           partitioning: Partitioning = Partitioning()) -> int:
    """Leases that ran out (their dispatcher stopped): a message still `leased` was never handed to
    a provider and goes back to `pending`; one caught `sending` is in doubt: retried where every
    provider of its channel takes an idempotency key, else `unknown` (never `failed`: it may well
    have been delivered). Returns how many became `unknown`. On Citus the users of such messages
    are read first (usually none) and each shard's written by a statement routed to it."""
    if not partitioning.shards:
        return _expire(db, now, writer, retry_channels, [])
    expired = db.rows("SELECT DISTINCT user_id FROM messages WHERE (dispatch = 'leased' AND next_attempt_at <= "
                      f"{db.mark}) OR (dispatch = 'sending' AND next_attempt_at <= {db.mark})",
                      [db.time(now)] * 2)
    shards: dict[int, list[str]] = {}
    for (user,) in expired:
        shards.setdefault(partitioning.of(str(user)), []).append(str(user))
    return sum(_expire(db, now, writer, retry_channels, users) for users in shards.values())


def _expire(db: Driver, now: datetime, writer: str, retry_channels: Collection[str], users: list[str]) -> int:
    m, at = db.mark, db.time(now)
    only, named = db.of_users(users)
    only = only.replace("{t}", "")
    db.conn.exec_driver_sql(f"UPDATE messages SET dispatch = 'pending', next_attempt_at = {m}, claim = NULL "
                            f"WHERE {only}dispatch = 'leased' AND next_attempt_at <= {m}", (at, *named, at))
    if retry_channels:
        channels = sorted(retry_channels)
        db.conn.exec_driver_sql(
            f"UPDATE messages SET dispatch = 'pending', next_attempt_at = {m}, error = {m}, claim = NULL WHERE "
            f"{only}dispatch = 'sending' AND next_attempt_at <= {m} AND channel IN ({db.marks(len(channels))})",
            (at, RETRIED, *named, at, *channels))
    rows = db.rows(
        f"UPDATE messages SET dispatch = 'unknown', status = 'unknown', status_at = {m}, error = {m}, claim = NULL "
        f"WHERE {only}dispatch = 'sending' AND next_attempt_at <= {m} RETURNING journey_id, tally, channel",
        (at, IN_DOUBT, *named, at))
    add_counts(db, moved(rows, "queued", "unknown"), writer)
    return len(rows)


def release_held(db: Driver, error: str, now: datetime) -> int:
    """The pending messages held back with `error` and due later, due now: a microsecond apart up to
    `now`, in the order they were due. The dispatcher then books them again at the rates in force."""
    held = db.rows(f"SELECT user_id, message_id FROM messages WHERE dispatch = 'pending' AND next_attempt_at > "
                   f"{db.mark} AND error = {db.mark} ORDER BY next_attempt_at", [db.time(now), error])
    db.write(f"UPDATE messages SET next_attempt_at = {db.mark} WHERE user_id = {db.mark} AND message_id = {db.mark}",
             [(db.time(now - timedelta(microseconds=len(held) - n)), *row) for n, row in enumerate(held)])
    return len(held)


def claim_sql(dialect: str, limit: int, of_users: bool = False) -> str:
    """Due pending messages with the address their channel needs, read from the profile's JSON.
    `dispatch = 'pending'` is a literal so that the partial index of pending messages applies.
    On PostgreSQL the claim runs with bitmap scans off: mid-burst the statistics still say few
    messages wait, and the planner then reads every pending message and sorts them (230 ms for
    53,000) rather than walk the index in order and stop at the limit (6 ms). `of_users`: only the
    messages of the users of a second parameter (an array): on Citus, one shard's (`SqlOutbox.shard_users`)."""
    field = "CASE m.channel " + " ".join(f"WHEN '{c}' THEN '{f}'" for c, f in ADDRESS_FIELD.items()) + " END"
    sql = (f"SELECT m.message_id, m.user_id, m.channel, m.category, m.content, m.attempts, "
           f"{json_text(dialect, 'p.doc', field)} AS address, m.instance_id "
           "FROM messages m LEFT OUTER JOIN profiles p ON p.user_id = m.user_id "
           + ("AND p.user_id = ANY(%(users)s) " if of_users else "") +  # both sides pruned to the shard
           f"WHERE m.dispatch = 'pending' AND m.next_attempt_at <= {'%(now)s' if of_users else placeholder(dialect)} "
           + ("AND m.user_id = ANY(%(users)s) " if of_users else "") +
           f"ORDER BY m.next_attempt_at LIMIT {int(limit)}")
    return sql if dialect == "sqlite" else sql + " FOR UPDATE OF m SKIP LOCKED"


def claim_and_lease_sql(limit: int, of_users: bool = False) -> str:
    """PostgreSQL: `claim_sql`'s rows leased by the same statement (a data-modifying CTE), in the
    order they were due: one statement a claim rather than a read and an update. Parameters:
    now, then the lease's end and the claim's token; `of_users` (Citus): named now, until, token
    and users, every table pruned to the users' shard so that Citus routes the whole statement."""
    due = claim_sql("postgresql", limit, of_users).replace(", m.instance_id ",
                                                           ", m.instance_id, m.next_attempt_at AS due_at ", 1)
    until, token, mine = ("%(until)s", "%(token)s", "messages.user_id = ANY(%(users)s) AND ") if of_users \
        else ("%s", "%s", "")
    return (f"WITH due AS ({due}), leased AS (UPDATE messages SET dispatch = 'leased', next_attempt_at = {until}, "
            f"claim = {token} FROM due WHERE {mine}messages.user_id = due.user_id "
            "AND messages.message_id = due.message_id) "  # the primary key's order: a lookup a row, not a scan of all
            "SELECT message_id, user_id, channel, category, content, attempts, address, instance_id FROM due "
            "ORDER BY due_at")


def _item(row: Sequence[Any]) -> OutboxItem:
    """A claimed message as `claim_sql` reads it."""
    return OutboxItem(row[0], row[1], row[2], row[3], Driver.read_json(row[4]), row[5], row[6], row[7])


def _map_provider_ids(db: Driver, results: Sequence[Mapping[str, Any]], fence: Fence) -> None:
    """Citus: whose message each provider id names (`provider_ids`, local to the coordinator)."""
    rows = {r["provider_id"]: (r["provider_id"], fence.users[r["message_id"]], r["message_id"]) for r in results
            if r["provider_id"] and r["message_id"] in fence.users}
    db.write(db.insert_sql("provider_ids", ("provider_id", "user_id", "message_id"), ("provider_id",)),
             list(rows.values()))


class SqlOutbox(SqlPort):
    """The `Outbox` port: claims, fenced writes and counts of the messages table, and what the
    dispatcher checks again before each attempt (the recipients' profiles, the suppressed numbers),
    read first from the store's `StateCache` (on PostgreSQL the profiles only, checked first)."""

    def __init__(self, database: Database, cache: StateCache | None = None) -> None:
        super().__init__(database)
        self.cache = cache
        self._numbers = threading.local()  # `seen`: the suppressions read with the last recipients, per thread

    @translating
    def claim_outbox(self, now: datetime, limit: int, lease: timedelta, token: str) -> list[OutboxItem]:
        """Up to `limit` pending messages due for an attempt, `leased` to the claim `token` until
        now + lease."""
        users = self.shard_users(now, limit)
        if users == []:
            return []
        if users is not None:  # Citus: one statement routed to the users' shard, in no transaction block
            with self._writing(urgent=False), self._autocommit() as conn:  # (a SET LOCAL would reach no shard)
                return [_item(r) for r in conn.exec_driver_sql(claim_and_lease_sql(limit, of_users=True), {
                    "now": now, "until": now + lease, "token": token, "users": users})]
        with self._writing(urgent=False), self.engine.begin() as conn:
            db = Driver(conn, self.dialect)
            if db.sqlite:
                return self._claim_then_lease(db, now, limit, lease, token)
            conn.exec_driver_sql("SET LOCAL enable_bitmapscan = off")  # see `claim_sql`
            return [_item(r) for r in db.rows(claim_and_lease_sql(limit), [now, now + lease, token])]

    def _claim_then_lease(self, db: Driver, now: datetime, limit: int, lease: timedelta, token: str,
                          ) -> list[OutboxItem]:
        """SQLite: the due messages read, then leased (no data-modifying CTE)."""
        items = [_item(r) for r in db.rows(claim_sql(self.dialect, limit), [db.time(now)])]
        until = db.time(now + lease)
        db.update("messages", MESSAGE_KEY, ("dispatch", "next_attempt_at", "claim"),
                  [("leased", until, token, i.user_id, i.message_id) for i in items])
        return items

    def shard_users(self, now: datetime, limit: int) -> list[str] | None:
        """On Citus, the users of the earliest due pending messages of the next shard that has any,
        read on its node (engine/stores/sql/shard_reads.py): the claim then takes theirs in a query
        routed to that shard (Citus runs FOR UPDATE in no other). None elsewhere: any user's."""
        reads = self.database.shard_reads
        if reads is None:
            return None
        return sorted({user for user, _ in reads.due("journey_due_messages", now, limit)})

    @translating
    def finish_outbox(self, results: Sequence[Mapping[str, Any]], fence: Fence, sending: Sequence[str] = (),
                      ) -> frozenset[str]:
        """Record attempts (keys message_id, dispatch, status, attempts, next_attempt_at, provider,
        provider_id, error, at) and, in the same transaction, mark `sending` the leased messages
        about to be handed to a provider: only those `fence` still holds; returns them."""
        if not results and not sending:
            return frozenset()
        with self._writing(urgent=False), self.engine.begin() as conn:
            db = Driver(conn, self.dialect)
            shards = self.database.partitioning
            landed = receipts(db, [(fence.users.get(r["message_id"]), r["message_id"], r["status"]) for r in results],
                              partitioning=shards)  # never backwards
            rows = [(r["dispatch"], receipt.status if receipt else r["status"], db.time(r["at"]), r["attempts"],
                     db.maybe_time(r["next_attempt_at"]), r["provider"], r["provider_id"], r["error"], r["message_id"])
                    for r, receipt in zip(results, landed, strict=True)]
            tallies: dict[str, Counts] = {}  # what recording each message moves in the counters
            for result, receipt in zip(results, landed, strict=True):
                if receipt is not None:
                    merge(tallies.setdefault(result["message_id"], {}), receipt.counts)
            writer = self._writer("outbox")
            recorded, marked, counted = record_and_mark(db, rows, sending, fence, shards, tallies, writer)
            if not counted:
                counts: Counts = {}
                for message_id in recorded & tallies.keys():
                    merge(counts, tallies[message_id])
                add_counts(db, counts, writer)
            if shards.shards:
                _map_provider_ids(db, [r for r in results if r["message_id"] in recorded], fence)
        return frozenset(recorded | marked)

    @translating
    def renew_outbox(self, message_ids: Collection[str], fence: Fence) -> frozenset[str]:
        if not message_ids:
            return frozenset()
        with self._writing(urgent=False), self.engine.begin() as conn:
            return frozenset(renew(Driver(conn, self.dialect), list(message_ids), fence, self.database.partitioning))

    @translating
    def expire_interrupted(self, now: datetime, retry_channels: Collection[str] = ()) -> int:
        """Leases that ran out: never-handed messages go back to pending, the ones caught mid-call
        are retried (idempotent channels) or `unknown`; returns how many are now `unknown`."""
        with self._writing(urgent=False), self.engine.begin() as conn:
            return expire(Driver(conn, self.dialect), now, self._writer("outbox"), retry_channels,
                          self.database.partitioning)

    @translating
    def release_held(self, error: str, now: datetime) -> int:
        with self._writing(urgent=False), self.engine.begin() as conn:
            return release_held(Driver(conn, self.dialect), error, now)

    @translating
    def outbox_next_due(self) -> datetime | None:
        with self._autocommit() as conn:  # a literal 'pending', so the partial index applies
            due = conn.exec_driver_sql("SELECT min(next_attempt_at) FROM messages WHERE dispatch = 'pending'").scalar()
        return Driver.read_time(due) if due is not None else None

    @translating
    def outbox_queued(self) -> dict[str, int]:
        with self._autocommit() as conn:  # a literal 'pending', so the partial index applies
            rows = conn.exec_driver_sql("SELECT channel, count(*) FROM messages WHERE dispatch = 'pending' "
                                        "GROUP BY channel")
            return {str(channel): int(count) for channel, count in rows}

    @translating
    def recipients(self, user_ids: Collection[str]) -> dict[str, Profile]:
        if self.cache is not None and self.cache.checked:
            return self._checked_profiles(user_ids, self.cache)
        numbers: dict[str, datetime | None] | None = None if self.dialect == "sqlite" else {}
        self._numbers.seen = numbers  # PostgreSQL: the suppressions ride on the profiles' read
        return self._committed(user_ids, self.cache.profiles if self.cache else None,
                               lambda conn, users: profiles_of(Driver(conn, self.dialect), sorted(users), numbers,
                                                               self.database.partitioning.shards))

    def _checked_profiles(self, user_ids: Collection[str], cache: StateCache) -> dict[str, Profile]:
        """PostgreSQL: the profile rows' versions read first (one statement); a cached profile is
        taken only where its version matches and no transaction of this process holds it (its
        writes may not be committed), the others read whole."""
        with self._autocommit() as conn:
            db = Driver(conn, self.dialect)
            current, self._numbers.seen = profile_stamps(db, list(user_ids))
            found, missing = cache.checked_profiles(current)
            missing += [u for u in user_ids if u not in current]  # a consent ledger without a profile row
            found.update(profiles_of(db, sorted(missing)) if missing else {})
        return found

    @translating
    def suppressions(self, numbers: Collection[str]) -> dict[str, datetime]:
        """The suppressed numbers among these; on PostgreSQL those the recipients' read just found
        (the dispatcher asks for its recipients' numbers right after them) without a statement."""
        seen, self._numbers.seen = getattr(self._numbers, "seen", None), None
        if seen is not None and all(n in seen for n in numbers):
            return {n: since for n in numbers if (since := seen[n]) is not None}
        return self._committed(numbers, self.cache.suppressions if self.cache and not self.cache.checked else None,
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
            with self._autocommit() as conn:
                found.update(load(conn, missing))
        return found
