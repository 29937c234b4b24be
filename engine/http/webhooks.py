"""Provider webhooks (`POST /v1/webhooks/{provider}/{status|inbound}`) turned into events.

Twilio: the form is checked against `X-Twilio-Signature` with the auth token of every
configured Twilio account (403 when none matches: nothing changes). A status callback
becomes `<channel>.<status>` for the message Twilio knows as `MessageSid` (`undelivered`,
`failed` and `canceled` become `<channel>.failed`; `read` comes from RCS); an error code
that means "never deliverable" also clears the phone from the profile. An inbound message
becomes `sms.inbound` with `properties.text`, for every user whose profile has that phone (a
keyword for the first of them, by user_id: it acts on the number). An inbound on an RCS
conversation (`From` is `rcs:+1...`, or a tapped button's `ButtonPayload`/`ButtonText` is there)
is `rcs.reply` instead: `properties.postback` the button's payload (the id the chip was created
with; null for typed text), `properties.text` what the person saw or typed, pinned to the message
named by `OriginalRepliedMessageSid` when Twilio gives it (else the user's latest RCS message).
Callbacks carry an event id (`twilio:<sid>:<status>`), so Twilio's retries are duplicates.
Unknown messages and senders are acknowledged (200) and ignored, so Twilio stops retrying.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from channels import classify_keyword
from channels.providers.config import providers_of
from channels.providers.twilio import UNUSABLE_CODES, TwilioProvider
from engine.errors import EventError
from engine.events import parse_event
from engine.host.server import Server
from engine.http.problems import PROBLEM_JSON, problem_body

log = logging.getLogger("journey.webhooks")

TWILIO_STATUSES = {"queued": "queued", "sending": "sending", "sent": "sent", "delivered": "delivered",
                   "read": "read", "undelivered": "failed", "failed": "failed", "canceled": "failed"}
EMPTY_TWIML = b'<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
_ERROR_CODE = re.compile(r"[0-9]{1,9}")  # Twilio's are five digits; `²` or 4,300 digits are not one


FORM = "application/x-www-form-urlencoded"


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


def handle_webhook(server: Server, provider: str, kind: str, url: str, headers: Mapping[str, str],
                   body: bytes) -> WebhookReply:
    if provider != "twilio" or kind not in ("status", "inbound"):
        return problem_reply(404, f"no webhook /v1/webhooks/{provider}/{kind}")
    accounts: list[TwilioProvider] = providers_of(server.dispatcher.providers, TwilioProvider)
    if not accounts:
        return problem_reply(404, "no twilio provider is configured")
    try:
        params = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False))
    except UnicodeDecodeError:
        return problem_reply(400, "body: expected an application/x-www-form-urlencoded form")
    signature = headers.get("x-twilio-signature", "")
    if not any(account.verify(url, params, signature) for account in accounts):
        log.warning("refused a twilio %s webhook: bad or missing X-Twilio-Signature", kind)
        return problem_reply(403, "X-Twilio-Signature does not match")
    return _twilio_status(server, params) if kind == "status" else _twilio_inbound(server, params)


def _twilio_status(server: Server, params: Mapping[str, str]) -> WebhookReply:
    sid = params.get("MessageSid") or params.get("SmsSid")
    status = params.get("MessageStatus") or params.get("SmsStatus")
    if not sid or not status:
        return problem_reply(400, "MessageSid and MessageStatus are required")
    message = server.store.message_by_provider_id(sid)
    name = TWILIO_STATUSES.get(status)
    if message is None or name is None:
        return json_reply(200, {"ignored": "unknown MessageSid" if message is None else f"status {status}"})
    code = params.get("ErrorCode", "")
    if code and not _ERROR_CODE.fullmatch(code):
        return problem_reply(400, f"ErrorCode: expected Twilio's numeric error code, got {code[:20]!r}")
    channel, user_id = message["channel"], message["user_id"]
    properties: dict[str, Any] = {"message_id": message["message_id"], "provider_status": status}
    if code:
        properties["error_code"] = int(code)
    if name == "failed" and code and int(code) in UNUSABLE_CODES:
        properties["unusable_address"] = True
        server.forget_address(user_id, channel, _phone(params.get("To")))
    event = {"id": f"twilio:{sid}:{status}", "type": f"{channel}.{name}", "user_id": user_id,
             "properties": properties}
    return ingest(server, event, None)


def _twilio_inbound(server: Server, params: Mapping[str, str]) -> WebhookReply:
    """`sms.inbound` for every profile that holds the sender's number, in user_id order. A keyword
    (STOP, START, HELP) goes to the first of them alone: it acts on the number (the suppression
    list covers every profile holding it) and is answered once."""
    sender = _phone(params.get("From"))
    users = server.store.users_by_phone(sender) if sender else []
    if not users:
        return _from_unknown_number(server, sender, params)
    sid = params.get("MessageSid") or params.get("SmsSid")
    key = f"twilio:{sid}" if sid else _content_id(params, server.clock.now())
    kind, properties = _inbound_kind(server, params)
    properties = {"text": params.get("Body", ""), **properties, "from": sender, "to": _phone(params.get("To")),
                  "provider_message_id": sid}
    return ingest(server, inbound_events(server, users, key, kind, properties),
                  WebhookReply(200, EMPTY_TWIML, "text/xml"))


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


def _inbound_kind(server: Server, params: Mapping[str, str]) -> tuple[str, dict[str, Any]]:
    """`sms.inbound`, or `rcs.reply` with the tapped button's payload as its postback."""
    button = params.get("ButtonPayload")
    if not (params.get("From", "").startswith("rcs:") or button or params.get("ButtonText")):
        return "sms.inbound", {}
    properties: dict[str, Any] = {"postback": button or None}
    if params.get("ButtonText"):
        properties["text"] = params["ButtonText"]
    replied = params.get("OriginalRepliedMessageSid")
    message = server.store.message_by_provider_id(replied) if replied else None
    if message is not None:
        properties["message_id"] = message["message_id"]
    return "rcs.reply", properties


