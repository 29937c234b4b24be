"""One writer per user at a time across every worker on one PostgreSQL database.

Two `journey serve` processes may each take an event for the same user at the same moment
(a load balancer does not know users). Each transaction that is about to read users' state
takes a transaction-scoped advisory lock per user first, in one statement and in key order
(so two batches never wait for each other in a circle); the second worker then waits for the
first to commit, and reads what it wrote: a `re_entry: never` journey is entered once. The
locks go with the transaction, whether it commits or rolls back. SQLite has one writer anyway.
"""

from __future__ import annotations

from collections.abc import Collection

from engine.state import user_hash
from engine.stores.sql.driver import Driver


def user_key(user_id: str) -> int:
    """A stable signed 64-bit key for a user (the same in every worker and every release)."""
    unsigned = user_hash(user_id)
    return unsigned - (1 << 64) if unsigned >= 1 << 63 else unsigned


def lock_users(db: Driver, user_ids: Collection[str]) -> None:
    if db.sqlite or not user_ids:
        return
    keys = sorted({user_key(u) for u in user_ids})
    db.rows("SELECT pg_advisory_xact_lock(k) FROM (SELECT unnest(%b::bigint[]) AS k ORDER BY 1) AS ordered", [keys])
