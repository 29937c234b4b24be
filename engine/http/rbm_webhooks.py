"""Google RCS Business Messaging's webhook (`POST /v1/webhooks/rbm`, a route of the `webhooks`
router in `engine.http.webhooks`) turned into events. It takes no bearer key: RBM signs it. The
body is read as sent (the signature is over its text) and parsed with `RbmPush`, the model that
documents it (400 naming the field it refuses).

RBM posts Pub/Sub push messages, `{"message": {"data": <base64 JSON>, "messageId", ...},
"subscription"}`, each signed with `X-Goog-Signature` (base64 HMAC-SHA512 of `message.data`
with the agent's client token); one that no configured RBM agent signed is a 403 and changes
nothing. The first request of a new webhook is a verification, `{"clientToken", "secret"}`,
answered with the secret when the token is one of ours.

The decoded data is a user event or a user message:

- `eventType` DELIVERED or READ: `rcs.delivered` / `rcs.read` for the message whose provider id
  is the event's `messageId` (the agent-assigned id); IS_TYPING and unknown messages are
  acknowledged and ignored.
- `suggestionResponse` (a tapped chip): `rcs.reply` with `postback` its postbackData and `text`
  its text; `text` (typed): `rcs.reply` with that text and `postback` null; `location` (a shared
  location): `rcs.reply` with `location`. For every profile holding `senderPhoneNumber` (a keyword
  for the first alone, as for SMS); RBM does not say which agent message it answers, so the engine
  pins it to the user's latest RCS message.

Event ids are `rbm:<eventId>` and `rbm:<messageId>`, so Google's retries are duplicates; a 200 is
what stops them, so whatever is signed but not understood is acknowledged and ignored.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import ConfigDict, Field, ValidationError

from channels.providers.config import providers_of
from channels.providers.rbm import RbmProvider
from engine.host.server import Server
from engine.http.bodies import Body
from engine.http.problems import describe, validation_errors
from engine.http.webhook_events import WebhookReply, inbound_events, ingest, json_reply, problem_reply

log = logging.getLogger("journey.webhooks")

STATUSES = {"DELIVERED": "delivered", "READ": "read"}


class RbmPushMessage(Body):
    """The Pub/Sub message of a push: RBM's event in `data`."""

    model_config = ConfigDict(extra="allow")
    data: str = Field(description="base64 JSON: a user event (eventType DELIVERED, READ) or a user message "
                      "(text, suggestionResponse, location); `X-Goog-Signature` signs this text")
    messageId: str | None = None
    publishTime: str | None = None


class RbmPush(Body):
    """Google RCS Business Messaging's Pub/Sub push, signed with `X-Goog-Signature`; or, for a new
    webhook, `{"clientToken", "secret"}`, answered with the secret."""

    model_config = ConfigDict(extra="allow")
    holds: ClassVar[str] = "a Pub/Sub push message"
    message: RbmPushMessage | None = None
    subscription: str | None = None
    clientToken: str | None = None
    secret: str | None = None


def handle_rbm(server: Server, headers: Mapping[str, str], body: bytes) -> WebhookReply:
    agents: list[RbmProvider] = providers_of(server.dispatcher.providers, RbmProvider)
    if not agents:
        return problem_reply(404, "no rbm provider is configured")
    push = _parsed(body)
    if isinstance(push, WebhookReply):
        return push
    if push.clientToken is not None and push.secret is not None:
        return _verification(agents, push.clientToken, push.secret)
    if push.message is None:
        return problem_reply(400, "message.data: expected the base64 data of a Pub/Sub push message")
    data = push.message.data
    if not any(agent.verify(data, headers.get("x-goog-signature", "")) for agent in agents):
        log.warning("refused an rbm webhook: bad or missing X-Goog-Signature")
        return problem_reply(403, "X-Goog-Signature does not match")
    try:
        event = json.loads(base64.b64decode(data, validate=True))
    except (ValueError, binascii.Error, RecursionError):
        return problem_reply(400, "message.data: expected base64 JSON")
    if not isinstance(event, dict):
        return problem_reply(400, "message.data: expected a JSON object")
    if "eventType" in event:
        return _user_event(server, event)
    return _user_message(server, event)


def _parsed(body: bytes) -> RbmPush | WebhookReply:
    """The push as `RbmPush` reads it, or the 400 naming what it refuses."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return problem_reply(400, "body: expected RBM's JSON")
    try:
        return RbmPush.model_validate(document)
    except ValidationError as exc:
        return problem_reply(400, describe(validation_errors(exc.errors(), "body")))


def _verification(agents: list[RbmProvider], token: str, secret: str) -> WebhookReply:
    """A new webhook's check: the secret back, when the client token is an agent's."""
    if not any(agent.owns_token(token) for agent in agents):
        return problem_reply(403, "clientToken does not match")
    return json_reply(200, {"secret": secret})


def _user_event(server: Server, event: Mapping[str, Any]) -> WebhookReply:
    status = STATUSES.get(str(event.get("eventType")))
    message_id = event.get("messageId")
    message = server.store.views.message_by_provider_id(message_id) if isinstance(message_id, str) else None
    if status is None or message is None:
        return json_reply(200, {"ignored": f"event {event.get('eventType')}" if status is None else
                                "unknown messageId"})
    key = event.get("eventId") or f"{message_id}:{status}"
    return ingest(server, {"id": f"rbm:{key}", "type": f"{message['channel']}.{status}", "user_id":
                           message["user_id"], "properties": {"message_id": message["message_id"],
                                                              "provider_status": event["eventType"]}}, None)


def _user_message(server: Server, event: Mapping[str, Any]) -> WebhookReply:
    sender = event.get("senderPhoneNumber")
    answer = _answer(event)
    if not isinstance(sender, str) or answer is None:
        return json_reply(200, {"ignored": "not a user event or message this engine reads"})
    users = server.store.views.users_by_phone(sender)
    if not users:
        log.info("rbm message from an unknown number ignored")
        return json_reply(200, {"ignored": "no profile holds the sender's number"})
    key = f"rbm:{event.get('messageId') or _digest(event)}"
    properties = {**answer, "from": sender, "provider_message_id": event.get("messageId")}
    return ingest(server, inbound_events(server, users, key, "rcs.reply", properties), None)


def _answer(event: Mapping[str, Any]) -> dict[str, Any] | None:
    """What the person did: tapped a chip, typed, or shared a location."""
    response = event.get("suggestionResponse")
    if isinstance(response, dict):
        return {"postback": response.get("postbackData"), "text": response.get("text"),
                "suggestion_type": response.get("type")}
    if isinstance(event.get("text"), str):
        return {"postback": None, "text": event["text"]}
    if isinstance(event.get("location"), dict):
        return {"postback": None, "text": None, "location": event["location"]}
    return None


def _digest(event: Mapping[str, Any]) -> str:
    """An id for a message RBM sent without one: the same message posted again is a duplicate."""
    return hashlib.sha256(json.dumps(event, sort_keys=True).encode()).hexdigest()[:32]
