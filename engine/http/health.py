"""What an orchestrator and a scraper ask: `/healthz` (liveness: is a turn of the engine stuck?),
`/readyz` (readiness: does the database answer?) and `/metrics` (Prometheus, `engine.http.metrics`).
The first two take no key; `/metrics` neither when `JOURNEY_METRICS_PUBLIC=1`."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from engine.errors import StoreError
from engine.http.metrics import Metrics
from engine.http.openapi import documented
from engine.http.problems import problem, unavailable
from engine.http.routing import JsonRoute, ServerDep
from engine.http.schemas import Health

router = APIRouter(route_class=JsonRoute)


@router.get("/healthz", operation_id="checkLiveness", tags=["health"], **documented(Health))
def healthz(server: ServerDep) -> JSONResponse:
    """Liveness: 503 only while one turn of the engine has held it longer than the limit
    (`JOURNEY_STUCK_TURN_SECONDS`, 10 s; `turn` says which thread, for how long), the state a
    restart mends. Nothing about the database: that is `/readyz`, and an outage is not mended
    by a restart. Sweeps that keep failing show in /metrics (`journey_sweep_failing`)."""
    overdue = server.lock.overdue(server.stuck_turn)
    if overdue is not None:
        return problem(503, str(overdue), errors=[], turn=overdue.to_dict())
    return JSONResponse({"status": "ok"})


@router.get("/readyz", operation_id="checkReadiness", tags=["health"], **documented(Health))
def readyz(server: ServerDep) -> JSONResponse:
    """Ready to serve: the database answers (503 while it does not). `/healthz` is liveness only."""
    try:
        server.store.ping()
    except StoreError as exc:
        server.outage.failed(exc)
        return unavailable(f"the database is unavailable: {exc}")
    server.outage.recovered()
    return JSONResponse({"status": "ready"})


@router.get("/metrics", operation_id="getMetrics", tags=["metrics"], response_class=PlainTextResponse,
            **documented())
def prometheus(request: Request) -> Response:
    """Prometheus text format. Open without a key when `JOURNEY_METRICS_PUBLIC=1`."""
    metrics: Metrics = request.app.state.metrics
    return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)
