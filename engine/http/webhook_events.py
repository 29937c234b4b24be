"""What the provider webhooks share (`engine.http.webhooks` for Twilio, `engine.http.rbm_webhooks`
for RBM): how they answer, and how what a provider heard becomes events.

A webhook answers 200 for whatever it was signed and understood or chose to ignore (a provider
retries anything else), and problem details for a refusal, like every other 4xx of the API. What a
person sent becomes one event per profile holding the sender's number; a keyword acts on the number
and goes to the first profile alone.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from channels import classify_keyword
from engine.errors import EventError
from engine.events import parse_event
from engine.host.server import Server
from engine.http.problems import PROBLEM_JSON, problem_body


@dataclass(frozen=True, slots=True)
class WebhookReply:
    status: int
    body: bytes
    media_type: str = "application/json"


def json_reply(status: int, doc: Mapping[str, Any]) -> WebhookReply:
    return WebhookReply(status, json.dumps(doc).encode())


def problem_reply(status: int, detail: str) -> WebhookReply:
    """A refusal, as problem details like every other 4xx of the API."""
    return WebhookReply(status, json.dumps(problem_body(status, detail)).encode(), PROBLEM_JSON)


def inbound_events(server: Server, users: list[str], key: str, kind: str, properties: dict[str, Any],
                   ) -> list[dict[str, Any]]:
    """What a person sent, as one event for every profile that holds the sender's number, in user_id
    order (event ids `key`, `key:<user>`); a keyword (STOP, START, HELP) in `properties.text` goes to
    the first of them alone: it acts on the number (the suppression list covers every profile
    holding it) and is answered once."""
    if classify_keyword(str(properties.get("text") or ""), server.engine.policy) is not None:
        users = users[:1]
    return [{"id": key if n == 0 else f"{key}:{user_id}", "type": kind, "user_id": user_id, "properties": properties}
            for n, user_id in enumerate(users)]


def ingest(server: Server, data: dict[str, Any] | list[dict[str, Any]], reply: WebhookReply | None) -> WebhookReply:
    """Ingest the events (a provider's retry is a duplicate, by event id); `reply`, or how many."""
    try:
        events = [parse_event(item, server.clock.now()) for item in (data if isinstance(data, list) else [data])]
    except EventError as exc:
        return problem_reply(400, str(exc))
    duplicates = sum(1 for result in server.ingest(events) if result.duplicate)
    return reply or json_reply(200, {"accepted": len(events) - duplicates, "duplicates": duplicates})
