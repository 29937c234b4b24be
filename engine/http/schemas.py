"""The API's request and response bodies as pydantic models, for the OpenAPI document only.

Handlers never validate with these: they read bodies with the engine's own parsers
(`parse_event`, `Profile.from_dict`), so that a batch rejects its bad items one by one and every
error names its field exactly as the Python API does. These models describe the same shapes for
`/docs`, generated clients and the schemathesis run, which checks every answer against them;
keep them in step with the parsers and with the views (`engine.http.views`). Responses allow
members not listed (`extra="allow"`): clients should ignore what they do not know.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from engine.http.journey_schemas import (
    JourneyDetail,
    JourneyList,
    JourneyState,
    JourneySummary,
    ReloadReport,
    StateChange,
)
from engine.http.message_schemas import InstanceList, Message, MessageList, SkippedSend
from engine.http.run_schemas import Run, RunList

Channel = Literal["push", "in_app", "email", "sms", "mms", "rcs", "webhook"]
Category = Literal["marketing", "transactional"]


def _examples(*examples: dict[str, Any]) -> dict[str, Any]:
    return {"examples": list(examples)}


ORDER = {"id": "evt-1001", "type": "order.placed", "user_id": "u1", "timestamp": "2026-01-05T10:00:00Z",
         "properties": {"order_id": "o-1001", "total": 42.5}}


class _Out(BaseModel):
    model_config = ConfigDict(extra="allow")


# --- requests ---------------------------------------------------------------------------------


class EventIn(BaseModel):
    """One event (docs/formats.md)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_examples(ORDER))
    id: str | None = Field(None, min_length=1, description="idempotency key: an id seen before is a duplicate")
    type: str = Field(min_length=1, description="what happened, e.g. `order.placed`, `push.opened`")
    user_id: str = Field(min_length=1)
    timestamp: datetime | None = Field(None, description="RFC 3339 with an offset; default: when received")
    properties: dict[str, Any] | None = Field(None, description="any JSON object; numbers finite")


class EventBatch(BaseModel):
    """Many events in one transaction; each invalid item is listed in `rejected`, the rest go in."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_examples(
        {"events": [ORDER, {"type": "push.opened", "user_id": "u1"}]}))
    events: list[EventIn]


class ConsentIn(BaseModel):
    """One consent change; `at` defaults to now and `source` to `api`."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_examples(
        {"channel": "sms", "category": "marketing", "granted": True, "source": "checkout-form"}))
    channel: Channel
    category: Category
    granted: bool
    source: str | None = None
    at: datetime | None = None


class _ProfileFields(BaseModel):
    """What a profile holds besides its id and consents, in and out alike."""

    timezone: str | None = Field(None, description="IANA zone, e.g. `America/New_York`")
    email: str | None = Field(None, pattern=r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)*$", description="name@domain")
    phone: str | None = Field(None, description="E.164, e.g. `+14155550100`")
    push_token: str | None = None
    rcs_capable: bool = False
    attributes: dict[str, Any] = {}


class ProfileIn(_ProfileFields):
    """A profile; fields are replaced, consents are appended to the ledger (never rewritten)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_examples(
        {"timezone": "Europe/Paris", "email": "ada@example.com", "phone": "+33612345678", "push_token": "tok-1",
         "attributes": {"first_name": "Ada", "region": "FR"},
         "consents": [{"channel": "sms", "category": "marketing", "granted": True}]}))
    user_id: str | None = Field(None, description="if present, the same as in the path")
    consents: list[ConsentIn] = []


class ProfilePatch(BaseModel):
    """Changes to a stored profile: the fields given replace the stored ones (`null` clears one),
    `attributes` are merged key by key (a key given `null` is removed), consents are appended."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_examples(
        {"attributes": {"tier": "gold", "first_name": None}, "timezone": "Europe/Berlin"}))
    user_id: str | None = Field(None, description="if present, the same as in the path")
    timezone: str | None = Field(None, description="IANA zone, e.g. `America/New_York`")
    email: str | None = Field(None, pattern=r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)*$", description="name@domain")
    phone: str | None = Field(None, description="E.164, e.g. `+14155550100`")
    push_token: str | None = None
    rcs_capable: bool | None = None
    attributes: dict[str, Any] = Field({}, description="merged key by key; `null` removes a key")
    consents: list[ConsentIn] = []


class SimulatedEvent(EventIn):
    """An event of a dry run: its timestamp is required (the virtual clock follows the events)."""

    timestamp: datetime


class SimulatedProfile(ProfileIn):
    user_id: str = Field(min_length=1)


