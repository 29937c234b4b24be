"""`GET /v1/users/{user_id}/timeline` (getUserTimeline): everything the stores keep about one
person's journeys, in order: each instance's entry with the event that started it, every send's
decision (each candidate with its reason, reach and cost) and its message, delivery receipts and
engagement (the message's latest status), skipped sends with their decisions, the timer an
instance waits on, and how each instance ended. Built from the instances, messages and skips
already kept; events that entered no journey are not kept, so they are not in it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from engine.http.message_schemas import Timeline
from engine.http.openapi import documented
from engine.http.routing import JsonRoute, ServerDep, UserId
from engine.http.views import instance_view, message_view, skip_view
from engine.state import TIMER_REASONS, Instance

router = APIRouter(route_class=JsonRoute, tags=["messages"])


@router.get("/v1/users/{user_id}/timeline", operation_id="getUserTimeline", **documented(Timeline))
def user_timeline(user_id: UserId, server: ServerDep) -> dict[str, Any]:
    """The person's events, decisions, messages, receipts, timers and instances, oldest first."""
    views = server.store.views
    instances = views.instances_for_user(user_id)
    journeys = {i.instance_id: i.journey_id for i in instances}
    items = [item for i in instances for item in _instance_items(i)]
    for row in views.messages_for_user(user_id):
        items.extend(_message_items(message_view(row)))
    for row in views.skips_for_user(user_id):
        skip = skip_view(row)
        items.append({"at": skip["at"], "kind": "decision", "journey": journeys.get(skip["instance_id"]),
                      "step": skip["step"], "message": skip["message"], "sent": False, "reason": skip["reason"],
                      "decisions": skip["decisions"]})
    items.sort(key=_order)
    return {"user_id": user_id, "items": items}


_ORDER = {"event": 0, "instance": 1, "decision": 2, "message": 3, "receipt": 4, "timer": 5}


def _order(item: dict[str, Any]) -> tuple[str, int]:
    """By time; at one instant, as they happen: the event, the entry, decisions, sends, receipts,
    timers, and the end last."""
    ended = item["kind"] == "instance" and item["action"] != "entered"
    return item["at"], 6 if ended else _ORDER[item["kind"]]


def _instance_items(instance: Instance) -> list[dict[str, Any]]:
    view = instance_view(instance)
    base = {"journey": instance.journey_id, "instance_id": instance.instance_id}
    event = instance.event
    items = [{**base, "at": event.get("timestamp") or view["entered_at"], "kind": "event", "step": None,
              "type": event.get("type"), "properties": event.get("properties", {})},
             {**base, "at": view["entered_at"], "kind": "instance", "step": None, "action": "entered",
              "key": instance.key, "version": instance.version}]
    if instance.timer is not None and instance.active:
        items.append({**base, "at": view["timer"]["due_at"], "kind": "timer", "step": instance.step,
                      "timer": instance.timer.kind, "reason": TIMER_REASONS.get(instance.timer.kind)})
    if view.get("ended_at"):
        items.append({**base, "at": view["ended_at"], "kind": "instance", "step": instance.step,
                      "action": instance.status, "reason": instance.reason, "path": list(instance.path)})
    return items


def _message_items(message: dict[str, Any]) -> list[dict[str, Any]]:
    base = {"journey": message["journey_id"], "step": message["step"], "message_id": message["message_id"],
            "instance_id": message["instance_id"]}
    items = [{**base, "at": message["at"], "kind": "decision", "message": message["message"], "sent": True,
              "channel": message["channel"], "decisions": message["decisions"], "choice": message.get("choice")},
             {**base, "at": message["at"], "kind": "message", "channel": message["channel"],
              "status": message["status"], "cost": message["cost"], "content": message["content"]}]
    if message["status"] != "queued" and message.get("status_at"):
        items.append({**base, "at": message["status_at"], "kind": "receipt", "channel": message["channel"],
                      "status": message["status"], "provider": message.get("provider"),
                      "error": message.get("error")})
    return items
