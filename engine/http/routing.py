"""What every router of the API shares: how a request body is read, and the `Server` handlers serve.

Bodies are read on the event loop up to the route's limit (413 past it, counted on the bytes read
whatever `Content-Length` says, and refused at once when it says more) and parsed as JSON with
errors in the API's words (400): `JsonRoute` hands FastAPI a request that does both, so a body
FastAPI parses for a declared model and one a handler parses itself are read the same way. The
limits are the app's (`create_app`: `JOURNEY_MAX_BODY_BYTES`, and the bulk route's own).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Path, Request
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import Receive, Scope

from engine.host.server import Server

MiB = 1024 * 1024


class LimitedRequest(Request):
    """A request whose body is read up to `limit` bytes and whose JSON errors are 400s."""

    def __init__(self, scope: Scope, receive: Receive, limit: int) -> None:
        super().__init__(scope, receive)
        self.limit = limit

    async def body(self) -> bytes:
        if not hasattr(self, "_body"):
            declared = self.headers.get("content-length")
            if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > self.limit:
                raise self._too_large()
            chunks: list[bytes] = []
            size = 0
            async for chunk in self.stream():
                size += len(chunk)
                if size > self.limit:
                    raise self._too_large()
                chunks.append(chunk)
            self._body = b"".join(chunks)
        return self._body

    async def json(self) -> Any:
        """The body as JSON. NaN, Infinity and 1e999 become floats, which the body models refuse by field."""
        if not hasattr(self, "_json"):
            body = await self.body()
            try:
                self._json = json.loads(body)
            except RecursionError:
                raise HTTPException(400, "body is not valid JSON: nested too deeply") from None
            except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, oversized integers
                raise HTTPException(400, f"body is not valid JSON: {exc}") from None
        return self._json

    def _too_large(self) -> HTTPException:
        return HTTPException(413, f"request body is over the {self.limit} byte limit")


@dataclass(frozen=True, slots=True)
class BodyLimits:
    """The body limits of an app (its `state.body_limits`): `default`, and some operations' own."""

    default: int = MiB
    of_operation: Mapping[str, int] = field(default_factory=dict)

    def of(self, operation_id: str | None) -> int:
        return self.of_operation.get(operation_id or "", self.default)


class JsonRoute(APIRoute):
    """A route whose handlers and FastAPI read the body through `LimitedRequest`, limited as the
    app's `BodyLimits` say for the route's operation (routers are shared by every app made)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()
        operation = self.operation_id

        async def limited(request: Request) -> Response:
            limits: BodyLimits = request.app.state.body_limits
            return await handle(LimitedRequest(request.scope, request.receive, limits.of(operation)))

        return limited


async def _server(request: Request) -> Server:
    server: Server = request.app.state.server
    return server


ServerDep = Annotated[Server, Depends(_server)]
"""The `Server` the app was made over: a handler's parameter `server: ServerDep`."""
UserId = Annotated[str, Path(description="the user's id, as in their events", examples=["u1"])]
JourneyId = Annotated[str, Path(description="a journey's `id`", examples=["order-updates"])]
