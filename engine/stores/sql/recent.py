"""The `recent` table (schema 13) and `SqlRecent`, the `Recent` port within one transaction: each
user's marks that a later step asks about (the events a `wait_for` look-back may take, the passes
of throttles), each kept until its `expires_at` and no longer.

Marks are read per batch of users (`prefetch`, one query a chunk) or per user on first read, and
written with the transaction's other writes. Expired rows are deleted on write, oldest first by
the indexed `expires_at`, in batches of at least `PRUNE_AT_LEAST` and twice what was written
(`FOR UPDATE SKIP LOCKED` on PostgreSQL, so workers pruning at once never wait on each other):
the table holds what the journeys' look-backs and throttle periods need. Nothing touches it
unless a loaded journey asks for marks (`engine.steps.needs`).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Index
from sqlalchemy.types import JSON
from sqlmodel import Field, SQLModel

from engine.state import Mark
from engine.stores.sql.driver import Driver
from engine.stores.sql.schema import chunks, numbered

PRUNE_AT_LEAST = 100  # expired rows deleted per write, at least
_COLUMNS = ("user_id", "kind", "name", "at", "expires_at", "data")


class RecentRow(SQLModel, table=True):
    """One mark of one user: `kind` event (`name` its type, `data` the event) or pass (a throttle's
    journey, step and key)."""

    __tablename__ = "recent"
    __table_args__ = (Index("ix_recent_user", "user_id"), Index("ix_recent_expires", "expires_at"))
    user_id: str = Field(primary_key=True)
    id: int | None = numbered()
    kind: str
    name: str
    at: datetime
    expires_at: datetime
    data: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))


class SqlRecent:
    """The marks of the users this transaction reads, and the ones it adds (written by `flush`)."""

    def __init__(self, db: Driver, sharded: bool = False) -> None:
        self.db = db
        self.sharded = sharded  # Citus: prune only the users written (a statement routed to their shard)
        self._users: dict[str, list[Mark]] = {}
        self._new: list[Mark] = []

    def prefetch(self, user_ids: Collection[str], now: datetime) -> None:
        missing = [u for u in user_ids if u not in self._users]
        for chunk in chunks(missing):
            self._load(chunk, now)

    def marks(self, user_id: str, kind: str, since: datetime) -> Sequence[Mark]:
        if user_id not in self._users:
            self._load([user_id], since)
        return [m for m in self._users[user_id] if m.kind == kind and m.at >= since]

    def add(self, mark: Mark) -> None:
        self._new.append(mark)
        loaded = self._users.get(mark.user_id)
        if loaded is not None:
            loaded.append(mark)

    def flush(self) -> None:
        """Write the new marks, then delete expired ones (as many as written, twice over)."""
        if not self._new:
            return
        db = self.db
        db.write(db.insert_sql("recent", _COLUMNS), [
            (m.user_id, m.kind, m.name, db.time(m.at), db.time(m.until), db.json(dict(m.data)) if m.data else None)
            for m in self._new])
        now = max(m.at for m in self._new)
        if self.sharded:
            db.conn.exec_driver_sql("DELETE FROM recent WHERE user_id = ANY(%s) AND expires_at < %s",
                                    (sorted({m.user_id for m in self._new}), db.time(now)))
        else:
            self.prune(now, max(PRUNE_AT_LEAST, 2 * len(self._new)))
        self._new = []

    def prune(self, now: datetime, limit: int) -> int:
        """Delete up to `limit` marks expired by `now`, the oldest first; returns how many went."""
        db = self.db
        skip = "" if db.sqlite else " FOR UPDATE SKIP LOCKED"
        result = db.conn.exec_driver_sql(
            f"DELETE FROM recent WHERE id IN (SELECT id FROM recent WHERE expires_at < {db.mark} "
            f"ORDER BY expires_at LIMIT {int(limit)}{skip})", (db.time(now),))
        return int(result.rowcount or 0)

    def _load(self, user_ids: Sequence[str], now: datetime) -> None:
        db = self.db
        found: dict[str, list[Mark]] = {u: [] for u in user_ids}
        query = ("SELECT user_id, kind, name, at, expires_at, data FROM recent WHERE user_id IN ({in}) "
                 f"AND expires_at >= {db.mark} ORDER BY at, id")
        for user_id, kind, name, at, expires_at, data in db.where_in(query, list(user_ids), [db.time(now)]):
            found[user_id].append(Mark(user_id, kind, name, db.read_time(at), db.read_time(expires_at),
                                       db.read_json(data) if data is not None else None))
        for mark in self._new:  # added by this transaction before the user was read
            if mark.user_id in found:
                found[mark.user_id].append(mark)
        self._users.update(found)


def forget(db: Driver, user_id: str) -> int:
    """An erasure: the user's marks (their events among them) go."""
    result = db.conn.exec_driver_sql(f"DELETE FROM recent WHERE user_id = {db.mark}", (user_id,))
    return int(result.rowcount or 0)
