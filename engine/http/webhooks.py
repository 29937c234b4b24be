"""Provider webhooks turned into events: the `webhooks` router, Twilio's
(`POST /v1/webhooks/{provider}/{status|inbound}`, handled here) and Google RCS Business Messaging's
(`POST /v1/webhooks/rbm`, handled by `engine.http.rbm_webhooks`). They take no bearer key: the
provider signs them, and each handler reads its body as sent, since the signature covers it.

Twilio: the form is checked against `X-Twilio-Signature` with the auth token of every
configured Twilio account (403 when none matches: nothing changes), then parsed with
`TwilioForm` (400 naming the field it refuses). A status callback
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
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from fastapi import APIRouter, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from channels.providers.config import providers_of
from channels.providers.twilio import UNUSABLE_CODES, TwilioProvider
from engine.host.server import Server
from engine.http.openapi import documented, parsed_body
from engine.http.problems import describe, validation_errors
from engine.http.rbm_webhooks import RbmPush, handle_rbm
from engine.http.routing import JsonRoute, ServerDep
from engine.http.schemas import WebhookAck
from engine.http.webhook_events import WebhookReply, inbound_events, ingest, json_reply, problem_reply

log = logging.getLogger("journey.webhooks")

TWILIO_STATUSES = {"queued": "queued", "sending": "sending", "sent": "sent", "delivered": "delivered",
                   "read": "read", "undelivered": "failed", "failed": "failed", "canceled": "failed"}
EMPTY_TWIML = b'<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
FORM = "application/x-www-form-urlencoded"
router = APIRouter(route_class=JsonRoute, tags=["webhooks"])


class TwilioForm(BaseModel):
    """Twilio's form (status callback or inbound message), signed with `X-Twilio-Signature`."""

    model_config = ConfigDict(extra="allow")
    MessageSid: str | None = None
    SmsSid: str | None = Field(None, description="the older name of `MessageSid`")
    MessageStatus: str | None = None
    SmsStatus: str | None = Field(None, description="the older name of `MessageStatus`")
    ErrorCode: str | None = Field(None, pattern=r"^[0-9]{0,9}$",  # five digits; `²` or 4,300 digits are not one
                                  description="Twilio's error code, a number")
    From: str | None = None
    To: str | None = None
    Body: str | None = None
    ButtonPayload: str | None = Field(None, description="an RCS chip's id: the inbound is `rcs.reply` with this "
                                      "postback")
    ButtonText: str | None = Field(None, description="the tapped RCS chip's text")
    OriginalRepliedMessageSid: str | None = Field(None, description="the message an RCS reply answers")

    @property
    def sid(self) -> str | None:
        return self.MessageSid or self.SmsSid

    @property
    def status(self) -> str | None:
        return self.MessageStatus or self.SmsStatus


_HOOK = documented(WebhookAck, 403, 404)
_HOOK["responses"][200]["content"] = {"text/xml": {"schema": {"type": "string"}}}  # TwiML, for inbound SMS


@router.post("/v1/webhooks/{provider}/{kind}", operation_id="receiveWebhook",
             openapi_extra=parsed_body(TwilioForm, media=FORM), **_HOOK)
async def receive_webhook(provider: Annotated[str, Path(examples=["twilio"])],
                          kind: Annotated[str, Path(description="`status` or `inbound`")],
                          request: Request, server: ServerDep) -> Response:
    """Twilio status callbacks and inbound SMS, checked with `X-Twilio-Signature` (403 otherwise)."""
    body = await request.body()
    reply = await run_in_threadpool(handle_webhook, server, provider, kind, str(request.url), request.headers, body)
    return Response(reply.body, status_code=reply.status, media_type=reply.media_type)


@router.post("/v1/webhooks/rbm", operation_id="receiveRbmEvent", openapi_extra=parsed_body(RbmPush),
             **documented(WebhookAck, 403, 404))
