"""Audience runs over HTTP: `POST /v1/journeys/{id}/runs` starts one now (202 with the run),
`GET /v1/journeys/{id}/runs` and `GET /v1/journeys/{id}/runs/{run_id}` show them. A journey
entered by events, or paused or stopped, takes no run: 409."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse

from engine.errors import JourneyNotFoundError
from engine.http.openapi import documented
from engine.http.routing import JsonRoute, ServerDep
from engine.http.run_schemas import Run, RunList

router = APIRouter(route_class=JsonRoute, tags=["runs"])
JourneyId = Annotated[str, Path(description="a journey's `id`", examples=["flash-sale"])]
RunId = Annotated[str, Path(description="a run's `run_id`, as POST answered it or GET lists it")]


@router.post("/v1/journeys/{journey_id}/runs", operation_id="startRun",
             **documented(Run, 404, 409, status=202, description="Started: worked in chunks from now on"))
def start_run(journey_id: JourneyId, server: ServerDep) -> JSONResponse:
    """An audience run of the journey now: every profile its audience matches is entered once,
    subject to re_entry. 409 for a journey entered by events, or paused or stopped."""
    run = server.start_run(journey_id)
    return JSONResponse(run.view(), status_code=202,
                        headers={"Location": f"/v1/journeys/{journey_id}/runs/{run.run_id}"})


@router.get("/v1/journeys/{journey_id}/runs", operation_id="listRuns", **documented(RunList, 404))
def list_runs(journey_id: JourneyId, server: ServerDep) -> dict[str, Any]:
    """The journey's runs, the latest scheduled first (at most 100)."""
    server.deploys.view(journey_id)  # 404 for a journey never loaded
    return {"runs": [run.view() for run in server.store.runs.runs_of(journey_id)]}


@router.get("/v1/journeys/{journey_id}/runs/{run_id}", operation_id="getRun", **documented(Run, 404))
def get_run(journey_id: JourneyId, run_id: RunId, server: ServerDep) -> dict[str, Any]:
    """Status, matched, entered, skipped by reason, started and finished times."""
    run = server.store.runs.get_run(run_id)
    if run is None or run.journey_id != journey_id:
        raise JourneyNotFoundError(f"journey '{journey_id}' has no run '{run_id}'")
    return run.view()
