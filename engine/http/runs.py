"""Audience runs over HTTP: `POST /v1/journeys/{id}/runs` starts one now (202 with the run),
`GET /v1/journeys/{id}/runs` and `GET /v1/journeys/{id}/runs/{run_id}` show them. A journey
entered by events, or paused or stopped, takes no run: 409."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Path
from fastapi.responses import JSONResponse

from engine.errors import JourneyNotFoundError
from engine.host.server import Server
from engine.http.openapi import documented
from engine.http.run_schemas import Run, RunList

JOURNEY_ID = Path(description="a journey's `id`", examples=["flash-sale"])
RUN_ID = Path(description="a run's `run_id`, as POST answered it or GET lists it")


def add_run_routes(app: FastAPI, server: Server) -> None:
    @app.post("/v1/journeys/{journey_id}/runs", **documented(Run, 404, 409, status=202,
                                                              description="Started: worked in chunks from now on"))
    def start_run(journey_id: str = JOURNEY_ID) -> JSONResponse:
        """An audience run of the journey now: every profile its audience matches is entered once,
        subject to re_entry. 409 for a journey entered by events, or paused or stopped."""
        run = server.start_run(journey_id)
        return JSONResponse(run.view(), status_code=202,
                            headers={"Location": f"/v1/journeys/{journey_id}/runs/{run.run_id}"})

    @app.get("/v1/journeys/{journey_id}/runs", **documented(RunList, 404))
    def list_runs(journey_id: str = JOURNEY_ID) -> dict[str, Any]:
        """The journey's runs, the latest scheduled first (at most 100)."""
        server.deploys.view(journey_id)  # 404 for a journey never loaded
        return {"runs": [run.view() for run in server.store.runs.runs_of(journey_id)]}

    @app.get("/v1/journeys/{journey_id}/runs/{run_id}", **documented(Run, 404))
    def get_run(journey_id: str = JOURNEY_ID, run_id: str = RUN_ID) -> dict[str, Any]:
        """Status, matched, entered, skipped by reason, started and finished times."""
        run = server.store.runs.get_run(run_id)
        if run is None or run.journey_id != journey_id:
            raise JourneyNotFoundError(f"journey '{journey_id}' has no run '{run_id}'")
        return run.view()
