"""`GET /v1/journeys/{journey_id}/stats`: a journey's funnel, per step, channel and split branch,
read from the counters the engine keeps as it runs (engine.stats), never from the instances or
messages themselves, so it answers as fast with a million instances as with ten.

`since` and `until` pick instances by their time of entry, in whole hours (the counters' buckets):
`since` is taken down to its hour and `until` up to the next, and the answer says which hours it
read. `version` is a version's number as `GET /v1/journeys/{id}` lists them, oldest first, from 1.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from engine.compiler import END
from engine.errors import HttpError
from engine.events import format_time
from engine.host.server import Server
from engine.http.fields import IN_RANGE, query_instant
from engine.http.journey_schemas import JourneyStats
from engine.http.openapi import documented
from engine.http.routing import JourneyId, JsonRoute, ServerDep
from engine.stats import bounds, document, hour_start

router = APIRouter(route_class=JsonRoute, tags=["journeys"])
Instant = Annotated[str | None, Query(description="RFC 3339 (UTC): instances entered at or after `since`, before "
                                      "`until`, in whole hours", examples=["2026-01-05T00:00:00Z"],
                                      pattern=IN_RANGE, json_schema_extra={"format": "date-time"})]
Version = Annotated[int | None, Query(ge=1, description="a version's number, as the journey lists them oldest "
                                      "first, from 1; default: every version")]


@router.get("/v1/journeys/{journey_id}/stats", operation_id="getJourneyStats", **documented(JourneyStats, 404))
def journey_stats(journey_id: JourneyId, server: ServerDep, since: Instant = None, until: Instant = None,
                  version: Version = None) -> dict[str, Any]:
    """Instances entered, by status and per step (entered, waiting, left by each edge), conversions
    (a goal reached within `goal.within` of entry counts even after the instance ended), messages
    per channel by status, skips by reason, engagement and cost, and the same per split branch."""
    server.deploys.known(journey_id)
    # An empty window (until at or before since) holds no hour: an empty funnel, as the messages'
    # filters answer an empty page, not an error (both are valid instants).
    low, high = bounds(query_instant(since, "since"), query_instant(until, "until"))
    chosen = _version(server, journey_id, version)
    rows = server.store.views.journey_counts(journey_id, chosen, low, high)
    doc = document(journey_id, rows, version, _shown(low), _shown(high), _steps(server, journey_id, chosen))
    return doc


def _shown(hour: str | None) -> str | None:
    return format_time(hour_start(hour)) if hour is not None else None


def _version(server: Server, journey_id: str, number: int | None) -> str | None:
    if number is None:
        return None
    versions = server.store.journeys.journey_versions(journey_id)
    if number > len(versions):
        raise HttpError(404, f"version: journey '{journey_id}' has {len(versions)} version"
                             f"{'' if len(versions) == 1 else 's'}")
    return versions[number - 1].version


def _steps(server: Server, journey_id: str, version: str | None) -> list[str]:
    """The steps of the version asked for (else the latest), in the graph's order."""
    journey = server.deploys.latest(journey_id) if version is None else \
        server.engine.journey_version(journey_id, version)
    return [n for n in journey.graph.nodes if n != END]
