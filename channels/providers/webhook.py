"""The generic webhook channel: the message as a JSON POST, signed with HMAC-SHA256.

Header `X-Journey-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, with
the shared secret as the key. The receiver recomputes it and refuses a `t` older than a few
minutes (replay). `sign` and `verify` are the two halves, so receivers in Python can reuse them.

Error mapping: 2xx is delivered (the id is the response's `id` if it has one, else the
message id); 408, 425, 429, 5xx and a connection that could not be made are temporary; no
answer once the request went out is in doubt (retried: every attempt carries the same
`Idempotency-Key`); other 4xx are permanent.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable

import httpx

from channels.providers.base import OutboundMessage, PermanentDeliveryError, TemporaryDeliveryError
from channels.providers.transport import limits, transport_error

SIGNATURE_HEADER = "X-Journey-Signature"
TOLERANCE = 300
TEMPORARY_STATUSES = frozenset({408, 425, 429})


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The signature header's value for `body` sent at `timestamp`."""
    digest = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: str, body: bytes, header: str, now: float, tolerance: int = TOLERANCE) -> bool:
    """True when `header` signs `body` with `secret` and its time is within `tolerance` of `now`."""
    parts = dict(item.partition("=")[::2] for item in header.split(",") if "=" in item)
    stamp = parts.get("t", "")
    if not stamp.isdigit() or abs(now - int(stamp)) > tolerance:
        return False
    expected = sign(secret, body, int(stamp)).partition(",v1=")[2]
    return hmac.compare_digest(expected, parts.get("v1", ""))


class WebhookProvider:
    """POSTs `{"message_id", "user_id", "channel", "category", "to", "content"}` to `url`. Every
    attempt carries `Idempotency-Key` (the message id), so a retry after a timeout is safe."""

    idempotent = True

    def __init__(self, url: str, secret: str, timeout: float = 10.0, *, clock: Callable[[], float],
                 name: str = "webhook", concurrency: int = 1) -> None:
        self.name = name
        self.concurrency = concurrency
        self.url = url
        self._secret = secret
        self._clock = clock
        self._http = httpx.Client(timeout=timeout, limits=limits(concurrency))

    def __repr__(self) -> str:  # never shows the secret
        return f"WebhookProvider(name={self.name!r}, url={self.url!r})"

    def close(self) -> None:
        self._http.close()

    def send(self, message: OutboundMessage) -> str:
        body = json.dumps(message.to_dict(), ensure_ascii=False, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "Idempotency-Key": message.message_id,
                   SIGNATURE_HEADER: sign(self._secret, body, int(self._clock()))}
        try:
            response = self._http.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise transport_error("webhook", exc) from exc
        if response.is_success:
            return _response_id(response) or message.message_id
        reason = f"webhook HTTP {response.status_code}: {response.text[:200]}"
        if response.status_code in TEMPORARY_STATUSES or response.status_code >= 500:
            raise TemporaryDeliveryError(reason)
        raise PermanentDeliveryError(reason)


def _response_id(response: httpx.Response) -> str | None:
    try:
        data = response.json()
    except ValueError:
        return None
    value = data.get("id") if isinstance(data, dict) else None
    return str(value) if value else None
