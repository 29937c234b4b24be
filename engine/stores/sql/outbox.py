"""The dispatcher's side of the messages table: which rows are due, leased, and expired."""

from __future__ import annotations

from datetime import datetime

from channels.selection import ADDRESS_FIELD
from engine.stores.sql.driver import Driver, json_text, placeholder


def expire(db: Driver, now: datetime) -> int:
    m = db.mark
    result = db.conn.exec_driver_sql(
        f"UPDATE messages SET dispatch = 'failed', status = 'unknown', status_at = {m}, error = {m} "
        f"WHERE dispatch = 'sending' AND next_attempt_at <= {m}",
        (db.time(now), "interrupted while sending; not retried to avoid a duplicate", db.time(now)))
    return int(result.rowcount or 0)


def claim_sql(dialect: str, limit: int) -> str:
    """Due pending messages with the address their channel needs, read from the profile's JSON.
    `dispatch = 'pending'` is a literal so that the partial index of pending messages applies."""
    field = "CASE m.channel " + " ".join(f"WHEN '{c}' THEN '{f}'" for c, f in ADDRESS_FIELD.items()) + " END"
    sql = (f"SELECT m.message_id, m.user_id, m.channel, m.category, m.content, m.attempts, "
           f"{json_text(dialect, 'p.doc', field)}, m.instance_id "
           "FROM messages m LEFT OUTER JOIN profiles p ON p.user_id = m.user_id "
           f"WHERE m.dispatch = 'pending' AND m.next_attempt_at <= {placeholder(dialect)} "
           f"ORDER BY m.next_attempt_at LIMIT {int(limit)}")
    return sql if dialect == "sqlite" else sql + " FOR UPDATE OF m SKIP LOCKED"
