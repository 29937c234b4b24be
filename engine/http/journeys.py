"""The journey routes: list and read the loaded journeys (definition, graph, instances per step),
reload the folder, pause, resume and stop one, and dry-run one on a virtual clock (`simulate`:
nothing sent, nothing stored). A removed journey whose instances still run is listed with state
`removed`. (Its audience runs: `engine.http.runs`.)"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple, TypeVar

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from channels import Profile
from engine.compiler import END, CompiledJourney
from engine.errors import HttpError, InputError, JourneyDefinitionError
from engine.events import Event
from engine.forecast.population import Population
from engine.forecast.runner import Options, Version, forecast
from engine.host.cancel import cancel_instances
from engine.host.server import Server
from engine.http.bodies import CancelRequest, ForecastRequest, PreviewRequest, SimulateRequest, parse
from engine.http.graph_layout import journey_graph
from engine.http.journey_schemas import (
    CancelledInstances,
    Forecast,
    JourneyDetail,
    JourneyList,
    JourneyState,
    PlacedGraph,
    Preview,
    ReloadReport,
    StateChange,
)
from engine.http.openapi import documented, parsed_body
from engine.http.problems import problem
from engine.http.profiles import stored_profile
from engine.http.routing import JourneyId, JsonRoute, ServerDep
from engine.http.schemas import Simulation
from engine.http.views import instance_view
from engine.simulator import preview, simulate

Dry = TypeVar("Dry", SimulateRequest, ForecastRequest)
router = APIRouter(route_class=JsonRoute, tags=["journeys"])


@router.get("/v1/journeys", operation_id="listJourneys", **documented(JourneyList))
def list_journeys(server: ServerDep) -> dict[str, Any]:
    """Every loaded journey, then every removed one whose instances still run (`state` removed,
    `version` null, its last version's name and trigger)."""
    ids = [*server.engine.journeys, *server.deploys.removed_in_flight()]
    return {"journeys": [_summary(server, j) for j in ids]}


@router.get("/v1/journeys/{journey_id}", operation_id="getJourney",
            **documented(JourneyDetail | JourneyState, 404))
def get_journey(journey_id: JourneyId, server: ServerDep) -> dict[str, Any]:
    """Definition, graph and instances per step; for a removed journey, its state and versions."""
    if journey_id not in server.engine.journeys:  # removed: its state and the versions still running
        return server.deploys.view(journey_id)
    journey = server.engine.journeys[journey_id]
    graph = {"nodes": [{"id": n, "type": data["type"]} for n, data in journey.graph.nodes(data=True) if n != END],
             "edges": [{"from": a, "to": None if b == END else b, "label": data.get("label", "")}
                       for a, b, data in journey.graph.edges(data=True)]}
    return {**_summary(server, journey_id), "definition": journey.definition.model_dump(mode="json"),
            "graph": graph, "counts": server.store.views.step_counts(journey_id)}


@router.get("/v1/journeys/{journey_id}/graph", operation_id="getJourneyGraph", **documented(PlacedGraph, 404))
def get_journey_graph(journey_id: JourneyId, server: ServerDep) -> dict[str, Any]:
    """The journey's graph laid out for drawing (the console's): each node with its place, the
    trigger and the end included; for a removed journey, its last version's."""
    return journey_graph(server.deploys.latest(journey_id))


@router.post("/v1/journeys/reload", operation_id="reloadJourneys", **documented(ReloadReport, 422))
def reload_journeys(server: ServerDep) -> JSONResponse:
    """Load the journeys folder again: which journeys were added, changed, unchanged, removed.
    If any file is bad nothing changes, and the answer is a 422 listing every problem."""
    try:
        report = server.reload()
    except JourneyDefinitionError as exc:
        problems = [str(p) for p in exc.problems]
        return problem(422, "; ".join(problems), errors=[], problems=problems)
    return JSONResponse(report.to_dict())


@router.post("/v1/journeys/{journey_id}/pause", operation_id="pauseJourney", **documented(StateChange, 404))
def pause_journey(journey_id: JourneyId, server: ServerDep) -> dict[str, Any]:
    """No new entries; in-flight instances go on. Survives a restart."""
    return server.deploys.change_state(journey_id, "pause")


@router.post("/v1/journeys/{journey_id}/resume", operation_id="resumeJourney", **documented(StateChange, 404))
def resume_journey(journey_id: JourneyId, server: ServerDep) -> dict[str, Any]:
    """New entries again, after a pause or a stop."""
    return server.deploys.change_state(journey_id, "resume")


@router.post("/v1/journeys/{journey_id}/stop", operation_id="stopJourney", **documented(StateChange, 404))
def stop_journey(journey_id: JourneyId, server: ServerDep) -> dict[str, Any]:
    """No new entries, and every in-flight instance ends as `exited` (reason `journey_stopped`),
    its timers cancelled, its unsent messages kept back."""
    return server.deploys.change_state(journey_id, "stop")


@router.post("/v1/journeys/{journey_id}/instances/cancel", operation_id="cancelInstances",
             **documented(CancelledInstances, 404))
def cancel_journey_instances(journey_id: JourneyId, body: CancelRequest, server: ServerDep) -> dict[str, Any]:
    """End the user's active instances of the journey with this instance key (or all of them):
    status `exited`, reason `cancelled_by_api`; no later step runs and their unsent messages are
    cancelled. Idempotent: a repeat ends nothing more and answers the same."""
    cancelled = cancel_instances(server, journey_id, body.user_id, body.key)
    return {"journey_id": journey_id, "user_id": body.user_id, "key": body.key,
            "instances": [instance_view(i) for i in cancelled.instances]}


@router.post("/v1/journeys/{journey_id}/simulate", operation_id="simulateJourney",
             openapi_extra=parsed_body(SimulateRequest), **documented(Simulation, 404))
async def simulate_journey(journey_id: JourneyId, request: Request, server: ServerDep) -> dict[str, Any]:
    """A dry run on a virtual clock: no provider called, nothing stored."""
    body = await request.json()
    return await run_in_threadpool(_simulate, server, journey_id, body)


class _DryRun(NamedTuple):
    journey: CompiledJourney
    events: list[Event]
    people: list[Profile]
    now: datetime


def _dry_run(server: Server, journey_id: str, body: Any, model: type[Dry]) -> tuple[_DryRun, Dry]:
    """The journey, then the body parsed (one entered by audience runs needs no events): its
    events in time order and its people, their consents without `at` as of the run's start."""
    if journey_id not in server.engine.journeys:
        raise HttpError(404, f"no journey '{journey_id}'")
    journey = server.engine.journeys[journey_id]
    if journey.definition.trigger.kind != "event" and isinstance(body, dict):
        body = {"events": [], **body}
    asked = parse(model, body)
    now = server.clock.now()
    events = sorted((event.to_event(now) for event in asked.events), key=lambda event: event.timestamp)
    first = getattr(asked, "start", None) or (events[0].timestamp if events else now)
    people = [profile.as_profile(first, source="simulation") for profile in asked.profiles]
    return _DryRun(journey, events, people, now), asked


def _simulate(server: Server, journey_id: str, body: Any) -> dict[str, Any]:
    run, dry_run = _dry_run(server, journey_id, body, SimulateRequest)
    return simulate(run.journey, run.events, run.people, server.engine.policy, start=dry_run.start,
                    until=dry_run.until, now=run.now)


@router.post("/v1/journeys/{journey_id}/forecast", operation_id="forecastJourney",
             openapi_extra=parsed_body(ForecastRequest), **documented(Forecast, 404))
async def forecast_journey(journey_id: JourneyId, request: Request, server: ServerDep) -> dict[str, Any]:
    """What the journey would send, cost and reach over these people: each message's outcome
    (delivered, failed, engaged with and when) drawn from the reach model, `runs` times, through
    the same evaluator on a virtual clock; nothing is sent or stored. The same document as
    `journey forecast --json`."""
    body = await request.json()
    return await run_in_threadpool(_forecast, server, journey_id, body)


def _forecast(server: Server, journey_id: str, body: Any) -> dict[str, Any]:
    run, asked = _dry_run(server, journey_id, body, ForecastRequest)
    options = Options(runs=asked.runs, seed=asked.seed, by=asked.by, now=run.now)
    try:
        return forecast([Version(run.journey, server.engine.policy)], Population(run.people, run.events), options)
    except InputError as exc:
        raise HttpError(422, str(exc)) from None


@router.post("/v1/journeys/{journey_id}/messages/{message}/preview", operation_id="previewMessage",
             **documented(Preview, 404))
def preview_message(journey_id: JourneyId, message: str, body: PreviewRequest, server: ServerDep) -> dict[str, Any]:
    """One message rendered for one person, per channel, as a send now would render it: the variant
    their locale picks, SMS encoding, segments and cost, and whether each channel could be used.
    Nothing is sent or stored."""
    if journey_id not in server.engine.journeys:
        raise HttpError(404, f"no journey '{journey_id}'")
    journey = server.engine.journeys[journey_id]
    now = server.clock.now()
    person = body.profile.as_profile(now) if body.profile is not None else stored_profile(server, body.user_id or "")
    event = body.to_event(journey.definition.trigger.event or "journey.run", person.user_id, now)
    return preview(journey, message, person, event, server.engine.policy, now, body.channels)


def _summary(server: Server, journey_id: str) -> dict[str, Any]:
    journey = server.deploys.latest(journey_id)
    d = journey.definition
    deployed = server.deploys.view(journey_id)
    return {"id": d.id, "name": d.name, "category": d.category, "trigger": d.trigger.model_dump(mode="json"),
            "version": deployed["version"], "steps": len(d.steps), "source": journey.source,
            "state": deployed["state"], "active_instances": deployed["active_instances"],
            "versions": deployed["versions"]}
