"""RCS through Google's RCS Business Messaging API (RBM), with `httpx`.

Auth is Google's service-account flow (`channels.providers.google_auth`, scope
`rcsbusinessmessaging`). An agent message is
`POST {base_url}/v1/phones/{E.164}/agentMessages?messageId={id}&agentId={agent}` with a
`contentMessage`: a text, a standalone rich card or a carousel, each with its suggestions
(`channels.rcs` reads the content; this module writes RBM's JSON). RBM's content is one of text
or a rich card, so a message with both sends its text first as an agent message of its own.

The agent assigns message ids: each is a UUID derived from the engine's message id, so every
attempt at one message carries the same id and RBM answers a repeat with 409 ALREADY_EXISTS
instead of delivering it twice. The provider is therefore `idempotent` (a send a crash caught
mid-call is retried), and a 409 counts as sent. The id of the last part is the provider's id,
which the delivery and read receipts of the webhook (`engine.http.rbm_webhooks`) carry.

The capability check, `GET {base_url}/v1/phones/{E.164}/capabilities?requestId=...&agentId=...`,
answers whether a phone takes RCS: 200 yes, 404 no; anything else (a timeout within
`capability_timeout`, a 5xx) cannot tell.

Error mapping: 404 on a send (the phone is not reachable by RCS now) and 400 are permanent; 401
drops the cached access token and is temporary; 429, 5xx and a connection that could not be made
are temporary. Once a request went out, no answer in time, a connection dropped or a 2xx that is
not an agent message (JSON with its `name`) is in doubt (`channels.providers.transport`): as the
provider is idempotent, the dispatcher sends it again, and RBM drops the repeat by its id.
`concurrency` messages go at once over the pooled connections of one client, which share one
access token. Webhook requests are signed: `X-Goog-Signature` is base64 HMAC-SHA512 of the
message's `data` with the agent's client token (`verify`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import httpx

from channels.providers.base import (
    InDoubtDeliveryError,
    OutboundMessage,
    PermanentDeliveryError,
    TemporaryDeliveryError,
)
from channels.providers.google_auth import ServiceAccount
from channels.providers.transport import limits, transport_error
from channels.rcs import Card, Chip, RcsMessage, rcs_message

SCOPE = "https://www.googleapis.com/auth/rcsbusinessmessaging"
RBM_BASE_URL = "https://rcsbusinessmessaging.googleapis.com"
_IDS = uuid.UUID("6f0d8d4e-2b7a-4c55-9a43-1f0e4b7f5e21")  # the namespace of the agent-assigned message ids


class RbmProvider:
    """One RBM agent. `service_account` is the parsed JSON key file."""

    idempotent = True

    def __init__(self, service_account: Mapping[str, Any], agent_id: str, client_token: str | None = None,
                 base_url: str = RBM_BASE_URL, token_uri: str | None = None, timeout: float = 10.0,
                 capability_timeout: float = 2.0, capability_ttl: timedelta = timedelta(hours=24),
                 *, clock: Callable[[], float], name: str = "rbm", concurrency: int = 1) -> None:
        if not agent_id:
            raise ValueError("rbm: agent_id is required")
        self.name = name
        self.concurrency = concurrency
        self.agent_id = agent_id
        self.capability_ttl = capability_ttl
        self.base_url = base_url.rstrip("/")
        self._client_token = client_token.encode("utf-8") if client_token else None
        self._http = httpx.Client(timeout=timeout, limits=limits(concurrency))
        self._capability_timeout = capability_timeout
        self.auth = ServiceAccount(service_account, SCOPE, self._http, clock=clock, token_uri=token_uri, label="rbm")

    def __repr__(self) -> str:  # never shows a secret
        return f"RbmProvider(name={self.name!r}, agent_id={self.agent_id!r})"

    def close(self) -> None:
        self._http.close()

    def send(self, message: OutboundMessage) -> str:
        if not message.address:
            raise PermanentDeliveryError("no phone number", unusable_address=True)
        agent_id = ""
        for part, content in agent_messages(rcs_message(message.content)):
            agent_id = message_uuid(message.message_id, part)
            self._post(message.address, agent_id, content)
        return agent_id

    def _post(self, phone: str, message_id: str, content: dict[str, Any]) -> None:
        url = f"{self.base_url}/v1/phones/{quote(phone)}/agentMessages"
        params = {"messageId": message_id, "agentId": self.agent_id}
        headers = self.auth.authorization()
        try:
            response = self._http.post(url, params=params, json={"contentMessage": content}, headers=headers)
        except httpx.HTTPError as exc:
            raise transport_error("rbm", exc) from exc
        if response.status_code == 401:
            self.auth.forget(headers)
        if response.is_success:
            _check_agent_message(response)
        elif response.status_code != 409:  # 409: this id was taken by an earlier attempt
            raise _mapped(response)

    def check_rcs(self, phone: str) -> bool | None:
        """Whether `phone` takes RCS now; None when RBM cannot tell (within `capability_timeout`)."""
        url = f"{self.base_url}/v1/phones/{quote(phone)}/capabilities"
        params = {"requestId": str(uuid.uuid4()), "agentId": self.agent_id}
        try:
            headers = self.auth.authorization()
            response = self._http.get(url, params=params, headers=headers, timeout=self._capability_timeout)
        except (httpx.HTTPError, TemporaryDeliveryError):
            return None
        if response.status_code == 401:
            self.auth.forget(headers)
        if response.status_code == 404:
            return False
        return True if response.is_success else None

    def verify(self, data: str, signature: str) -> bool:
        """Whether `X-Goog-Signature` signs the webhook message's `data` with this agent's client token."""
        if self._client_token is None or not signature:
            return False
        expected = base64.b64encode(hmac.new(self._client_token, data.encode("utf-8"), hashlib.sha512).digest())
        return hmac.compare_digest(expected, signature.strip().encode("latin-1", "replace"))

    def owns_token(self, token: str) -> bool:
        """Whether `token` is this agent's client token (the webhook's verification request)."""
        return self._client_token is not None and hmac.compare_digest(self._client_token, token.encode("utf-8"))


def message_uuid(message_id: str, part: str = "") -> str:
    """The agent-assigned id of one part of a message: the same for every attempt."""
    return str(uuid.uuid5(_IDS, f"{message_id}{part}"))


def agent_messages(rcs: RcsMessage) -> list[tuple[str, dict[str, Any]]]:
    """RBM `contentMessage`s for one message, in order, each with the suffix of its id: the text
    alone first when there is also a card or a carousel; the chips on the last."""
    chips = {"suggestions": [suggestion(c) for c in rcs.suggestions]} if rcs.suggestions else {}
    if rcs.card is None and not rcs.carousel:
        return [("", {"text": rcs.text or "", **chips})]
    if rcs.card is not None:
        rich: dict[str, Any] = {"standaloneCard": {"cardOrientation": rcs.card.orientation.upper(),
                                                   "cardContent": card_content(rcs.card)}}
        if rcs.card.orientation == "horizontal":
            rich["standaloneCard"]["thumbnailImageAlignment"] = "LEFT"
    else:
        rich = {"carouselCard": {"cardWidth": rcs.width.upper(), "cardContents": [card_content(c)
                                                                                  for c in rcs.carousel]}}
    parts = [(".text", {"text": rcs.text})] if rcs.text else []
    return [*parts, ("", {"richCard": rich, **chips})]


def card_content(card: Card) -> dict[str, Any]:
    content: dict[str, Any] = {}
    if card.title is not None:
        content["title"] = card.title
    if card.description is not None:
        content["description"] = card.description
    if card.media is not None:
        info = {"fileUrl": card.media.url, **({"thumbnailUrl": card.media.thumbnail_url}
                                              if card.media.thumbnail_url else {})}
        content["media"] = {"height": card.media.height.upper(), "contentInfo": info}
    if card.suggestions:
        content["suggestions"] = [suggestion(c) for c in card.suggestions]
    return content


def suggestion(chip: Chip) -> dict[str, Any]:
    """One RBM `Suggestion`: a suggested reply, or a suggested action."""
    if chip.kind == "reply":
        return {"reply": {"text": chip.text, "postbackData": chip.postback}}
    return {"action": {"text": chip.text, "postbackData": chip.postback, **_ACTIONS[chip.kind](chip)}}


def _view_location(chip: Chip) -> dict[str, Any]:
    place: dict[str, Any] = {"query": chip.query} if chip.latitude is None else {
        "latLong": {"latitude": chip.latitude, "longitude": chip.longitude}}
    return {"viewLocationAction": {**place, **({"label": chip.title} if chip.title else {})}}


def _calendar_event(chip: Chip) -> dict[str, Any]:
    event = {"startTime": chip.start, "endTime": chip.end, "title": chip.title}
    return {"createCalendarEventAction": {**event, **({"description": chip.description} if chip.description else {})}}


_ACTIONS: dict[str, Callable[[Chip], dict[str, Any]]] = {
    "open_url": lambda chip: {"openUrlAction": {"url": chip.url}},
    "dial": lambda chip: {"dialAction": {"phoneNumber": chip.phone}},
    "share_location": lambda chip: {"shareLocationAction": {}},
    "calendar_event": _calendar_event,
    "view_location": _view_location,
}


def _check_agent_message(response: httpx.Response) -> None:
    """A 2xx is RBM's AgentMessage, named `phones/{E.164}/agentMessages/{id}`; without one it is in doubt."""
    try:
        name = response.json().get("name")
    except (ValueError, AttributeError) as exc:
        raise InDoubtDeliveryError(f"rbm: HTTP {response.status_code}, but not an agent message: "
                                   f"{response.text[:200]}") from exc
    if not name:
        raise InDoubtDeliveryError(f"rbm: HTTP {response.status_code} without the agent message's name")


def _mapped(response: httpx.Response) -> Exception:
    try:
        error = response.json().get("error") or {}
    except ValueError:
        error = {}
    reason = f"rbm HTTP {response.status_code}: {error.get('status') or error.get('message') or response.text[:200]}"
    if response.status_code in (401, 429) or response.status_code >= 500:
        return TemporaryDeliveryError(reason)
    return PermanentDeliveryError(reason)
