"""The profile routes: `PUT /v1/profiles/{user_id}` replaces a profile, `PATCH` merges into one,
`GET` reads it, `POST .../consents` appends a consent change, and `POST /v1/profiles` upserts up
to 10,000 in one request as `PUT` does one, answering like the events' route:
`{"upserted": n, "rejected": [{"index", "error"}]}`. The bulk route has its own body limit."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Path, Request
from fastapi.concurrency import run_in_threadpool

from channels import Profile, ProfileError
from engine.errors import HttpError
from engine.host.profiles import MAX_BATCH, changes, merged, parse_profile, patched, stamped, upsert_profiles
from engine.host.server import Server
from engine.http import schemas as doc
from engine.http.openapi import documented

USER_ID = Path(description="the user's id, as in their events", examples=["u1"])


def add_profile_routes(app: FastAPI, server: Server, read_json: Any, max_body: int, bulk_max_body: int) -> None:
    @app.put("/v1/profiles/{user_id}", **documented(doc.Profile, 409, body=doc.ProfileIn))
    async def put_profile(request: Request, user_id: str = USER_ID) -> dict[str, Any]:
        """Create or replace: a field the body leaves out is cleared (`attributes` included);
        consents in the body are appended to the ledger, those that change nothing left out. A
        `user_id` in the body that names another user than the path is a 409."""
        body = await read_json(request, max_body, check=False)  # `parse_profile` checks every value
        return await run_in_threadpool(_put_profile, server, user_id, body)

    @app.patch("/v1/profiles/{user_id}", **documented(doc.Profile, 404, 409, body=doc.ProfilePatch))
    async def patch_profile(request: Request, user_id: str = USER_ID) -> dict[str, Any]:
        """Merge into a stored profile: the fields given replace the stored ones (`null` clears
        one), `attributes` are merged key by key (a key given `null` is removed), consents are
        appended as `PUT` appends them. 404 when the user has no profile (`PUT` creates one); a
        `user_id` naming another user than the path is a 409, as for `PUT`."""
        body = await read_json(request, max_body, check=False)
        return await run_in_threadpool(_patch_profile, server, user_id, body)

    @app.get("/v1/profiles/{user_id}", **documented(doc.Profile, 404))
    def get_profile(user_id: str = USER_ID) -> dict[str, Any]:
        return _existing_profile(server, user_id).to_dict()

    @app.post("/v1/profiles/{user_id}/consents", **documented(doc.ConsentList, status=201, body=doc.ConsentIn))
    async def post_consent(request: Request, user_id: str = USER_ID) -> dict[str, Any]:
        """Append one consent change to the user's ledger; one that repeats the latest record for
        its channel and category changes nothing. 404 when the user has no profile."""
        body = await read_json(request, max_body)
        return await run_in_threadpool(_append_consent, server, user_id, body)

    @app.post("/v1/profiles", **documented(doc.BulkResult, 413, 422, body=doc.BulkProfiles))
    async def bulk_profiles(request: Request) -> dict[str, Any]:
        """Upsert many profiles: each valid one as `PUT /v1/profiles/{user_id}` would; invalid ones
        are listed in `rejected` with their index and the field at fault."""
        body = await read_json(request, bulk_max_body, check=False)  # each profile is checked on its own
        return await run_in_threadpool(_bulk, server, body)


def _bulk(server: Server, body: Any) -> dict[str, Any]:
    items = body.get("profiles") if isinstance(body, dict) else None
    if not isinstance(items, list):
        raise HttpError(422, "profiles: expected {\"profiles\": [...]}")
    for key in sorted(set(body) - {"profiles"}):
        raise HttpError(422, f"{key}: unknown field (a batch is {{\"profiles\": [...]}})")
    if len(items) > MAX_BATCH:
        raise HttpError(422, f"profiles: at most {MAX_BATCH:,} per request, got {len(items):,}")
    return upsert_profiles(server.store, items, server.clock.now(), server.lock).to_dict()


def _existing_profile(server: Server, user_id: str) -> Profile:
    with server.lock, server.store.transaction() as tx:
        profile = tx.get_profile(user_id)
    if profile is None:
        raise HttpError(404, f"no profile for user '{user_id}'")
    return profile


def _put_profile(server: Server, user_id: str, body: Any) -> dict[str, Any]:
    """Create or replace: fields are replaced; consents in the body are appended to the ledger."""
    _check_profile_body(user_id, body)
    try:
        incoming = parse_profile({**body, "user_id": user_id}, server.clock.now())
    except ProfileError as exc:
        raise HttpError(422, str(exc)) from None
    with server.lock, server.store.transaction() as tx:
        profile = merged(tx.get_profile(user_id), incoming)
        tx.put_profile(profile)
    return profile.to_dict()


def _patch_profile(server: Server, user_id: str, body: Any) -> dict[str, Any]:
    _check_profile_body(user_id, body)
    fields = {k: v for k, v in body.items() if k != "user_id"}  # checked: the path's
    with server.lock, server.store.transaction() as tx:
        existing = tx.get_profile(user_id)
        if existing is None:
            raise HttpError(404, f"no profile for user '{user_id}' (PUT /v1/profiles/{user_id} creates one)")
        try:
            profile = patched(existing, fields, server.clock.now())
        except ProfileError as exc:
            raise HttpError(422, str(exc)) from None
        tx.put_profile(profile)
    return profile.to_dict()


def _check_profile_body(user_id: str, body: Any) -> None:
    if not isinstance(body, dict):
        raise HttpError(422, "profile: expected a JSON object")
    if body.get("user_id") is not None and body["user_id"] != user_id:  # null: the path's, as left out
        raise HttpError(409, f"user_id: {body['user_id']!r} is another user than the path's ('{user_id}')")


def _append_consent(server: Server, user_id: str, body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise HttpError(422, "consent: expected a JSON object with channel, category, granted")
    record = stamped(body, server.clock.now())
    try:
        parsed = Profile.from_dict({"user_id": user_id, "consents": [record]}).consents[0]
    except ProfileError as exc:
        raise HttpError(422, str(exc).replace("consents.0.", "")) from None
    with server.lock, server.store.transaction() as tx:
        stored = tx.get_profile(user_id)
        if stored is None:
            raise HttpError(404, f"no profile for user '{user_id}' (PUT /v1/profiles/{user_id} creates one)")
        profile = stored.with_consents(changes(stored.consents, [parsed]))
        tx.put_profile(profile)
    return {"user_id": user_id, "consents": [c.to_dict() for c in profile.consents]}
