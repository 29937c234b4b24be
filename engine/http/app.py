"""The HTTP API (docs/http.md): a thin FastAPI layer over `Server`.

Handlers read the body on the event loop and do the database work in the thread pool, so
one request's transaction never stalls the loop. Bodies are read and size-checked by hand
(413 over the limit) and validated by the same parsers as the Python API, so an error names
the field the same way everywhere; `engine.http.schemas` describes those bodies for the OpenAPI
document (`engine.http.openapi`). Every failure is a 4xx or 5xx in RFC 9457 problem details
(`engine.http.problems`); nothing accepted is lost, because the 202 is only sent after the
transaction holding the events has committed.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Header, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from fastapi_offline import FastAPIOffline
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.middleware.base import BaseHTTPMiddleware

from engine.compiler import END
from engine.errors import EventError, HttpError, InputError, JourneyDefinitionError, StoreError
from engine.events import Event, check_values, parse_event, parse_time
from engine.host.server import Server
from engine.http import schemas as doc
from engine.http.links import PREFIXES as TRACKED
from engine.http.links import tracking_router
from engine.http.metrics import Metrics
from engine.http.openapi import documented, install_openapi, ref
from engine.http.privacy import add_privacy_routes
from engine.http.problems import install_problem_handlers, problem, unavailable
from engine.http.profiles import add_profile_routes
from engine.http.runs import add_run_routes
from engine.http.views import deferred_sends, instance_view, message_view, skip_view
from engine.http.webhooks import FORM, handle_webhook
from engine.simulator import parse_events, parse_profiles
from engine.simulator import simulate as run_simulation

MiB = 1024 * 1024
MAX_BODY = MiB
"""A request body's limit (413 over it), `JOURNEY_MAX_BODY_BYTES` for `journey serve`..."""
MAX_BULK_BODY = 32 * MiB
"""... but for `POST /v1/profiles`, which takes up to 10,000 profiles: `JOURNEY_MAX_BULK_BODY_BYTES`."""
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/openapi.json", "/docs", "/docs/oauth2-redirect"})
DOCS_ASSETS = "/docs/assets"
"""Swagger UI's script, style and icon, served from the `fastapi-offline` package: `/docs` works
with no network beyond this server (FastAPI's own page loads them from a CDN)."""
WEBHOOKS = "/v1/webhooks/"
DESCRIPTION = """Ingest events, manage profiles and consent, inspect journeys and messages.

Every route but `/healthz`, `/readyz`, the docs, the provider webhooks (signature-checked), the
tracked links and open pixels (`/l/{code}`, `/o/{code}`: the code is the credential) and
`/metrics` when `JOURNEY_METRICS_PUBLIC=1` takes `Authorization: Bearer <key>` (one of
`JOURNEY_API_KEYS`): use **Authorize**. Every 4xx and 5xx is `application/problem+json`
(RFC 9457), with `errors: [{field, message}]` when fields are at fault."""
USER_ID = Path(description="the user's id, as in their events", examples=["u1"])
JOURNEY_ID = Path(description="a journey's `id`", examples=["order-updates"])


