"""The SQL store's `Links`: the `links` table, written with the messages (engine/stores/sql/writes.py),
each hit counted by one short transaction here.

A hit takes the rows of every link of its message of the same kind (links, or the pixel)
`FOR UPDATE` on PostgreSQL, in code order, before it counts, so two hits at once on one message
(two workers, two links) never both count as its first; SQLite's one writer does the same."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from engine.ports import LinkHit
from engine.stores.sql.database import SqlPort
from engine.stores.sql.driver import Driver
from engine.stores.sql.translate import translating


class SqlLinks(SqlPort):
    """`Links` over the `links` table."""

    @translating
    def hit(self, code: str, pixel: bool, machine: bool, at: datetime) -> LinkHit | None:
        with self._writing(urgent=True), self.engine.begin() as conn:
            db = Driver(conn, self.dialect)
            m = db.mark
            found = db.rows(f"SELECT message_id, user_id, channel, url FROM links WHERE code = {m}", [code])
            if not found or (found[0][3] is None) != pixel:
                return None
            message_id, user_id, channel, url = found[0]
            earlier = _earlier(db, message_id, user_id, pixel, machine)
            when = db.time(at)
            [(hits,)] = db.rows(f"UPDATE links SET hits = hits + 1, machine_hits = machine_hits + {m}, "
                                f"first_hit_at = COALESCE(first_hit_at, {m}), last_hit_at = {m} "
                                f"WHERE user_id = {m} AND code = {m} RETURNING hits",
                                [int(machine), when, when, user_id, code])
        return LinkHit(message_id, user_id, channel, url, int(hits), earlier == 0)


def _earlier(db: Driver, message_id: str, user_id: str, pixel: bool, machine: bool) -> int:
    """The message's hits of this kind so far, its rows of that kind held until the transaction ends
    (by its user too: on Citus a FOR UPDATE must be routed to one shard)."""
    kind = "url IS NULL" if pixel else "url IS NOT NULL"
    lock = "" if db.sqlite else " FOR UPDATE"
    rows: Sequence[Sequence[Any]] = db.rows(f"SELECT hits, machine_hits FROM links WHERE user_id = {db.mark} AND "
                                            f"message_id = {db.mark} AND {kind} ORDER BY code{lock}",
                                            [user_id, message_id])
    return sum(int(machine_hits) if machine else int(hits) - int(machine_hits) for hits, machine_hits in rows)
