"""The bearer check: `Authorization: Bearer <key>` (one of `JOURNEY_API_KEYS`) on every route but
the open paths (health, docs, `/metrics` when public) and the provider webhooks, which their
providers sign instead. A person's user key (engine/http/user_keys.py) opens their own feed and
preferences, and nothing else (403). No keys: open (`journey serve` then listens on loopback only)."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Collection
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from starlette.middleware.base import BaseHTTPMiddleware

from engine.http.problems import problem
from engine.http.user_keys import UserKeys, is_user_key


class BearerAuth(BaseHTTPMiddleware):
    """401 without a right key, unless the path is open; 422 for a NUL in the URL, whoever asks."""

    def __init__(self, app: Any, keys: Collection[str], is_open: Callable[[str], bool],
                 user_keys: UserKeys | None = None) -> None:
        super().__init__(app)
        self.keys = [k.encode("utf-8") for k in keys]  # compared as bytes: a header may hold any byte
        self.is_open = is_open
        self.user_keys = user_keys

    async def dispatch(self, request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        path = request.url.path
        if "\x00" in path or any("\x00" in v for v in request.query_params.values()):
            return problem(422, "the URL contains a NUL character")
        if self.keys and not self.is_open(path):
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            sent = token.encode("latin-1")  # the header's own bytes (ASGI servers decode headers as latin-1)
            bearer = scheme.lower() == "bearer"
            if bearer and self.user_keys is not None and is_user_key(sent):
                if not self.user_keys.opens(sent, path):
                    return problem(403, "a user key opens only its own user's feed and preferences")
            elif not bearer or not any(hmac.compare_digest(sent, k) for k in self.keys):
                return problem(401, "missing or wrong API key (Authorization: Bearer <key>)",
                               headers={"WWW-Authenticate": "Bearer"})
        return await call_next(request)
