"""The memory store's side of the `Feed` port: each person's `in_app` messages that were not
cancelled nor erased, newest first, and what they did to each (undone with a failed transaction)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from engine.stores.memory.data import MemoryData, OnData

_EMPTY = {"seen_at": None, "read_at": None, "archived_at": None}


class MemoryFeed(OnData):
    """The feed over the store's deliveries and `feed_states` (message_id -> its state's times)."""

    def _feed(self, user_id: str) -> list[dict[str, Any]]:
        """The person's feed, newest first."""
        data = self.data
        with data.lock:
            mine = [d["send"] for d in data.deliveries.values() if d["send"].user_id == user_id and
                    d["send"].channel == "in_app" and d["dispatch"] != "cancelled" and d["send"].content]
            rows = [{"message_id": s.message_id, "journey_id": s.journey_id, "message": s.message,
                     "content": dict(s.content), "locale": s.locale, "at": s.at,
                     **data.feed_states.get(s.message_id, _EMPTY)} for s in mine]
        return sorted(rows, key=lambda r: (r["at"], r["message_id"]), reverse=True)

    def feed_items(self, user_id: str, before: tuple[datetime, str] | None, limit: int,
                   archived: bool = False) -> list[dict[str, Any]]:
        rows = [r for r in self._feed(user_id) if (archived or r["archived_at"] is None)
                and (before is None or (r["at"], r["message_id"]) < before)]
        return rows[:limit]

    def feed_unread(self, user_id: str) -> int:
        return sum(1 for r in self._feed(user_id) if r["read_at"] is None and r["archived_at"] is None)

    def mark_feed(self, user_id: str, message_ids: Sequence[str] | None, state: str, at: datetime) -> list[str]:
        data = self.data
        column = f"{state}_at"
        wanted = None if message_ids is None else set(message_ids)
        with data.transaction():
            rows = [r for r in reversed(self._feed(user_id))
                    if (wanted is None or r["message_id"] in wanted) and r[column] is None]
            for row in rows:
                states = {**data.feed_states.get(row["message_id"], _EMPTY), column: at}
                if state == "read" and states["seen_at"] is None:
                    states["seen_at"] = at
                data.set(data.feed_states, row["message_id"], states)
        return [r["message_id"] for r in rows]


def erase_feed(data: MemoryData, user_id: str) -> None:
    """What the person did to their feed, forgotten (their erasure), inside the caller's transaction."""
    mine = [d["send"].message_id for d in data.deliveries.values() if d["send"].user_id == user_id]
    for message_id in mine:
        data.pop(data.feed_states, message_id)
