"""The memory store's `Links`: each hit of a tracked link counted on its row, under the store's
lock, so the message's first hit of each kind is counted once however many come at once."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from engine.ports import LinkHit
from engine.stores.memory.data import OnData


class MemoryLinks(OnData):
    """`Links` over the data's `links` (code -> row)."""

    def hit(self, code: str, pixel: bool, machine: bool, at: datetime) -> LinkHit | None:
        data = self.data
        with data.transaction():
            row = data.links.get(code)
            if row is None or (row["url"] is None) != pixel:
                return None
            first = not any(_hits(other, machine) for other in data.links.values()
                            if other["message_id"] == row["message_id"] and (other["url"] is None) == pixel)
            counted = {**row, "hits": row["hits"] + 1, "machine_hits": row["machine_hits"] + machine,
                       "first_hit_at": row["first_hit_at"] or at, "last_hit_at": at}
            data.set(data.links, code, counted)
            return LinkHit(row["message_id"], row["user_id"], row["channel"], row["url"], counted["hits"], first)


def _hits(row: dict[str, Any], machine: bool) -> int:
    """A link's hits of one kind: by machines, or by people."""
    return int(row["machine_hits"] if machine else row["hits"] - row["machine_hits"])
