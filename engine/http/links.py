"""Tracked links and open pixels, served to the public (`/l/{code}`, `/o/{code}`): no API key, since
the people who tap a link carry none; the code, random and unguessable, is the only credential.

- `GET /l/{code}`: 302 to the link's URL, its click recorded (`<channel>.clicked`);
- `GET /o/{code}`: a transparent 1x1 GIF, the email's open recorded (`email.opened`).

A code no link has (never made, or its person erased) answers 404 and records nothing. Nothing
about the person or the message is in any answer: the redirect carries only the URL the message
itself held, the 404 names nothing, and neither may be cached (each hit must reach the server)
nor passes the short link on as a Referer. The access log masks the codes (`engine.host.logs`).
"""

from __future__ import annotations

import base64
from typing import Annotated

from fastapi import APIRouter, Header, Path
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from engine.errors import HttpError
from engine.http.openapi import ERRORS
from engine.http.routing import JsonRoute, ServerDep

PREFIXES = ("/l/", "/o/")
"""The public paths: outside the API key, as the webhooks are."""
TAG = "tracking"
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")  # a transparent 1x1 GIF, 42 bytes
PRIVATE = {"Cache-Control": "no-store, private", "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex, nofollow"}
NO_LINK = "no such link"
Code = Annotated[str, Path(description="the code of a short link, as the message carried it", examples=["X7bQ2mKp9Z"])]
Agent = Annotated[str | None, Header(description="who is asking: a mail proxy, a link preview or a program counts "
                                                 "as a machine")]
router = APIRouter(route_class=JsonRoute, tags=[TAG])


@router.get("/l/{code}", operation_id="followLink", status_code=302, response_class=RedirectResponse,
            responses={302: {"description": "To the link's URL", "headers": {"Location": {
                "description": "the URL the message linked to", "schema": {"type": "string"}}}},
                       404: {"description": ERRORS[404]}})
async def follow_link(code: Code, server: ServerDep, user_agent: Agent = None) -> Response:
    """Redirect to the URL a message linked to, recording `<channel>.clicked` for that message."""
    url = await run_in_threadpool(server.tracking.follow, code, user_agent)
    if url is None:
        raise HttpError(404, NO_LINK)
    return RedirectResponse(url, status_code=302, headers=PRIVATE)


@router.get("/o/{code}", operation_id="openPixel", response_class=Response,
            responses={200: {"description": "A transparent 1x1 GIF", "content": {
                "image/gif": {"schema": {"type": "string", "format": "binary"}}}},
                       404: {"description": ERRORS[404]}})
async def open_pixel(code: Code, server: ServerDep, user_agent: Agent = None) -> Response:
    """The open pixel of an email: records `email.opened` for that message (`machine` when a
    mail proxy loaded it)."""
    if not await run_in_threadpool(server.tracking.open, code, user_agent):
        raise HttpError(404, NO_LINK)
    return Response(PIXEL, media_type="image/gif", headers=PRIVATE)
