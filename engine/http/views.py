"""What the API shows of the stored rows: messages, skipped and deferred sends, instances.

The stores hand back their rows; these views give them the API's shape (times as ISO 8601, the
outbox's state as `dispatch`) and add what the rows imply: a pending message's next attempt,
and for an instance waiting on a timer, what it waits for and until when. A send put off by
quiet hours is not a message yet (it is decided again when the quiet hours end, consent and
caps as of then): it shows among the user's `deferred` sends, from the instance that waits.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from engine.errors import JourneyError
from engine.events import format_time
from engine.host.server import Server
from engine.model import SendStep
from engine.state import DEFER_REASON, TIMER_REASONS, Instance

INSTANCE_KEYS = ("instance_id", "journey_id", "version", "key", "status", "step", "path", "entered_at", "ended_at",
                 "reason")


def instance_view(instance: Instance) -> dict[str, Any]:
    data = instance.to_dict()
    view = {k: data.get(k) for k in INSTANCE_KEYS}
    timer = instance.timer
    view["timer"] = None if timer is None else {"kind": timer.kind, "due_at": format_time(timer.due),
                                                "reason": TIMER_REASONS.get(timer.kind, timer.kind)}
    if instance.digest is not None:
        view["digest"] = instance.digest.summary()
    return view


def message_view(row: dict[str, Any]) -> dict[str, Any]:
    """`next_attempt_at` only while the message waits in the outbox (`pending`: quiet hours, a
    retry, a send rate's turn); otherwise it is the outbox's own lease time, not the user's business."""
    view = {k: _iso(v) for k, v in row.items()}
    view["next_attempt_at"] = _iso(row.get("next_attempt_at")) if row["dispatch"] == "pending" else None
    view["links"] = [{k: _iso(v) for k, v in link.items()} for link in row.get("links", ())]
    return view


def skip_view(row: dict[str, Any]) -> dict[str, Any]:
    return {k: _iso(v) for k, v in row.items() if k != "id"}


def deferred_sends(server: Server, user_id: str) -> list[dict[str, Any]]:
    """The user's sends put off by quiet hours, each with when it will be decided again."""
    return [_deferred(server, i) for i in server.store.views.instances_for_user(user_id)
            if i.status == "active" and i.timer is not None and i.timer.kind == "defer"]


def _deferred(server: Server, instance: Instance) -> dict[str, Any]:
    assert instance.timer is not None
    try:
        step = server.engine.journey_version(instance.journey_id, instance.version).step(instance.step or "")
        message = step.message if isinstance(step, SendStep) else None
    except (JourneyError, LookupError):  # its version is gone: the instance fails when its timer fires
        message = None
    return {"user_id": instance.user_id, "instance_id": instance.instance_id, "journey_id": instance.journey_id,
            "version": instance.version, "step": instance.step, "message": message, "status": "deferred",
            "reason": DEFER_REASON, "next_attempt_at": format_time(instance.timer.due)}


def _iso(value: Any) -> Any:
    return format_time(value) if isinstance(value, datetime) else value


def feed_item(row: dict[str, Any]) -> dict[str, Any]:
    """An item of a person's in-app feed (`FeedItem`), from the store's row."""
    content = row["content"]
    return {"message_id": row["message_id"], "title": content.get("title"), "body": content.get("body"),
            "at": format_time(row["at"]), **{k: format_time(row[k]) if row[k] else None
                                             for k in ("seen_at", "read_at", "archived_at")},
            "journey_id": row["journey_id"], "message": row["message"], "locale": row["locale"],
            "content": content}