def _content_id(params: Mapping[str, str], now: datetime) -> str:
    """An inbound message without a provider id is de-duplicated by its content and minute: a
    replay of the same request is a duplicate, the same words a minute later are not."""
    key = "\n".join((params.get("From", ""), params.get("To", ""), params.get("Body", ""), now.strftime("%Y%m%d%H%M")))
    return "twilio:inbound:" + hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()[:32]


def _from_unknown_number(server: Server, sender: str | None, params: Mapping[str, str]) -> WebhookReply:
    """No profile holds the number: a STOP (or START) still goes on the suppression list, and the
    reply goes back in the TwiML answer, since there is no profile to address a message to."""
    sid = params.get("MessageSid") or params.get("SmsSid") or "unknown"
    with server.lock:
        reply = server.engine.keyword_from_number(sender, params.get("Body", ""), f"twilio:{sid}") if sender else None
    if reply is None:
        log.info("inbound message from an unknown number ignored")
        return WebhookReply(200, EMPTY_TWIML, "text/xml")
    log.info("keyword from a number no profile holds: recorded on the suppression list")
    body = f'<?xml version="1.0" encoding="UTF-8"?><Response><Message>{escape(reply)}</Message></Response>'
    return WebhookReply(200, body.encode(), "text/xml")


def ingest(server: Server, data: dict[str, Any] | list[dict[str, Any]], reply: WebhookReply | None) -> WebhookReply:
    try:
        events = [parse_event(item, server.clock.now()) for item in (data if isinstance(data, list) else [data])]
    except EventError as exc:
        return problem_reply(400, str(exc))
    duplicates = sum(1 for result in server.ingest(events) if result.duplicate)
    return reply or json_reply(200, {"accepted": len(events) - duplicates, "duplicates": duplicates})


def _phone(value: str | None) -> str | None:
    """`+1555...`, also from channel addresses such as `rcs:+1555...`."""
    return value.rpartition(":")[2] if value else None
