"""`POST /v1/profiles`: up to 10,000 profiles in one request, upserted as `PUT` does one; the
answer is shaped like the events': `{"upserted": n, "rejected": [{"index", "error"}]}`."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool

from engine.errors import HttpError
from engine.host.profiles import MAX_BATCH, upsert_profiles
from engine.host.server import Server
from engine.http import schemas as doc
from engine.http.openapi import documented


def add_profile_routes(app: FastAPI, server: Server, read_json: Any, max_body: int) -> None:
    @app.post("/v1/profiles", **documented(doc.BulkResult, 413, 422, body=doc.BulkProfiles))
    async def bulk_profiles(request: Request) -> dict[str, Any]:
        """Upsert many profiles: each valid one as `PUT /v1/profiles/{user_id}` would; invalid ones
        are listed in `rejected` with their index and the field at fault."""
        body = await read_json(request, max_body, check=False)  # each profile is checked on its own
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
