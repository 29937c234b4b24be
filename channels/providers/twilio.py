"""SMS, MMS and RCS through Twilio's Messages API, with the official `twilio` client.

- sms: `Body`; mms: `Body` + a `MediaUrl` per media; both from `from_` or a Messaging Service.
- rcs: through a Messaging Service that holds the RCS sender (`rcs_messaging_service_sid`,
  else `messaging_service_sid`). A text alone is a `Body`; a card, a carousel or chips become a
  Content API resource (`channels.providers.twilio_content`), created once per distinct
  rendered content and cached (in memory and in `content_cache_file`), sent by `ContentSid`. With
  `rcs_content_sid` the content is instead sent as `ContentVariables` of that preconfigured
  template. `FallbackFrom` names the SMS sender Twilio falls back to when the handset cannot take
  RCS.

Error mapping: HTTP 429, 5xx and a connection that could not be made are temporary; other
API errors are permanent, and the codes in `UNUSABLE_CODES` also mark the phone unusable. Once
the request has gone out, a failure is in doubt (`InDoubtDeliveryError`): no answer within
`timeout`, a connection dropped before the answer, or a 2xx the client cannot read (a body that
is not JSON, no message sid). Twilio takes no idempotency key, so such a message is never sent
again; nor is one that becomes two Twilio messages (a carousel, then its chips) whose second
failed after the first went out. Creating a Content resource sends nothing to anyone: any
failure there is temporary. `api_base_url` points the client elsewhere (a local test server);
it is the client's own `client.api.base_url` setting, and `content_base_url` (default: the same)
its `client.content.base_url`. `concurrency` messages go at once, each over a connection of the
client's pool, which is sized to match; sends that need the same new Content resource create it
once (`ContentCache.sid`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from channels.mms import media_urls
from channels.providers.base import (
    DeliveryError,
    InDoubtDeliveryError,
    OutboundMessage,
    PermanentDeliveryError,
    TemporaryDeliveryError,
)
from channels.providers.twilio_content import ContentCache, content_types, digest
from channels.rcs import rcs_message

UNUSABLE_CODES = frozenset({21610, 30005, 30006, 21614, 21211})
"""Never deliverable: unsubscribed (21610), unknown handset (30005), landline (30006),
not a mobile number (21614), invalid 'To' number (21211)."""
TEMPORARY_CODES = frozenset({20429, 30001, 30003})
"""Worth retrying: too many requests, queue overflow, unreachable handset."""

if TYPE_CHECKING:
    import requests
    from twilio.base.exceptions import TwilioException


class TwilioProvider:
    """One Twilio account. `from_` or `messaging_service_sid` is the sender."""

    def __init__(self, account_sid: str, auth_token: str, from_: str | None = None,
                 messaging_service_sid: str | None = None, status_callback: str | None = None,
                 rcs_messaging_service_sid: str | None = None, rcs_content_sid: str | None = None,
                 sms_fallback_from: str | None = None, api_base_url: str | None = None, timeout: float = 10.0,
                 name: str = "twilio", webhook_base_url: str | None = None, content_base_url: str | None = None,
                 content_cache: ContentCache | None = None, content_language: str = "en",
                 concurrency: int = 1) -> None:
        if not (from_ or messaging_service_sid or rcs_messaging_service_sid):
            raise ValueError("twilio: set from or messaging_service_sid")
        # the `twilio` extra: this module imports without it (the webhook routes read UNUSABLE_CODES)
        from requests.adapters import HTTPAdapter
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
        self.concurrency = concurrency
        self.timeout = timeout
        http = TwilioHttpClient(timeout=timeout)
        if http.session is not None:  # one pooled connection per message in flight, none thrown away
            for scheme in ("https://", "http://"):
                http.session.mount(scheme, HTTPAdapter(pool_maxsize=max(concurrency, 10)))
        self.client = Client(account_sid, auth_token, http_client=http)
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
        sid = ""
        for n, fields in enumerate(self.messages(message)):
            try:
                sid = self._create(fields)
            except DeliveryError as exc:
                if n == 0 or isinstance(exc, InDoubtDeliveryError):
                    raise
                raise InDoubtDeliveryError(f"twilio: {n} of its messages went out, then: {exc}") from exc
        return sid

    def messages(self, message: OutboundMessage) -> list[dict[str, Any]]:
        """Keyword arguments of `client.messages.create` for each Twilio message one message
        becomes (two for a carousel with message chips), creating Content resources it needs
        before any goes out."""
        rcs = rcs_message(message.content) if message.channel == "rcs" else None
        if rcs is None or not rcs.rich or self.rcs_content_sid:
            return [self.fields(message)]
        head = {k: v for k, v in self.fields(message).items() if k not in ("body", "media_url")}
        return [{**head, "content_sid": self.content_sid(types)} for types in content_types(rcs)]

    def content_sid(self, types: dict[str, Any]) -> str:
        """The SID of the Content resource for `types`, created on first use (by one thread, when
        several sends need it at once)."""
        key = digest(types, self.content_language)
        return self.contents.sid(key, lambda: self._create_content(key, types))

    def _create_content(self, key: str, types: dict[str, Any]) -> str:
        import requests
        from twilio.base.exceptions import TwilioException

        request = {"friendly_name": f"journey-{key[:20]}", "language": self.content_language, "types": types}
        try:
            created = self.client.content.v1.create("POST", "/Content", data=request, headers={
                "Content-Type": "application/json", "Accept": "application/json"})
            return str(created["sid"])
        except TwilioException as exc:
            raise _mapped(exc) from exc
        except (requests.RequestException, ValueError, TypeError, KeyError) as exc:  # no message went out
            raise TemporaryDeliveryError(f"twilio content: {exc.__class__.__name__}: {str(exc)[:200]}") from exc

    def _create(self, fields: dict[str, Any]) -> str:
        """One `Messages` request; its sid."""
        import requests
        from twilio.base.exceptions import TwilioException

        try:
            created = self.client.messages.create(**fields)
        except TwilioException as exc:
            raise _mapped(exc) from exc
        except requests.RequestException as exc:
            raise _transport(exc, self.timeout) from exc
        except (ValueError, TypeError, AttributeError, KeyError) as exc:  # a 2xx whose body is not a message
            raise InDoubtDeliveryError(f"twilio: answered, but not with a message: {type(exc).__name__}: "
                                       f"{str(exc)[:200]}") from exc
        if not created.sid:
            raise InDoubtDeliveryError("twilio: answered without a message sid")
        return str(created.sid)

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


def _variables(content: Mapping[str, Any]) -> dict[str, str]:
    """Template variables by name: text, title, description, media_url, suggestion_1_text, ..."""
    card = content.get("card") or {}
    found = {"text": content.get("text"), "title": card.get("title"), "description": card.get("description"),
             "media_url": card.get("media_url")}
    for n, suggestion in enumerate(content.get("suggestions") or (), 1):
        found[f"suggestion_{n}_text"] = suggestion.get("text") or suggestion.get("reply")
        found[f"suggestion_{n}_url"] = suggestion.get("open_url")
    return {k: str(v) for k, v in found.items() if v is not None}


def _mapped(exc: TwilioException) -> Exception:
    """An error answer (`TwilioRestException`, or an RFC 9457 `TwilioServiceException`) by its code
    and HTTP status; any other `TwilioException` is raised before a request goes out."""
    status = getattr(exc, "status", None)
    if not isinstance(status, int):
        return TemporaryDeliveryError(f"twilio: {exc}")
    code = _code(getattr(exc, "code", None))
    reason = f"twilio {code or status}: {getattr(exc, 'msg', None) or getattr(exc, 'title', None) or exc}"
    if code in UNUSABLE_CODES:
        return PermanentDeliveryError(reason, unusable_address=True)
    if code in TEMPORARY_CODES or status == 429 or status >= 500:
        return TemporaryDeliveryError(reason)
    return PermanentDeliveryError(reason)


def _code(raw: object) -> int | None:
    try:
        return int(str(raw)) if raw is not None else None
    except ValueError:
        return None


def _transport(exc: requests.RequestException, timeout: float) -> Exception:
    """Before the request went out (no connection, a bad URL): temporary. After (no answer in time,
    the connection dropped, an answer that could not be read): in doubt."""
    import requests
    from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

    reason = f"twilio: {exc.__class__.__name__}: {exc}"
    cause = getattr(exc.args[0], "reason", None) if exc.args else None
    if isinstance(exc, requests.ConnectTimeout | requests.exceptions.SSLError | requests.exceptions.ProxyError) or \
            isinstance(cause, NewConnectionError | ConnectTimeoutError):
        return TemporaryDeliveryError(reason)
    if isinstance(exc, requests.ReadTimeout):
        return InDoubtDeliveryError(f"twilio: no answer within {timeout:g} s of sending the request")
    if isinstance(exc, requests.ConnectionError | requests.exceptions.ChunkedEncodingError |
                  requests.exceptions.ContentDecodingError):
        return InDoubtDeliveryError(reason)
    return TemporaryDeliveryError(reason)  # InvalidURL, MissingSchema and the like: nothing went out
