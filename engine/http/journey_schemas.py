"""The answers of the journey routes (engine/http/journeys.py): state, versions, definition and
graph, reload reports. Documented, not validated, like engine/http/schemas.py's."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Out(BaseModel):
    model_config = ConfigDict(extra="allow")


class PreviewedChannel(_Out):
    channel: str
    locale: str | None = Field(description="the message's variant it was rendered from; null: its default content")
    content: dict[str, Any] | None = Field(description="as a send would hand it to a provider; null: it failed")
    error: str | None = Field(description="why its template failed to render")
    encoding: str | None = Field(description="SMS: GSM-7 or UCS-2")
    segments: int | None = Field(description="SMS: what providers bill")
    cost: float = Field(description="at the policy's prices (SMS: per segment)")
    eligible: bool = Field(description="whether it could be sent to this person now")
    reason: str | None = Field(description="why not: no_consent, opted_out, preference_off, no_address...")


class Preview(_Out):
    """A message rendered for one person, per channel; nothing was sent or stored."""

    journey: str
    version: str
    message: str
    user_id: str
    locale: str = Field(description="the reader's locale: the profile's, else the policy's default_locale")
    timezone: str
    channels: list[PreviewedChannel]


class VersionView(_Out):
    version: str
    file: str | None = None
    first_loaded_at: str
    active_instances: int
    current: bool


class JourneyState(_Out):
    """A journey's lifecycle state and its versions (a removed journey: `state` removed, `version` null)."""

    id: str
    state: str = Field(description="active, paused, stopped or removed")
    version: str | None
    active_instances: int
    versions: list[VersionView]


class StateChange(JourneyState):
    instances_ended: int
    messages_cancelled: int


class CancelledInstances(_Out):
    """The user's instances of the journey (with the key, if given) ended by the cancel route, by
    this request or an earlier one: a repeat answers the same."""

    journey_id: str
    user_id: str
    key: str | None
    instances: list[dict[str, Any]] = Field(description="each as `GET /v1/users/{user_id}/instances` shows it: "
                                            "status exited, reason cancelled_by_api")


class JourneySummary(JourneyState):
    name: str | None = Field(description="the file's `name`; null when it has none")
    category: str
    trigger: dict[str, Any]
    steps: int
    source: str | None = None


class JourneyList(_Out):
    journeys: list[JourneySummary]


class GraphNode(_Out):
    id: str
    type: str


class GraphEdge(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)
    source: str = Field(alias="from")
    to: str | None
    label: str


class Graph(_Out):
    nodes: list[GraphNode]
    edges: list[GraphEdge]


class JourneyDetail(JourneySummary):
    definition: dict[str, Any]
    graph: Graph
    counts: dict[str, dict[str, int]] = Field(description="instances per current step, then per status")


class PlacedNode(_Out):
    id: str = Field(description="a step's id, `(start)` for the trigger, `(end)` for completion")
    kind: str = Field(description="the step's type (send, wait, branch...), `start` or `end`")
    label: str = Field(description="what the node says under its id: the trigger's event, a send's message")
    x: int = Field(description="the centre of the node, in pixels from the left")
    y: int = Field(description="the centre of the node, in pixels from the top")


class PlacedEdge(GraphEdge):
    to: str = Field(description="never null here: `(end)` is drawn")


class PlacedGraph(_Out):
    """A journey's graph laid out for drawing: the console draws it as SVG with the stats' counts."""

    journey: str
    version: str
    nodes: list[PlacedNode]
    edges: list[PlacedEdge]
    width: int = Field(description="the drawing's width in pixels")
    height: int = Field(description="the drawing's height in pixels")


class ReloadReport(_Out):
    added: list[str]
    changed: list[str]
    unchanged: list[str]
    removed: list[str]


__all__ = ["Graph", "GraphEdge", "GraphNode", "JourneyDetail", "JourneyList", "JourneyState",
           "JourneySummary", "PlacedEdge", "PlacedGraph", "PlacedNode", "ReloadReport", "StateChange", "VersionView"]


class InstanceCounts(_Out):
    """Instances by status: `active` have not ended; `cancelled` were ended from outside (the cancel
    route, a stop, an erasure)."""

    active: int
    completed: int
    exited: int
    converted: int
    failed: int
    cancelled: int


class StepCounts(_Out):
    entered: int = Field(description="instances that came to this step (once each time)")
    waiting: int = Field(description="instances at rest in it now (a wait, a wait_for, an escalation...)")
    left: dict[str, int] = Field(description="instances that went on to each next step, by its id")


class ChannelCounts(_Out):
    messages: dict[str, int] = Field(description="messages by status: queued, sent, delivered, failed, cancelled "
                                     "(and unknown: in doubt); each message in one")
    skipped: dict[str, int] = Field(description="candidates refused on sends, by reason (no_consent, "
                                    "frequency_cap...)")
    engagement: dict[str, int] = Field(description="messages by what people did: opened, clicked, read, replied...")
    cost: float


class BranchStats(_Out):
    entered: int
    instances: InstanceCounts
    conversions: int
    channels: dict[str, ChannelCounts]


class JourneyStats(_Out):
    """A journey's funnel from the counters kept as it runs: instances picked by their hour of entry."""

    journey: str
    version: int | None = Field(description="the version's number asked for; null: every version")
    since: str | None = Field(description="the first hour of entry counted (since, taken down to its hour)")
    until: str | None = Field(description="the end of the last hour counted (until, taken up to the hour)")
    entered: int
    instances: InstanceCounts
    conversions: int = Field(description="goals reached within goal.within of entry, ended instances included")
    steps: dict[str, StepCounts]
    channels: dict[str, ChannelCounts]
    paths: dict[str, dict[str, BranchStats]] = Field(description="per split step, per branch (its next step)")


class Interval(_Out):
    """A figure over the runs: its mean and its 90% interval (5th and 95th percentile of the run totals)."""

    mean: float
    p5: float
    p95: float


class ChannelForecast(_Out):
    messages: Interval
    cost: Interval
    reached: Interval = Field(description="people who engaged with a message on the channel")


class TimeToEngagement(_Out):
    p50: float | None = Field(description="seconds from a person's first event to their first engagement")
    p90: float | None


class Forecast(_Out):
    """What the journey would send, cost and reach over these people (docs/cli.md, `journey forecast --json`)."""

    journey: str
    profiles: int
    runs: int
    seed: int
    channels: dict[str, ChannelForecast]
    cost: Interval
    reached: Interval = Field(description="people who engaged on any channel")
    never_reached: Interval
    cost_per_reached: float | None
    skipped: dict[str, Interval] = Field(description="sends that sent nothing, by reason")
    deferred_quiet_hours: Interval
    entered: Interval
    ended: dict[str, Interval] = Field(description="instances by how they ended")
    time_to_engagement: TimeToEngagement
    evaluated_paths: int = Field(description="paths evaluated; alike people who draw alike share one")
    segments: dict[str, Any] | None = Field(None, description="with `by`: the same figures per value")
