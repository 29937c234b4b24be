"""SMS, MMS and RCS through Twilio's Messages API, with the official `twilio` client.

- sms: `Body`; mms: `Body` + a `MediaUrl` per media; both from `from_` or a Messaging Service.
- rcs: through a Messaging Service that holds the RCS sender (`rcs_messaging_service_sid`,
  else `messaging_service_sid`). A text alone is a `Body`; a card, a carousel or chips become a
  Content API resource (`channels.providers.twilio_content`), created once per distinct
  rendered content and cached (in memory and in `content_cache_file`), sent by `ContentSid`. With
  `rcs_content_sid` the content is instead sent as `ContentVariables` of that preconfigured
  template. `FallbackFrom` names the SMS sender Twilio falls back to when the handset cannot take
  RCS.

Error mapping: HTTP 429, 5xx, timeouts and connection errors are temporary; other API
errors are permanent, and the codes in `UNUSABLE_CODES` also mark the phone unusable.
`api_base_url` points the client elsewhere (a local test server); it is the client's own
`client.api.base_url` setting, and `content_base_url` (default: the same) its `client.content.base_url`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from channels.mms import media_urls
from channels.providers.base import OutboundMessage, PermanentDeliveryError, TemporaryDeliveryError
from channels.providers.twilio_content import ContentCache, content_types, digest
from channels.rcs import rcs_message

UNUSABLE_CODES = frozenset({21610, 30005, 30006, 21614, 21211})
"""Never deliverable: unsubscribed (21610), unknown handset (30005), landline (30006),
not a mobile number (21614), invalid 'To' number (21211)."""
TEMPORARY_CODES = frozenset({20429, 30001, 30003})
"""Worth retrying: too many requests, queue overflow, unreachable handset."""

if TYPE_CHECKING:
    from twilio.base.exceptions import TwilioRestException


class TwilioProvider:
    """One Twilio account. `from_` or `messaging_service_sid` is the sender."""

    def __init__(self, account_sid: str, auth_token: str, from_: str | None = None,
                 messaging_service_sid: str | None = None, status_callback: str | None = None,
                 rcs_messaging_service_sid: str | None = None, rcs_content_sid: str | None = None,
                 sms_fallback_from: str | None = None, api_base_url: str | None = None, timeout: float = 10.0,
                 name: str = "twilio", webhook_base_url: str | None = None, content_base_url: str | None = None,
                 content_cache: ContentCache | None = None, content_language: str = "en") -> None:
        if not (from_ or messaging_service_sid or rcs_messaging_service_sid):
            raise ValueError("twilio: set from or messaging_service_sid")
        # the `twilio` extra: this module imports without it (the webhook routes read UNUSABLE_CODES)
        from twilio.http.http_client import TwilioHttpClient
        from twilio.request_validator import RequestValidator
        from twilio.rest import Client

        self.name = name
        self.from_ = from_
        self.messaging_service_sid = messaging_service_sid
        self.status_callback = status_callback
        self.rcs_messaging_service_sid = rcs_messaging_service_sid
        self.rcs_content_sid = rcs_content_sid
        self.sms_fallback_from = sms_fallback_from
        self.webhook_base_url = webhook_base_url.rstrip("/") if webhook_base_url else None
        self.client = Client(account_sid, auth_token, http_client=TwilioHttpClient(timeout=timeout))
        if api_base_url:
            self.client.api.base_url = api_base_url.rstrip("/")
        if content_base_url or api_base_url:
            self.client.content.base_url = str(content_base_url or api_base_url).rstrip("/")
        self.contents = content_cache if content_cache is not None else ContentCache()
        self.content_language = content_language
        self._validator = RequestValidator(auth_token)

    def __repr__(self) -> str:  # never shows the auth token
        return f"TwilioProvider(name={self.name!r}, account_sid={self.client.account_sid!r})"

    def verify(self, url: str, params: Mapping[str, str], signature: str) -> bool:
        """Checks `X-Twilio-Signature` of a webhook request signed with this account's token.

        Twilio signs the public URL it called; behind a proxy that is `webhook_base_url` + the
        path and query, which is tried when it is set."""
        if not signature:
            return False
        urls = [url]
        if self.webhook_base_url:
            parts = urlsplit(url)
            urls.insert(0, self.webhook_base_url + parts.path + (f"?{parts.query}" if parts.query else ""))
        return any(self._validator.validate(u, dict(params), signature) for u in urls)

    def send(self, message: OutboundMessage) -> str:
        if not message.address:
            raise PermanentDeliveryError("no phone number", unusable_address=True)
        with _mapping_errors():
            sid = ""
            for fields in self.messages(message):
                sid = str(self.client.messages.create(**fields).sid)
            return sid

    def messages(self, message: OutboundMessage) -> list[dict[str, Any]]:
        """Keyword arguments of `client.messages.create` for each Twilio message one message
        becomes (two for a carousel with message chips), creating Content resources it needs."""
        rcs = rcs_message(message.content) if message.channel == "rcs" else None
        if rcs is None or not rcs.rich or self.rcs_content_sid:
            return [self.fields(message)]
        head = {k: v for k, v in self.fields(message).items() if k not in ("body", "media_url")}
        return [{**head, "content_sid": self.content_sid(types)} for types in content_types(rcs)]

    def content_sid(self, types: dict[str, Any]) -> str:
        """The SID of the Content resource for `types`, created on first use."""
        key = digest(types, self.content_language)
        found = self.contents.get(key)
        if found is None:
            request = {"friendly_name": f"journey-{key[:20]}", "language": self.content_language, "types": types}
            created = self.client.content.v1.create("POST", "/Content", data=request, headers={
                "Content-Type": "application/json", "Accept": "application/json"})
            found = str(created["sid"])
            self.contents.put(key, found)
        return found

    def fields(self, message: OutboundMessage) -> dict[str, Any]:
        """Keyword arguments of `client.messages.create` for one plain message."""
        content = message.content
        fields: dict[str, Any] = {"to": message.address}
        if self.status_callback:
            fields["status_callback"] = self.status_callback
        if message.channel == "rcs":
            return {**fields, **self._rcs(content)}
        fields.update(self._sender())
        fields["body"] = str(content.get("text", ""))
        if message.channel == "mms" and media_urls(content):
            fields["media_url"] = media_urls(content)
        return fields

    def _sender(self) -> dict[str, Any]:
        if self.messaging_service_sid:
            return {"messaging_service_sid": self.messaging_service_sid}
        return {"from_": self.from_}

    def _rcs(self, content: Mapping[str, Any]) -> dict[str, Any]:
        service = self.rcs_messaging_service_sid or self.messaging_service_sid
        if not service:
            raise PermanentDeliveryError("twilio: rcs needs a Messaging Service (rcs_messaging_service_sid)")
        fields: dict[str, Any] = {"messaging_service_sid": service}
        if self.sms_fallback_from:
            fields["fallback_from"] = self.sms_fallback_from
        if self.rcs_content_sid:
            fields["content_sid"] = self.rcs_content_sid
            fields["content_variables"] = json.dumps(_variables(content), ensure_ascii=False)
            return fields
        fields["body"] = str(content.get("text") or "")
        return fields


@contextmanager
def _mapping_errors() -> Iterator[None]:
    """The client's errors as ours: API errors by code, the network's as temporary."""
    import requests
    from twilio.base.exceptions import TwilioException, TwilioRestException

    try:
        yield
    except TwilioRestException as exc:
        raise _mapped(exc) from exc
    except requests.RequestException as exc:  # timeouts, refused connections
        raise TemporaryDeliveryError(f"twilio: {exc.__class__.__name__}: {exc}") from exc
    except TwilioException as exc:
        raise TemporaryDeliveryError(f"twilio: {exc}") from exc


def _variables(content: Mapping[str, Any]) -> dict[str, str]:
    """Template variables by name: text, title, description, media_url, suggestion_1_text, ..."""
    card = content.get("card") or {}
    found = {"text": content.get("text"), "title": card.get("title"), "description": card.get("description"),
             "media_url": card.get("media_url")}
    for n, suggestion in enumerate(content.get("suggestions") or (), 1):
        found[f"suggestion_{n}_text"] = suggestion.get("text") or suggestion.get("reply")
        found[f"suggestion_{n}_url"] = suggestion.get("open_url")
    return {k: str(v) for k, v in found.items() if v is not None}


def _mapped(exc: TwilioRestException) -> Exception:
    code = int(exc.code) if exc.code is not None else None
    reason = f"twilio {code or exc.status}: {exc.msg}"
    if code in UNUSABLE_CODES:
        return PermanentDeliveryError(reason, unusable_address=True)
    if code in TEMPORARY_CODES or exc.status == 429 or exc.status >= 500:
        return TemporaryDeliveryError(reason)
    return PermanentDeliveryError(reason)
