"""`POST /v1/events`: one event, or a batch `{"events": [...]}` in one transaction.

The body is parsed here rather than by FastAPI, since a batch's items are parsed one by one: each
bad item is listed in `rejected` (its index, and the fields at fault) and the rest go in. A single
bad event is a 422. Nothing accepted is lost: the 202 is only sent once the transaction holding the
events has committed (or, with `Prefer: respond-async`, once they are durable in the inbox).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from engine.host.server import Server
from engine.http.bodies import EventBatch, EventIn, parse, parse_each
from engine.http.openapi import documented, parsed_body
from engine.http.routing import JsonRoute, ServerDep
from engine.http.schemas import BatchResult

router = APIRouter(route_class=JsonRoute, tags=["events"])
PREFER = Header(None, description="`respond-async` (RFC 7240): answer once the events are durable, process them "
                                  "moments later")


@router.post("/v1/events", operation_id="ingestEvents", openapi_extra=parsed_body(EventIn, EventBatch),
             **documented(BatchResult, status=202,
                          description="Accepted (processed, or queued with `Prefer: respond-async`)"))
async def ingest_events(request: Request, server: ServerDep, prefer: str | None = PREFER) -> JSONResponse:
    """One event, or `{"events": [...]}`. Processed before the reply, unless the request says
    `Prefer: respond-async` (RFC 7240): then the reply comes once the events are durable in
    the inbox, and the engine processes them moments later, in order. In a batch each invalid
    item is listed in `rejected` (index and error) and the rest go in; a single invalid event
    is a 422."""
    body = await request.json()
    queue = "respond-async" in (prefer or "").lower()
    reply = JSONResponse(await run_in_threadpool(ingest, server, body, queue), status_code=202)
    if queue:
        reply.headers["Preference-Applied"] = "respond-async"
    return reply


def ingest(server: Server, body: Any, queue: bool = False) -> dict[str, Any]:
    """Parse, then hand the valid events to the server: processed now, or queued in the inbox."""
    now = server.clock.now()
    if isinstance(body, dict) and "events" in body:
        items, rejected = parse_each(EventIn, parse(EventBatch, body).events, "event")
    else:
        try:
            items, rejected = [parse(EventIn, body)], []
        except RequestValidationError:
            server.counters.rejected += 1
            raise
    server.counters.rejected += len(rejected)
    valid = [item.to_event(now) for item in items]
    results = (server.accept if queue else server.ingest)(valid, len(rejected)) if valid else []
    duplicates = sum(1 for r in results if r.duplicate)
    return {"accepted": len(results) - duplicates, "duplicates": duplicates, "rejected": rejected}
