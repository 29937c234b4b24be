"""httpx's transport errors mapped by whether the request had gone out (FCM, the webhook).

Before it went out (no connection, no free connection in the pool, the request not fully
written) the provider cannot have the message: temporary. After (no answer in time, the
connection dropped, an answer that could not be decoded) it may well have it: in doubt.
"""

from __future__ import annotations

import httpx

from channels.providers.base import DeliveryError, InDoubtDeliveryError, TemporaryDeliveryError

NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.WriteError, httpx.WriteTimeout,
            httpx.LocalProtocolError, httpx.ProxyError, httpx.UnsupportedProtocol)


def transport_error(name: str, exc: httpx.HTTPError) -> DeliveryError:
    reason = f"{name}: {exc.__class__.__name__}: {exc}"
    return TemporaryDeliveryError(reason) if isinstance(exc, NOT_SENT) else InDoubtDeliveryError(reason)


def limits(concurrency: int) -> httpx.Limits:
    """A pooled connection for each message in flight, kept for the next."""
    return httpx.Limits(max_connections=max(concurrency, 10), max_keepalive_connections=max(concurrency, 10))