class SimulateRequest(BaseModel):
    """A dry run of one journey on a virtual clock: nothing is sent or stored."""

    model_config = ConfigDict(extra="allow", json_schema_extra=_examples(
        {"events": [ORDER], "profiles": [{"user_id": "u1", "push_token": "tok-1", "timezone": "UTC"}]}))
    events: list[SimulatedEvent] = Field(description="required, unless the journey is entered by audience runs")
    profiles: list[SimulatedProfile] = []
    start: datetime | None = Field(None, description="audience runs from this instant (see `journey simulate`)")
    until: datetime | None = Field(None, description="audience runs up to this instant (default: the first only)")


class TwilioForm(BaseModel):
    """Twilio's form (status callback or inbound message), signed with `X-Twilio-Signature`."""

    model_config = ConfigDict(extra="allow")
    MessageSid: str | None = None
    MessageStatus: str | None = None
    ErrorCode: str | None = None
    From: str | None = None
    To: str | None = None
    Body: str | None = None


# --- responses ---------------------------------------------------------------------------------


class FieldError(BaseModel):
    field: str = Field(description="the field at fault, as a path: `events[3].type`, `attributes.score`")
    message: str


class Problem(_Out):
    """RFC 9457 problem details: the body of every 4xx and 5xx (`application/problem+json`)."""

    model_config = ConfigDict(extra="allow", json_schema_extra=_examples(
        {"type": "about:blank", "title": "Unprocessable Content", "status": 422,
         "detail": "user_id: required field is missing", "errors": [
             {"field": "user_id", "message": "required field is missing"}],
         "error": "user_id: required field is missing"}))
    type: str = Field("about:blank", description="`about:blank`: `title` is the status's phrase")
    title: str
    status: int
    detail: str
    errors: list[FieldError] | None = Field(None, description="the fields at fault, when fields are at fault")
    error: str = Field(description="the same text as `detail`, for clients of the first release")


class BulkProfiles(BaseModel):
    """Up to 10,000 profiles, each upserted as PUT /v1/profiles/{user_id} does one."""

    model_config = ConfigDict(extra="forbid")
    profiles: list[SimulatedProfile] = Field(max_length=10_000)


class Rejected(BaseModel):
    index: int
    error: str = Field(description="`field: problem`")


class BatchResult(_Out):
    model_config = ConfigDict(extra="allow", json_schema_extra=_examples(
        {"accepted": 1, "duplicates": 0, "rejected": [{"index": 1, "error": "user_id: required field is missing"}]}))
    accepted: int
    duplicates: int
    rejected: list[Rejected]


class BulkResult(_Out):
    upserted: int
    rejected: list[Rejected]


class Consent(_Out):
    channel: str
    category: str
    granted: bool
    source: str | None = None
    at: str = Field(description="RFC 3339, UTC")


class Profile(_ProfileFields):
    model_config = ConfigDict(extra="allow")
    user_id: str
    consents: list[Consent] = Field(description="the whole ledger, oldest first")


class ConsentList(_Out):
    user_id: str
    consents: list[Consent] = Field(description="the whole ledger, oldest first")


class LedgerRow(Consent):
    user_id: str


class ConsentFeed(_Out):
    consents: list[LedgerRow]
    next_cursor: str | None = Field(description="pass back as `cursor`; null once there are no more")


class Suppression(_Out):
    number: str
    keyword: str
    at: str
    source: str | None = None


class Export(_Out):
    """Everything held about one person."""

    user_id: str
    profile: dict[str, Any] | None
    consents: list[Consent]
    suppressions: list[Suppression]
    messages: list[Message]
    skipped: list[SkippedSend]
    instances: list[dict[str, Any]]
    exported_at: str


class SimulationSummary(_Out):
    users: int
    entered: int
    completed: int
    exited: int
    converted: int
    active: int
    failed: int
    messages: dict[str, int]
    cost: float


class Simulation(_Out):
    """The simulate document (docs/cli.md)."""

    journey: str
    summary: SimulationSummary
    messages: list[dict[str, Any]]
    skipped: list[dict[str, Any]]
    instances: list[dict[str, Any]]
    timeline: list[dict[str, Any]]


class WebhookAck(_Out):
    accepted: int | None = None
    duplicates: int | None = None
    ignored: str | None = None


class Health(_Out):
    status: str = Field(description="`ok` (liveness) or `ready` (the database answers)")


MODELS: tuple[type[BaseModel], ...] = (
    EventIn, EventBatch, ConsentIn, ProfileIn, ProfilePatch, SimulatedEvent, SimulatedProfile, SimulateRequest,
    TwilioForm,
    BulkProfiles, BulkResult,
    Problem, BatchResult, Consent, Profile, ConsentList, LedgerRow, ConsentFeed, Message, SkippedSend, MessageList,
    InstanceList, Export, JourneyState, StateChange, JourneySummary, JourneyList, JourneyDetail, ReloadReport,
    Simulation, WebhookAck, Health, Run, RunList)
