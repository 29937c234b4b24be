"""The memory store's host-side ports: the outbox, the journeys' versions and states, and the
read views of the HTTP API."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from channels import Profile
from channels.selection import ADDRESS_FIELD
from engine.ports import IN_DOUBT, RETRIED, HostStore, JourneyVersion, OutboxItem
from engine.state import Fence, Instance, Send, Skip
from engine.stores.memory.base import MemoryBase
from engine.stores.memory.privacy import MemoryPrivacy
from engine.stores.memory.runs import MemoryRuns


class MemoryStore(MemoryRuns, MemoryPrivacy, MemoryBase):
    """Implements every port of `engine.ports` in memory."""

    # --- Outbox ---------------------------------------------------------------------------------

    def claim_outbox(self, now: datetime, limit: int, lease: timedelta, token: str) -> list[OutboxItem]:
        with self._lock:
            due = sorted((d for d in self.deliveries.values()
                          if d["dispatch"] == "pending" and d["next_attempt_at"] <= now),
                         key=lambda d: d["next_attempt_at"])[:limit]
            for delivery in due:
                delivery.update(dispatch="leased", next_attempt_at=now + lease, claim=token)
            return [self._item(d) for d in due]

    def _item(self, delivery: Mapping[str, Any]) -> OutboxItem:
        send: Send = delivery["send"]
        profile = self.profiles.get(send.user_id)
        field = ADDRESS_FIELD.get(send.channel)
        address = getattr(profile, field) if profile is not None and field else None
        return OutboxItem(send.message_id, send.user_id, send.channel, send.category, dict(send.content),
                          delivery["attempts"], address, send.instance_id)

    def _held(self, message_id: str, fence: Fence) -> dict[str, Any] | None:
        """The delivery if `fence`'s claim still holds it (the memory store's fenced write)."""
        delivery = self.deliveries.get(message_id)
        if delivery is None or delivery.get("claim") != fence.token or delivery["next_attempt_at"] <= fence.now:
            return None
        return delivery

    def finish_outbox(self, results: Sequence[Mapping[str, Any]], fence: Fence, sending: Sequence[str] = (),
                      ) -> frozenset[str]:
        with self._lock:
            held = [(r, d) for r in results if (d := self._held(r["message_id"], fence)) is not None]
            marked = [d for m in sending if (d := self._held(m, fence)) is not None and d["dispatch"] == "leased"]
            for result, delivery in held:
                delivery.update({k: result[k] for k in ("dispatch", "status", "attempts", "next_attempt_at",
                                                        "provider", "provider_id", "error")}, status_at=result["at"],
                                claim=None)
            for delivery in marked:
                delivery.update(dispatch="sending", next_attempt_at=fence.until)
            return frozenset([r["message_id"] for r, _ in held] + [d["send"].message_id for d in marked])

    def renew_outbox(self, message_ids: Collection[str], fence: Fence) -> frozenset[str]:
        with self._lock:
            held = [d for m in message_ids if (d := self._held(m, fence)) is not None]
            for delivery in held:
                delivery["next_attempt_at"] = fence.until
            return frozenset(d["send"].message_id for d in held)

    def release_held(self, error: str, now: datetime) -> int:
        with self._lock:
            held = sorted((d for d in self.deliveries.values() if d["dispatch"] == "pending" and d["error"] == error
                           and d["next_attempt_at"] > now), key=lambda d: d["next_attempt_at"])
            for n, delivery in enumerate(held):
                delivery["next_attempt_at"] = now - timedelta(microseconds=len(held) - n)
        return len(held)

    def expire_interrupted(self, now: datetime, retry_channels: Collection[str] = ()) -> int:
        with self._lock:
            expired = [d for d in self.deliveries.values()
                       if d["dispatch"] in ("leased", "sending") and d["next_attempt_at"] <= now]
            in_doubt = 0
            for delivery in expired:
                delivery["claim"] = None
                if delivery["dispatch"] == "leased":
                    delivery.update(dispatch="pending", next_attempt_at=now)
                elif delivery["send"].channel in retry_channels:
                    delivery.update(dispatch="pending", next_attempt_at=now, error=RETRIED)
                else:
                    delivery.update(dispatch="unknown", status="unknown", status_at=now, error=IN_DOUBT)
                    in_doubt += 1
            return in_doubt

    def recipients(self, user_ids: Collection[str]) -> dict[str, Profile]:
        with self._lock:
            return {u: self.profiles[u] for u in user_ids if u in self.profiles}

    def suppressions(self, numbers: Collection[str]) -> dict[str, datetime]:
        with self._lock:
            return {n: self.suppressed[n] for n in numbers if n in self.suppressed}

    def outbox_next_due(self) -> datetime | None:
        with self._lock:
            due = [d["next_attempt_at"] for d in self.deliveries.values() if d["dispatch"] == "pending"]
            return min(due, default=None)

    def outbox_queued(self) -> dict[str, int]:
        with self._lock:
            return dict(Counter(d["send"].channel for d in self.deliveries.values() if d["dispatch"] == "pending"))

    # --- Journeys ------------------------------------------------------------------------------

    def save_versions(self, versions: Sequence[JourneyVersion]) -> None:
        with self._lock:
            for version in versions:
                self.versions.setdefault((version.journey_id, version.version), version)

    def journey_version(self, journey_id: str, version: str) -> JourneyVersion | None:
        return self.versions.get((journey_id, version))

    def journey_versions(self, journey_id: str) -> list[JourneyVersion]:
        with self._lock:
            mine = [v for (j, _), v in self.versions.items() if j == journey_id]
        return sorted(mine, key=lambda v: (v.first_loaded_at, v.version))

    def journey_ids(self) -> list[str]:
        with self._lock:
            return sorted({j for j, _ in self.versions})

    def journey_states(self) -> dict[str, str]:
        return dict(self.states)

    def set_journey_state(self, journey_id: str, state: str, at: datetime) -> None:
        with self._lock:
            if state == "active":
                self.states.pop(journey_id, None)
            else:
                self.states[journey_id] = state

    def active_counts(self, journey_id: str) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        with self._lock:
            for instance in self.active_instances_of(journey_id, len(self.instances)):
                counts[instance.version] += 1
        return dict(counts)

    def cancel_pending(self, journey_id: str, reason: str, at: datetime) -> int:
        with self._lock:
            pending = [d for d in self.deliveries.values()
                       if d["dispatch"] == "pending" and d["send"].journey_id == journey_id]
            for delivery in pending:
                delivery.update(dispatch="cancelled", status="cancelled", status_at=at, error=reason)
        return len(pending)

    # --- ReadViews ------------------------------------------------------------------------------

    def instances_for_user(self, user_id: str) -> list[Instance]:
        with self._lock:
            mine = [i for i in self.instances.values() if i.user_id == user_id]
        return sorted(mine, key=lambda i: i.entered_at)

    def messages_for_user(self, user_id: str, limit: int = 200) -> list[dict[str, Any]]:
        with self._lock:
            rows = [_message_view(d) for d in self.deliveries.values() if d["send"].user_id == user_id]
        return sorted(rows, key=lambda r: r["at"], reverse=True)[:limit]

    def skips_for_user(self, user_id: str, limit: int = 200) -> list[dict[str, Any]]:
        with self._lock:
            rows = [_skip_view(s) for s in self.skips if s.user_id == user_id]
        return sorted(rows, key=lambda r: r["at"], reverse=True)[:limit]

    def message_by_provider_id(self, provider_id: str) -> dict[str, Any] | None:
        with self._lock:
            for delivery in self.deliveries.values():
                if delivery["provider_id"] == provider_id:
                    send = delivery["send"]
                    return {"message_id": send.message_id, "user_id": send.user_id, "channel": send.channel,
                            "provider": delivery["provider"]}
        return None

    def users_by_phone(self, phone: str) -> list[str]:
        with self._lock:
            return sorted(p.user_id for p in self.profiles.values() if p.phone == phone)

    def step_counts(self, journey_id: str) -> dict[str, dict[str, int]]:
        counts: dict[str, dict[str, int]] = {}
        with self._lock:
            for instance in self.instances.values():
                if instance.journey_id == journey_id:
                    per_step = counts.setdefault(instance.step or "(none)", {})
                    per_step[instance.status] = per_step.get(instance.status, 0) + 1
        return counts


def _message_view(delivery: Mapping[str, Any]) -> dict[str, Any]:
    """The columns the SQL store's messages table has."""
    send: Send = delivery["send"]
    return {"message_id": send.message_id, "instance_id": send.instance_id, "journey_id": send.journey_id,
            "user_id": send.user_id, "step": send.step, "message": send.message, "channel": send.channel,
            "category": send.category, "content": dict(send.content), "cost": send.cost, "encoding": send.encoding,
            "segments": send.segments, "decisions": [d.to_dict() for d in send.decisions], "at": send.at,
            **{k: delivery[k] for k in ("status", "status_at", "dispatch", "next_attempt_at", "attempts", "provider",
                                        "provider_id", "error")}}


def _skip_view(skip: Skip) -> dict[str, Any]:
    return {"instance_id": skip.instance_id, "user_id": skip.user_id, "step": skip.step, "message": skip.message,
            "reason": skip.reason, "decisions": [d.to_dict() for d in skip.decisions], "at": skip.at,
            "detail": skip.detail}


def _implements_every_port(store: MemoryStore) -> HostStore:
    """Never called: the type checker proves here that MemoryStore implements every port."""
    return store
