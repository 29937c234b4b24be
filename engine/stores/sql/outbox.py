"""The dispatcher's side of the messages table: which rows are due, leased, and expired."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from channels.selection import ADDRESS_FIELD
from engine.ports import IN_DOUBT, RETRIED
from engine.stores.sql.driver import Driver, json_text, placeholder


def expire(db: Driver, now: datetime, retry_channels: Collection[str] = ()) -> int:
    """Leases that ran out (their dispatcher stopped): a message still `leased` was never handed to
    a provider and goes back to `pending`; one caught `sending` is in doubt: retried where every
    provider of its channel takes an idempotency key, else `unknown` (never `failed`: it may well
    have been delivered). Returns how many became `unknown`."""
    m, at = db.mark, db.time(now)
    db.conn.exec_driver_sql(f"UPDATE messages SET dispatch = 'pending', next_attempt_at = {m} "
                            f"WHERE dispatch = 'leased' AND next_attempt_at <= {m}", (at, at))
    if retry_channels:
        channels = sorted(retry_channels)
        db.conn.exec_driver_sql(
            f"UPDATE messages SET dispatch = 'pending', next_attempt_at = {m}, error = {m} WHERE dispatch = 'sending' "
            f"AND next_attempt_at <= {m} AND channel IN ({db.marks(len(channels))})", (at, RETRIED, at, *channels))
    result = db.conn.exec_driver_sql(
        f"UPDATE messages SET dispatch = 'unknown', status = 'unknown', status_at = {m}, error = {m} "
        f"WHERE dispatch = 'sending' AND next_attempt_at <= {m}", (at, IN_DOUBT, at))
    return int(result.rowcount or 0)


def release_held(db: Driver, error: str, now: datetime) -> int:
    """The pending messages held back with `error` and due later, due now: a microsecond apart up to
    `now`, in the order they were due. The dispatcher then books them again at the rates in force."""
    held = db.rows(f"SELECT message_id FROM messages WHERE dispatch = 'pending' AND next_attempt_at > {db.mark} "
                   f"AND error = {db.mark} ORDER BY next_attempt_at", [db.time(now), error])
    db.write(f"UPDATE messages SET next_attempt_at = {db.mark} WHERE message_id = {db.mark}",
             [(db.time(now - timedelta(microseconds=len(held) - n)), row[0]) for n, row in enumerate(held)])
    return len(held)


def claim_sql(dialect: str, limit: int) -> str:
    """Due pending messages with the address their channel needs, read from the profile's JSON.
    `dispatch = 'pending'` is a literal so that the partial index of pending messages applies.
    On PostgreSQL the claim runs with bitmap scans off: mid-burst the statistics still say few
    messages wait, and the planner then reads every pending message and sorts them (230 ms for
    53,000) rather than walk the index in order and stop at the limit (6 ms)."""
    field = "CASE m.channel " + " ".join(f"WHEN '{c}' THEN '{f}'" for c, f in ADDRESS_FIELD.items()) + " END"
    sql = (f"SELECT m.message_id, m.user_id, m.channel, m.category, m.content, m.attempts, "
           f"{json_text(dialect, 'p.doc', field)}, m.instance_id "
           "FROM messages m LEFT OUTER JOIN profiles p ON p.user_id = m.user_id "
           f"WHERE m.dispatch = 'pending' AND m.next_attempt_at <= {placeholder(dialect)} "
           f"ORDER BY m.next_attempt_at LIMIT {int(limit)}")
    return sql if dialect == "sqlite" else sql + " FOR UPDATE OF m SKIP LOCKED"


ATTEMPT_COLUMNS = ("dispatch", "status", "status_at", "attempts", "next_attempt_at", "provider", "provider_id", "error")


def record_attempts(db: Driver, rows: list[tuple[Any, ...]]) -> None:
    """Each row: the `ATTEMPT_COLUMNS` values, then the message id. On PostgreSQL one UPDATE over
    arrays for the whole batch rather than a statement a message."""
    db.update("messages", "message_id", ATTEMPT_COLUMNS, rows)
