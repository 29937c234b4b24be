"""The profile routes: `PUT /v1/profiles/{user_id}` replaces a profile, `PATCH` merges into one,
`GET` reads it, and `POST /v1/profiles` upserts up to 10,000 in one request as `PUT` does one,
answering like the events' route: `{"upserted": n, "rejected": [{"index", "error"}]}`. The bulk
route has its own body limit. (A profile's consents, erasure and export: `consents`, `privacy`.)"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from channels import Profile
from engine.errors import HttpError
from engine.host.profiles import merged, upsert
from engine.host.server import Server
from engine.http.bodies import BulkProfiles, ProfileIn, ProfilePatch, SimulatedProfile, parse, parse_each
from engine.http.openapi import documented, parsed_body
from engine.http.routing import JsonRoute, ServerDep, UserId
from engine.http.schemas import BulkResult
from engine.http.schemas import Profile as ProfileAnswer

router = APIRouter(route_class=JsonRoute, tags=["profiles"])


@router.put("/v1/profiles/{user_id}", operation_id="putProfile", **documented(ProfileAnswer, 409))
def put_profile(user_id: UserId, body: ProfileIn, server: ServerDep) -> dict[str, Any]:
    """Create or replace: a field the body leaves out is cleared (`attributes` included);
    consents in the body are appended to the ledger, those that change nothing left out. A
    `user_id` in the body that names another user than the path is a 409."""
    _same_user(user_id, body.user_id)
    incoming = body.to_profile(user_id, server.clock.now())
    with server.lock, server.store.transaction() as tx:
        profile = merged(tx.get_profile(user_id), incoming)
        tx.put_profile(profile)
    return profile.to_dict()


@router.patch("/v1/profiles/{user_id}", operation_id="patchProfile", **documented(ProfileAnswer, 404, 409))
def patch_profile(user_id: UserId, body: ProfilePatch, server: ServerDep) -> dict[str, Any]:
    """Merge into a stored profile: the fields given replace the stored ones (`null` clears
    one), `attributes` are merged key by key (a key given `null` is removed), consents are
    appended as `PUT` appends them. 404 when the user has no profile (`PUT` creates one); a
    `user_id` naming another user than the path is a 409, as for `PUT`."""
    _same_user(user_id, body.user_id)
    with server.lock, server.store.transaction() as tx:
        stored = tx.get_profile(user_id)
        if stored is None:
            raise HttpError(404, f"no profile for user '{user_id}' (PUT /v1/profiles/{user_id} creates one)")
        profile = body.applied_to(stored, server.clock.now())
        tx.put_profile(profile)
    return profile.to_dict()


@router.get("/v1/profiles/{user_id}", operation_id="getProfile", **documented(ProfileAnswer, 404))
def get_profile(user_id: UserId, server: ServerDep) -> dict[str, Any]:
    return stored_profile(server, user_id).to_dict()


@router.post("/v1/profiles", operation_id="upsertProfiles", openapi_extra=parsed_body(BulkProfiles),
             **documented(BulkResult, 413, 422))
async def upsert_profiles(request: Request, server: ServerDep) -> dict[str, Any]:
    """Upsert many profiles: each valid one as `PUT /v1/profiles/{user_id}` would; invalid ones
    are listed in `rejected` with their index and the fields at fault."""
    body = await request.json()
    return await run_in_threadpool(_upsert, server, body)


def _upsert(server: Server, body: Any) -> dict[str, Any]:
    items, rejected = parse_each(SimulatedProfile, parse(BulkProfiles, body).profiles, "profile")
    now = server.clock.now()
    upserted = upsert(server.store, [item.as_profile(now) for item in items], now, server.lock)
    return {"upserted": upserted, "rejected": rejected}


def stored_profile(server: Server, user_id: str) -> Profile:
    """The user's profile; a 404 when there is none."""
    with server.lock, server.store.transaction() as tx:
        profile = tx.get_profile(user_id)
    if profile is None:
        raise HttpError(404, f"no profile for user '{user_id}'")
    return profile


def _same_user(user_id: str, named: str | None) -> None:
    if named is not None and named != user_id:  # null: the path's, as left out
        raise HttpError(409, f"user_id: {named!r} is another user than the path's ('{user_id}')")
