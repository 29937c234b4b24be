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


class ReloadReport(_Out):
    added: list[str]
    changed: list[str]
    unchanged: list[str]
    removed: list[str]


__all__ = ["Graph", "GraphEdge", "GraphNode", "JourneyDetail", "JourneyList", "JourneyState",
           "JourneySummary", "ReloadReport", "StateChange", "VersionView"]