async def receive_rbm_event(request: Request, server: ServerDep) -> Response:
    """Google RCS Business Messaging's deliveries, read receipts and replies, checked with
    `X-Goog-Signature` (403 otherwise); a new webhook's verification is answered with its secret."""
    body = await request.body()  # the signature is checked on the text as sent
    reply = await run_in_threadpool(handle_rbm, server, request.headers, body)
    return Response(reply.body, status_code=reply.status, media_type=reply.media_type)


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
    try:
        form = TwilioForm.model_validate(params)
    except ValidationError as exc:
        return problem_reply(400, describe(validation_errors(exc.errors(), "body")))
    return _twilio_status(server, form) if kind == "status" else _twilio_inbound(server, form)


def _twilio_status(server: Server, form: TwilioForm) -> WebhookReply:
    sid, status = form.sid, form.status
    if not sid or not status:
        return problem_reply(400, "MessageSid and MessageStatus are required")
    message = server.store.views.message_by_provider_id(sid)
    name = TWILIO_STATUSES.get(status)
    if message is None or name is None:
        return json_reply(200, {"ignored": "unknown MessageSid" if message is None else f"status {status}"})
    code = form.ErrorCode
    channel, user_id = message["channel"], message["user_id"]
    properties: dict[str, Any] = {"message_id": message["message_id"], "provider_status": status}
    if code:
        properties["error_code"] = int(code)
    if name == "failed" and code and int(code) in UNUSABLE_CODES:
        properties["unusable_address"] = True
        server.forget_address(user_id, channel, _phone(form.To))
    event = {"id": f"twilio:{sid}:{status}", "type": f"{channel}.{name}", "user_id": user_id,
             "properties": properties}
    return ingest(server, event, None)


def _twilio_inbound(server: Server, form: TwilioForm) -> WebhookReply:
    """`sms.inbound` (or `rcs.reply`) for every profile that holds the sender's number (`inbound_events`)."""
    sender = _phone(form.From)
    users = server.store.views.users_by_phone(sender) if sender else []
    if not users:
        return _from_unknown_number(server, sender, form)
    sid = form.sid
    key = f"twilio:{sid}" if sid else _content_id(form, server.clock.now())
    kind, properties = _inbound_kind(server, form)
    properties = {"text": form.Body or "", **properties, "from": sender, "to": _phone(form.To),
                  "provider_message_id": sid}
    return ingest(server, inbound_events(server, users, key, kind, properties),
                  WebhookReply(200, EMPTY_TWIML, "text/xml"))


def _inbound_kind(server: Server, form: TwilioForm) -> tuple[str, dict[str, Any]]:
    """`sms.inbound`, or `rcs.reply` with the tapped button's payload as its postback."""
    button = form.ButtonPayload
    if not ((form.From or "").startswith("rcs:") or button or form.ButtonText):
        return "sms.inbound", {}
    properties: dict[str, Any] = {"postback": button or None}
    if form.ButtonText:
        properties["text"] = form.ButtonText
    replied = form.OriginalRepliedMessageSid
    message = server.store.views.message_by_provider_id(replied) if replied else None
    if message is not None:
        properties["message_id"] = message["message_id"]
    return "rcs.reply", properties


def _content_id(form: TwilioForm, now: datetime) -> str:
    """An inbound message without a provider id is de-duplicated by its content and minute: a
    replay of the same request is a duplicate, the same words a minute later are not."""
    key = "\n".join((form.From or "", form.To or "", form.Body or "", now.strftime("%Y%m%d%H%M")))
    return "twilio:inbound:" + hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()[:32]


def _from_unknown_number(server: Server, sender: str | None, form: TwilioForm) -> WebhookReply:
    """No profile holds the number: a STOP (or START) still goes on the suppression list, and the
    reply goes back in the TwiML answer, since there is no profile to address a message to."""
    sid = form.sid or "unknown"
    with server.lock:
        reply = server.engine.keyword_from_number(sender, form.Body or "", f"twilio:{sid}") if sender else None
    if reply is None:
        log.info("inbound message from an unknown number ignored")
        return WebhookReply(200, EMPTY_TWIML, "text/xml")
    log.info("keyword from a number no profile holds: recorded on the suppression list")
    body = f'<?xml version="1.0" encoding="UTF-8"?><Response><Message>{escape(reply)}</Message></Response>'
    return WebhookReply(200, body.encode(), "text/xml")


def _phone(value: str | None) -> str | None:
    """`+1555...`, also from channel addresses such as `rcs:+1555...`."""
    return value.rpartition(":")[2] if value else None
