"""The memory store's `Outbox` port: each message's delivery state in `MemoryData.deliveries`,
claimed under a token and written only while that claim holds (the memory store's fence)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from channels import Profile
from channels.selection import ADDRESS_FIELD
from engine.ports import IN_DOUBT, RETRIED, OutboxItem
from engine.state import Fence, Send
from engine.stores.memory.data import OnData


class MemoryOutbox(OnData):
    """The dispatcher's side of the messages, under the store's lock."""

    def claim_outbox(self, now: datetime, limit: int, lease: timedelta, token: str) -> list[OutboxItem]:
        with self.data.lock:
            due = sorted((d for d in self.data.deliveries.values()
                          if d["dispatch"] == "pending" and d["next_attempt_at"] <= now),
                         key=lambda d: d["next_attempt_at"])[:limit]
            for delivery in due:
                delivery.update(dispatch="leased", next_attempt_at=now + lease, claim=token)
            return [self._item(d) for d in due]

    def _item(self, delivery: Mapping[str, Any]) -> OutboxItem:
        send: Send = delivery["send"]
        profile = self.data.profiles.get(send.user_id)
        field = ADDRESS_FIELD.get(send.channel)
        address = getattr(profile, field) if profile is not None and field else None
        return OutboxItem(send.message_id, send.user_id, send.channel, send.category, dict(send.content),
                          delivery["attempts"], address, send.instance_id)

    def _held(self, message_id: str, fence: Fence) -> dict[str, Any] | None:
        """The delivery if `fence`'s claim still holds it (the memory store's fenced write)."""
        delivery = self.data.deliveries.get(message_id)
        if delivery is None or delivery.get("claim") != fence.token or delivery["next_attempt_at"] <= fence.now:
            return None
        return delivery

    def finish_outbox(self, results: Sequence[Mapping[str, Any]], fence: Fence, sending: Sequence[str] = (),
                      ) -> frozenset[str]:
        with self.data.lock:
            held = [(r, d) for r in results if (d := self._held(r["message_id"], fence)) is not None]
            marked = [d for m in sending if (d := self._held(m, fence)) is not None and d["dispatch"] == "leased"]
            for result, delivery in held:
                landed = self.data.received(delivery, result["status"])  # never backwards
                delivery.update({k: result[k] for k in ("dispatch", "attempts", "next_attempt_at", "provider",
                                                        "provider_id", "error")}, **(landed or {}),
                                status_at=result["at"], claim=None)
            for delivery in marked:
                delivery.update(dispatch="sending", next_attempt_at=fence.until)
            return frozenset([r["message_id"] for r, _ in held] + [d["send"].message_id for d in marked])

    def renew_outbox(self, message_ids: Collection[str], fence: Fence) -> frozenset[str]:
        with self.data.lock:
            held = [d for m in message_ids if (d := self._held(m, fence)) is not None]
            for delivery in held:
                delivery["next_attempt_at"] = fence.until
            return frozenset(d["send"].message_id for d in held)

    def release_held(self, error: str, now: datetime) -> int:
        with self.data.lock:
            held = sorted((d for d in self.data.deliveries.values() if d["dispatch"] == "pending"
                           and d["error"] == error and d["next_attempt_at"] > now), key=lambda d: d["next_attempt_at"])
            for n, delivery in enumerate(held):
                delivery["next_attempt_at"] = now - timedelta(microseconds=len(held) - n)
        return len(held)

    def expire_interrupted(self, now: datetime, retry_channels: Collection[str] = ()) -> int:
        with self.data.lock:
            expired = [d for d in self.data.deliveries.values()
                       if d["dispatch"] in ("leased", "sending") and d["next_attempt_at"] <= now]
            in_doubt = 0
            for delivery in expired:
                delivery["claim"] = None
                if delivery["dispatch"] == "leased":
                    delivery.update(dispatch="pending", next_attempt_at=now)
                elif delivery["send"].channel in retry_channels:
                    delivery.update(dispatch="pending", next_attempt_at=now, error=RETRIED)
                else:
                    self.data.received(delivery, "unknown")
                    delivery.update(dispatch="unknown", status="unknown", status_at=now, error=IN_DOUBT)
                    in_doubt += 1
            return in_doubt

    def recipients(self, user_ids: Collection[str]) -> dict[str, Profile]:
        with self.data.lock:
            return {u: self.data.profiles[u] for u in user_ids if u in self.data.profiles}

    def suppressions(self, numbers: Collection[str]) -> dict[str, datetime]:
        with self.data.lock:
            return {n: self.data.suppressed[n] for n in numbers if n in self.data.suppressed}

    def outbox_next_due(self) -> datetime | None:
        with self.data.lock:
            due = [d["next_attempt_at"] for d in self.data.deliveries.values() if d["dispatch"] == "pending"]
            return min(due, default=None)

    def outbox_queued(self) -> dict[str, int]:
        with self.data.lock:
            return dict(Counter(d["send"].channel for d in self.data.deliveries.values()
                                if d["dispatch"] == "pending"))
