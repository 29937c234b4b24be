"""The consent routes: `POST /v1/profiles/{user_id}/consents` appends one change to a user's ledger,
and `GET /v1/consents?since=&limit=&cursor=` reads the audit trail a page at a time: every user's
ledger rows and the suppression list's rows (a STOP or START from a number, `user_id` null), each
in the order written.

The cursor is `<ledger position>:<suppression position>`, the last rows of each returned (the SQL
store's row ids), in decimal: callers pass `next_cursor` back as it came; an empty one is the
start. Being two numbers, it is described by a pattern in the OpenAPI document, so a request the
document allows is one the server takes.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from engine.errors import EventError, HttpError
from engine.events import parse_time
from engine.host.profiles import changes
from engine.http.bodies import ConsentIn
from engine.http.fields import IN_RANGE
from engine.http.openapi import documented
from engine.http.routing import JsonRoute, ServerDep, UserId
from engine.http.schemas import ConsentFeed, ConsentList
from engine.stores.privacy import consent_trail

router = APIRouter(route_class=JsonRoute, tags=["consents"])
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
CURSOR = r"^([0-9]{1,18}:[0-9]{1,18})?$"  # a position in each ledger; empty: the start
Since = Annotated[str | None, Query(description="RFC 3339: only changes recorded at or after it",
                                    examples=["2026-01-01T00:00:00Z"], pattern=IN_RANGE,
                                    json_schema_extra={"format": "date-time"})]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="rows per page")]
Cursor = Annotated[str, Query(description="`next_cursor` of the previous page (empty: the start)", pattern=CURSOR)]


@router.post("/v1/profiles/{user_id}/consents", operation_id="addConsent", **documented(ConsentList, status=201))
def add_consent(user_id: UserId, body: ConsentIn, server: ServerDep) -> dict[str, Any]:
    """Append one consent change to the user's ledger; one that repeats the latest record for
    its channel and category changes nothing. 404 when the user has no profile."""
    record = body.to_record(server.clock.now())
    with server.lock, server.store.transaction() as tx:
        stored = tx.get_profile(user_id)
        if stored is None:
            raise HttpError(404, f"no profile for user '{user_id}' (PUT /v1/profiles/{user_id} creates one)")
        profile = stored.with_consents(changes(stored.consents, [record]))
        tx.put_profile(profile)
    return {"user_id": user_id, "consents": [c.to_dict() for c in profile.consents]}


@router.get("/v1/consents", operation_id="listConsents", **documented(ConsentFeed))
def list_consents(server: ServerDep, since: Since = None, limit: Limit = DEFAULT_LIMIT,
                  cursor: Cursor = "") -> dict[str, Any]:
    """Ledger rows of all users and the suppression list's rows (`user_id` null, `number`) in
    write order; `next_cursor` is null once there are no more."""
    try:
        start = parse_time(since, "since") if since is not None else None
    except EventError as exc:
        raise HttpError(422, str(exc)) from None
    ledger, _, numbers = cursor.partition(":")
    page, position = consent_trail(server.store.privacy, start, (int(ledger or 0), int(numbers or 0)), limit)
    return {"consents": [entry.to_dict() for entry in page],
            "next_cursor": f"{position[0]}:{position[1]}" if position is not None else None}