def create_app(server: Server, api_keys: frozenset[str] = frozenset(), max_body: int = MAX_BODY,
               metrics_public: bool = False, bulk_max_body: int = MAX_BULK_BODY) -> FastAPI:
    """The API over `server`. `metrics_public` (`journey serve` passes `JOURNEY_METRICS_PUBLIC=1`)
    serves `/metrics` without a key, since scrapers rarely carry bearer tokens.
    Bodies over `max_body` bytes get a 413, but the bulk route's limit is `bulk_max_body`."""
    open_paths = OPEN_PATHS | ({"/metrics"} if metrics_public else set())
    app = FastAPIOffline(title="journey-engine", version="0.1.0", description=DESCRIPTION, redoc_url=None,
                         static_url=DOCS_ASSETS)
    app.state.server = server
    app.add_middleware(_BearerAuth, keys=api_keys, open_paths=open_paths)
    install_problem_handlers(app, server)
    install_openapi(app, lambda path: path in open_paths or path.startswith((WEBHOOKS, *TRACKED)))
    metrics = Metrics(server)

    @app.post("/v1/events", **documented(doc.BatchResult, status=202, body=(doc.EventIn, doc.EventBatch),
                                         description="Accepted (processed, or queued with `Prefer: respond-async`)"))
    async def post_events(request: Request, prefer: str | None = Header(
            None, description="`respond-async` (RFC 7240): answer once the events are durable, process them "
                              "moments later")) -> JSONResponse:
        """One event, or `{"events": [...]}`. Processed before the reply, unless the request says
        `Prefer: respond-async` (RFC 7240): then the reply comes once the events are durable in
        the inbox, and the engine processes them moments later, in order. In a batch each invalid
        item is listed in `rejected` (index and error) and the rest go in; a single invalid event
        is a 422."""
        body = await _read_json(request, max_body, check=False)  # each event is checked on its own
        queue = "respond-async" in (prefer or "").lower()
        reply = JSONResponse(await run_in_threadpool(_ingest, server, body, queue), status_code=202)
        if queue:
            reply.headers["Preference-Applied"] = "respond-async"
        return reply

    add_privacy_routes(app, server)  # DELETE /v1/profiles/{id}, its export, the consent feed
    add_profile_routes(app, server, _read_json, max_body, bulk_max_body)  # PUT, PATCH, GET, consents, bulk
    add_run_routes(app, server)  # POST and GET /v1/journeys/{id}/runs
    app.include_router(tracking_router(server))  # GET /l/{code} and /o/{code}: public, like the webhooks

    @app.get("/v1/journeys", **documented(doc.JourneyList))
    def list_journeys() -> dict[str, Any]:
        """Every loaded journey, then every removed one whose instances still run (`state` removed,
        `version` null, its last version's name and trigger)."""
        ids = [*server.engine.journeys, *server.deploys.removed_in_flight()]
        return {"journeys": [_journey_summary(server, j) for j in ids]}

    @app.get("/v1/journeys/{journey_id}", **documented({"anyOf": [ref(doc.JourneyDetail), ref(doc.JourneyState)]},
                                                       404))
    def get_journey(journey_id: str = JOURNEY_ID) -> dict[str, Any]:
        """Definition, graph and instances per step; for a removed journey, its state and versions."""
        return _journey_detail(server, journey_id)

    @app.post("/v1/journeys/reload", **documented(doc.ReloadReport, 422))
    def reload_journeys() -> JSONResponse:
        """Load the journeys folder again: which journeys were added, changed, unchanged, removed.
        If any file is bad nothing changes, and the answer is a 422 listing every problem."""
        try:
            report = server.reload()
        except JourneyDefinitionError as exc:
            problems = [str(p) for p in exc.problems]
            return problem(422, "; ".join(problems), errors=[], problems=problems)
        return JSONResponse(report.to_dict())

    @app.post("/v1/journeys/{journey_id}/pause", **documented(doc.StateChange, 404))
    def pause_journey(journey_id: str = JOURNEY_ID) -> dict[str, Any]:
        """No new entries; in-flight instances go on. Survives a restart."""
        return server.deploys.change_state(journey_id, "pause")

    @app.post("/v1/journeys/{journey_id}/resume", **documented(doc.StateChange, 404))
    def resume_journey(journey_id: str = JOURNEY_ID) -> dict[str, Any]:
        """New entries again, after a pause or a stop."""
        return server.deploys.change_state(journey_id, "resume")

    @app.post("/v1/journeys/{journey_id}/stop", **documented(doc.StateChange, 404))
    def stop_journey(journey_id: str = JOURNEY_ID) -> dict[str, Any]:
        """No new entries, and every in-flight instance ends as `exited` (reason `journey_stopped`),
        its timers cancelled, its unsent messages kept back."""
        return server.deploys.change_state(journey_id, "stop")

    @app.post("/v1/journeys/{journey_id}/simulate", **documented(doc.Simulation, 404, body=doc.SimulateRequest))
    async def simulate_journey(request: Request, journey_id: str = JOURNEY_ID) -> dict[str, Any]:
        """A dry run on a virtual clock: no provider called, nothing stored."""
        body = await _read_json(request, max_body)
        return await run_in_threadpool(_simulate, server, journey_id, body)

    @app.get("/v1/users/{user_id}/instances", **documented(doc.InstanceList))
    def user_instances(user_id: str = USER_ID) -> dict[str, Any]:
        """Each instance with where it is and, while it waits on a timer, for what and until when."""
        return {"instances": [instance_view(i) for i in server.store.views.instances_for_user(user_id)]}

    @app.get("/v1/messages", **documented(doc.MessageList))
    def messages(user_id: str = Query(description="whose messages", examples=["u1"])) -> dict[str, Any]:
        """The user's latest messages with their decisions and delivery status (a pending one with
        its next attempt), the sends quiet hours put off (`deferred`, with when they are decided
        again), and the skipped sends."""
        return {"messages": [message_view(m) for m in server.store.views.messages_for_user(user_id)],
                "deferred": deferred_sends(server, user_id),
                "skipped": [skip_view(s) for s in server.store.views.skips_for_user(user_id)]}

    # Provider webhooks (delivery receipts, inbound replies): signature-checked in engine.http.webhooks,
    # so they take no bearer key.
    hook = documented(doc.WebhookAck, 403, 404, body=doc.TwilioForm, body_media=FORM)
    hook["responses"][200]["content"]["text/xml"] = {"schema": {"type": "string"}}  # TwiML, for inbound SMS

    @app.post(WEBHOOKS + "{provider}/{kind}", **hook)
    async def provider_webhook(request: Request, provider: str = Path(examples=["twilio"]),
                               kind: str = Path(description="`status` or `inbound`")) -> Response:
        """Twilio status callbacks and inbound SMS, checked with `X-Twilio-Signature` (403 otherwise)."""
        body = await _read_body(request, max_body)
        reply = await run_in_threadpool(handle_webhook, server, provider, kind, str(request.url), request.headers,
                                        body)
        return Response(reply.body, status_code=reply.status, media_type=reply.media_type)

    @app.get("/healthz", **documented(doc.Health))
    def healthz() -> JSONResponse:
        """Liveness: 503 only while one turn of the engine has held it longer than the limit
        (`JOURNEY_STUCK_TURN_SECONDS`, 10 s; `turn` says which thread, for how long), the state a
        restart mends. Nothing about the database: that is `/readyz`, and an outage is not mended
        by a restart. Sweeps that keep failing show in /metrics (`journey_sweep_failing`)."""
        overdue = server.lock.overdue(server.stuck_turn)
        if overdue is not None:
            return problem(503, str(overdue), errors=[], turn=overdue.to_dict())
        return JSONResponse({"status": "ok"})

    @app.get("/readyz", **documented(doc.Health))
    def readyz() -> JSONResponse:
        """Ready to serve: the database answers (503 while it does not). `/healthz` is liveness only."""
        try:
            server.store.ping()
        except StoreError as exc:
            server.outage.failed(exc)
            return unavailable(f"the database is unavailable: {exc}")
        server.outage.recovered()
        return JSONResponse({"status": "ready"})

    @app.get("/metrics", **documented({"type": "string"}, media="text/plain"))
    def prometheus() -> Response:
        """Prometheus text format. Open without a key when `JOURNEY_METRICS_PUBLIC=1`."""
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return app


