"""The memory store's `ReadViews`: what the HTTP API and the webhooks read, in the shapes the SQL
store's rows have."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from channels.selection import shown
from engine.ports import MessageQuery
from engine.state import Instance, Send, Skip
from engine.stores.links import with_links
from engine.stores.memory.data import OnData


class MemoryViews(OnData):
    """Reads outside the engine's transactions, under the store's lock."""

    def instances_for_user(self, user_id: str) -> list[Instance]:
        with self.data.lock:
            mine = [i for i in self.data.instances.values() if i.user_id == user_id]
        return sorted(mine, key=lambda i: i.entered_at)

    def messages_for_user(self, user_id: str, limit: int = 200) -> list[dict[str, Any]]:
        with self.data.lock:
            rows = [_message_view(d) for d in self.data.deliveries.values() if d["send"].user_id == user_id]
            links = [row for row in self.data.links.values() if row["user_id"] == user_id]
        page = sorted(rows, key=lambda r: r["at"], reverse=True)[:limit]
        return with_links(page, links)

    def find_messages(self, query: MessageQuery, limit: int) -> list[dict[str, Any]]:
        with self.data.lock:
            rows = [_message_view(d) for d in self.data.deliveries.values() if _matches(d, query)]
            page = sorted(rows, key=lambda r: (r["at"], r["message_id"]), reverse=True)[:limit]
            ids = {r["message_id"] for r in page}
            links = [row for row in self.data.links.values() if row["message_id"] in ids]
        return with_links(page, links)

    def skips_for_user(self, user_id: str, limit: int = 200) -> list[dict[str, Any]]:
        with self.data.lock:
            rows = [_skip_view(s) for s in self.data.skips if s.user_id == user_id]
        return sorted(rows, key=lambda r: r["at"], reverse=True)[:limit]

    def message_by_provider_id(self, provider_id: str) -> dict[str, Any] | None:
        with self.data.lock:
            for delivery in self.data.deliveries.values():
                if delivery["provider_id"] == provider_id:
                    send = delivery["send"]
                    return {"message_id": send.message_id, "user_id": send.user_id, "channel": send.channel,
                            "provider": delivery["provider"]}
        return None

    def users_by_phone(self, phone: str) -> list[str]:
        with self.data.lock:
            return sorted(p.user_id for p in self.data.profiles.values() if p.phone == phone)

    def step_counts(self, journey_id: str) -> dict[str, dict[str, int]]:
        counts: dict[str, dict[str, int]] = {}
        with self.data.lock:
            for instance in self.data.instances.values():
                if instance.journey_id == journey_id:
                    per_step = counts.setdefault(instance.step or "(none)", {})
                    per_step[instance.status] = per_step.get(instance.status, 0) + 1
        return counts

    def journey_counts(self, journey_id: str, version: str | None, low: str | None, high: str | None,
                       ) -> list[tuple[str, str, float]]:
        with self.data.lock:
            return [(k.path, k.name, v) for k, v in self.data.counters.items()
                    if k.journey_id == journey_id and (version is None or k.version == version)
                    and (low is None or k.hour >= low) and (high is None or k.hour < high)]


def _matches(delivery: Mapping[str, Any], query: MessageQuery) -> bool:
    send: Send = delivery["send"]
    given = ((send.journey_id, query.journey_id), (send.step, query.step), (send.channel, query.channel),
             (delivery["status"], query.status))
    return (all(value == wanted for value, wanted in given if wanted is not None)
            and (query.since is None or send.at >= query.since) and (query.until is None or send.at < query.until)
            and (query.before is None or (send.at, send.message_id) < query.before))


def _message_view(delivery: Mapping[str, Any]) -> dict[str, Any]:
    """The columns the SQL store's messages table has."""
    send: Send = delivery["send"]
    return {"message_id": send.message_id, "instance_id": send.instance_id, "journey_id": send.journey_id,
            "user_id": send.user_id, "step": send.step, "message": send.message, "channel": send.channel,
            "category": send.category, "content": dict(send.content), "cost": send.cost, "encoding": send.encoding,
            "segments": send.segments, "decisions": shown(send.decisions, send.choice), "at": send.at,
            "choice": send.choice.to_dict() if send.choice is not None else None,
            "locale": send.locale,
            **{k: delivery[k] for k in ("status", "status_at", "dispatch", "next_attempt_at", "attempts", "provider",
                                        "provider_id", "error")}}


def _skip_view(skip: Skip) -> dict[str, Any]:
    return {"instance_id": skip.instance_id, "user_id": skip.user_id, "step": skip.step, "message": skip.message,
            "reason": skip.reason, "decisions": [d.to_dict() for d in skip.decisions], "at": skip.at,
            "detail": skip.detail}
