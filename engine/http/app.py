"""The HTTP API (docs/http.md): a thin FastAPI layer over `Server`, wired here from one router per
resource (events, profiles, consents, privacy, journeys, runs, messages and instances, webhooks,
health and metrics, and the public tracked links).

Request bodies are the pydantic models of `engine.http.bodies`, which both parse them and
describe them in the OpenAPI document (`engine.http.openapi`). Handlers read a body on the event
loop, up to the route's size limit (`engine.http.routing`), and do the database work in the thread
pool, so one request's transaction never stalls the loop. Every failure is a 4xx or 5xx in
RFC 9457 problem details (`engine.http.problems`), a bad field named by its path; nothing accepted
is lost, because the 202 is only sent after the transaction holding the events has committed.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI
from fastapi.routing import APIRouter
from fastapi_offline import FastAPIOffline

from engine.host.server import Server
from engine.http import (
    consents,
    events,
    feed,
    health,
    journeys,
    links,
    messages,
    preference_page,
    preferences,
    privacy,
    profiles,
    runs,
    stats,
    timeline,
    webhooks,
)
from engine.http.auth import BearerAuth
from engine.http.console_page import install_console, is_console
from engine.http.metrics import Metrics
from engine.http.openapi import install_openapi
from engine.http.problems import install_problem_handlers
from engine.http.routing import BodyLimits, MiB
from engine.http.user_keys import UserKeys

MAX_BODY = MiB
"""A request body's limit (413 over it), `JOURNEY_MAX_BODY_BYTES` for `journey serve`..."""
MAX_BULK_BODY = 32 * MiB
"""... but for `POST /v1/profiles`, which takes up to 10,000 profiles: `JOURNEY_MAX_BULK_BODY_BYTES`."""
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/openapi.json", "/docs", "/docs/oauth2-redirect"})
DOCS_ASSETS = "/docs/assets"
"""Swagger UI's script, style and icon, served from the `fastapi-offline` package: `/docs` works
with no network beyond this server (FastAPI's own page loads them from a CDN)."""
WEBHOOKS = "/v1/webhooks/"
ROUTERS: tuple[APIRouter, ...] = (events.router, profiles.router, consents.router, privacy.router, runs.router,
                                  journeys.router, stats.router, messages.router, timeline.router, feed.router,
                                  preferences.router, preference_page.router, webhooks.router, health.router,
                                  links.router)
DESCRIPTION = """Ingest events, manage profiles and consent, inspect journeys and messages.

Every route but `/healthz`, `/readyz`, the docs, the provider webhooks (signature-checked), the
tracked links and open pixels (`/l/{code}`, `/o/{code}`: the code is the credential), a person's
preference page (its link carries their user key) and `/metrics` when `JOURNEY_METRICS_PUBLIC=1`
takes `Authorization: Bearer <key>` (one of `JOURNEY_API_KEYS`): use **Authorize**. Every 4xx and
5xx is `application/problem+json` (RFC 9457), with `errors: [{field, message}]` when fields are at
fault."""
TAGS = [
    {"name": "events", "description": "What happened to a user: enters, moves and ends their journeys."},
    {"name": "profiles", "description": "Who a user is and how to reach them."},
    {"name": "consents", "description": "A user's consent ledger, and the audit trail of every change."},
    {"name": "privacy", "description": "A person's rights: erasure and export."},
    {"name": "journeys", "description": "The loaded journeys: read, reload, pause, resume, stop, dry-run."},
    {"name": "runs", "description": "Audience runs of the journeys that enter people by schedule."},
    {"name": "messages", "description": "What was sent to a user, put off or skipped, and why."},
    {"name": "instances", "description": "Where each of a user's journeys is, and what it waits for."},
    {"name": "feed", "description": "A person's in-app feed and what they did to each message; their user key."},
    {"name": "preferences", "description": "A person's preference centre: which messages on which channels."},
    {"name": "webhooks", "description": "Delivery receipts and inbound replies from providers (signed)."},
    {"name": "health", "description": "Liveness and readiness."},
    {"name": "metrics", "description": "Prometheus metrics."},
    {"name": "tracking", "description": "Tracked links and open pixels, public: the random code is the credential."},
]


def create_app(server: Server, api_keys: frozenset[str] = frozenset(), max_body: int = MAX_BODY,
               metrics_public: bool = False, bulk_max_body: int = MAX_BULK_BODY,
               user_key_secret: str | None = None, public_url: str = "") -> FastAPI:
    """The API over `server`. `metrics_public` (`journey serve` passes `JOURNEY_METRICS_PUBLIC=1`)
    serves `/metrics` without a key, since scrapers rarely carry bearer tokens.
    Bodies over `max_body` bytes get a 413, but the bulk route's limit is `bulk_max_body`. User keys
    are HMACs under `user_key_secret` (`journey serve` passes `JOURNEY_USER_KEY_SECRET`; without it,
    one derived from the API keys); templates' `preferences_url` is the preference page under
    `public_url` (`journey serve` passes `JOURNEY_PUBLIC_URL`; empty: a path without a host) with
    the person's key."""
    is_open = _open(OPEN_PATHS | ({"/metrics"} if metrics_public else set()))
    app = FastAPIOffline(title="journey-engine", version="0.1.0", description=DESCRIPTION, redoc_url=None,
                         static_url=DOCS_ASSETS, openapi_tags=TAGS)
    app.state.server = server
    app.state.metrics = Metrics(server)
    app.state.body_limits = BodyLimits(max_body, {"upsertProfiles": bulk_max_body})
    user_keys = UserKeys.for_server(user_key_secret, api_keys)
    app.state.user_keys = user_keys
    server.engine.runtime.preference_links = preference_page.preferences_link(user_keys, public_url)
    for router in ROUTERS:
        app.include_router(router)
    install_console(app)
    app.add_middleware(BearerAuth, keys=api_keys, is_open=is_open, user_keys=user_keys)
    install_problem_handlers(app, server, [route for router in ROUTERS for route in router.routes])
    install_openapi(app, is_open)
    return app


def _open(paths: frozenset[str]) -> Callable[[str], bool]:
    """Whether a path takes no key: the open paths, the docs' assets, the console's files (the page
    asks the API for its data with the key typed in), the (signed) webhooks, the tracked links
    (their code is the credential), the preference page (its link carries the person's key, which
    it checks itself)."""
    return lambda path: path in paths or is_console(path) or \
        path.startswith((WEBHOOKS, DOCS_ASSETS + "/", *links.PREFIXES)) or \
        (path.startswith("/v1/users/") and path.endswith("/preferences/page"))