class _BearerAuth(BaseHTTPMiddleware):
    """`Authorization: Bearer <key>` on every route but the open paths, the webhooks and the tracked
    links; no keys: open (loopback only)."""

    def __init__(self, app: Any, keys: frozenset[str], open_paths: frozenset[str]) -> None:
        super().__init__(app)
        self.keys = [k.encode("utf-8") for k in keys]  # compared as bytes: a header may hold any byte
        self.open_paths = open_paths

    async def dispatch(self, request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        path = request.url.path
        if "\x00" in path or any("\x00" in v for v in request.query_params.values()):
            return problem(422, "the URL contains a NUL character")
        if self.keys and path not in self.open_paths and not path.startswith((WEBHOOKS, DOCS_ASSETS + "/", *TRACKED)):
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            sent = token.encode("latin-1")  # the header's own bytes (ASGI servers decode headers as latin-1)
            if scheme.lower() != "bearer" or not any(hmac.compare_digest(sent, k) for k in self.keys):
                return problem(401, "missing or wrong API key (Authorization: Bearer <key>)",
                               headers={"WWW-Authenticate": "Bearer"})
        return await call_next(request)


async def _read_json(request: Request, limit: int, check: bool = True) -> Any:
    """The body as JSON; with `check`, every string and number in it must be storable (422 naming
    the field otherwise). Event batches check each event on its own, so one bad one is rejected alone."""
    body = await _read_body(request, limit)
    try:
        data = json.loads(body)  # NaN, Infinity and 1e999 become floats that `check_values` refuses by field
    except RecursionError:
        raise HttpError(400, "body is not valid JSON: nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, oversized integers
        raise HttpError(400, f"body is not valid JSON: {exc}") from None
    if check:
        try:
            check_values(data, "body")
        except EventError as exc:
            raise HttpError(422, str(exc).removeprefix("body.")) from None
    return data


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise HttpError(413, f"request body is over the {limit} byte limit")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HttpError(413, f"request body is over the {limit} byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


def _ingest(server: Server, body: Any, queue: bool = False) -> dict[str, Any]:
    now = server.clock.now()
    if isinstance(body, dict) and "events" in body:
        items = body["events"]
        if not isinstance(items, list):
            raise HttpError(422, "events: expected a list of events")
        for key in sorted(set(body) - {"events"}):
            raise HttpError(422, f"{key}: unknown field (a batch is {{\"events\": [...]}})")
        valid: list[Event] = []
        rejected: list[dict[str, Any]] = []
        for index, item in enumerate(items):
            try:
                valid.append(parse_event(item, now))
            except EventError as exc:
                rejected.append({"index": index, "error": str(exc)})
        server.counters.rejected += len(rejected)
    else:
        try:
            valid, rejected = [parse_event(body, now)], []
        except EventError as exc:
            server.counters.rejected += 1
            raise HttpError(422, str(exc)) from None
    results = (server.accept if queue else server.ingest)(valid, len(rejected)) if valid else []
    duplicates = sum(1 for r in results if r.duplicate)
    return {"accepted": len(results) - duplicates, "duplicates": duplicates, "rejected": rejected}


def _journey_summary(server: Server, journey_id: str) -> dict[str, Any]:
    journey = server.deploys.latest(journey_id)
    d = journey.definition
    deployed = server.deploys.view(journey_id)
    return {"id": d.id, "name": d.name, "category": d.category, "trigger": d.trigger.model_dump(mode="json"),
            "version": deployed["version"], "steps": len(d.steps), "source": journey.source,
            "state": deployed["state"], "active_instances": deployed["active_instances"],
            "versions": deployed["versions"]}


def _journey_detail(server: Server, journey_id: str) -> dict[str, Any]:
    if journey_id not in server.engine.journeys:  # removed: its state and the versions still running
        return server.deploys.view(journey_id)
    journey = server.engine.journeys[journey_id]
    graph = {"nodes": [{"id": n, "type": data["type"]} for n, data in journey.graph.nodes(data=True) if n != END],
             "edges": [{"from": a, "to": None if b == END else b, "label": data.get("label", "")}
                       for a, b, data in journey.graph.edges(data=True)]}
    return {**_journey_summary(server, journey_id), "definition": journey.definition.model_dump(mode="json"),
            "graph": graph, "counts": server.store.views.step_counts(journey_id)}


def _simulate(server: Server, journey_id: str, body: Any) -> dict[str, Any]:
    if journey_id not in server.engine.journeys:
        raise HttpError(404, f"no journey '{journey_id}'")
    journey = server.engine.journeys[journey_id]
    audience = journey.definition.trigger.kind != "event"  # events are optional: the runs enter people
    if not isinstance(body, dict) or not isinstance(body.get("events", [] if audience else None), list):
        raise HttpError(422, "events: expected {\"events\": [...], \"profiles\": [...]}")
    profiles = body.get("profiles", [])
    if not isinstance(profiles, list):
        raise HttpError(422, "profiles: expected a list of profiles")
    try:
        events = parse_events((f"events[{n}]", e) for n, e in enumerate(body.get("events", [])))
        start, until = (parse_time(body[k], k) if body.get(k) is not None else None for k in ("start", "until"))
        first = start or (events[0].timestamp if events else server.clock.now())
        people = parse_profiles(((f"profiles[{n}]", p) for n, p in enumerate(profiles)), first)
        return run_simulation(journey, events, people, server.engine.policy, start=start, until=until,
                              now=server.clock.now())
    except (InputError, EventError) as exc:
        raise HttpError(422, str(exc)) from None


