"""The API's request bodies as pydantic models, for the OpenAPI document only (see
`engine.http.schemas`, which holds the answers and lists every model for the document).

Each says what the engine's own parser takes, as JSON Schema can: a timestamp's year range as a
pattern, the IANA zones as an enum, a phone number as `format: e164`, a batch's items as anything
(an item that is not an event or a profile is listed in `rejected`; the batch is not refused).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from channels.profile import EMAIL_PATTERN as EMAIL
from channels.profile import time_zones

IN_RANGE = r"^(19[7-9][0-9]|20[0-9][0-9])-"
"""A timestamp's year, 1970 to 2099: the range every stored time is held to (the pattern says what
`format: date-time` cannot)."""
TEXT = r"^[^\x00]*$"  # no NUL character: PostgreSQL cannot store one
SOME_TEXT = r"^[^\x00]+$"
A_NAME = r"^[^\x00]*[^\s\x00][^\x00]*$"  # not blank either
Channel = Literal["push", "in_app", "email", "sms", "mms", "rcs", "webhook"]
Category = Literal["marketing", "transactional"]


def examples(*cases: dict[str, Any]) -> dict[str, Any]:
    return {"examples": list(cases)}


ORDER = {"id": "evt-1001", "type": "order.placed", "user_id": "u1", "timestamp": "2026-01-05T10:00:00Z",
         "properties": {"order_id": "o-1001", "total": 42.5}}


class EventIn(BaseModel):
    """One event (docs/formats.md)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=examples(ORDER))
    id: str | None = Field(None, pattern=SOME_TEXT, description="idempotency key: an id seen before is a duplicate")
    type: str = Field(pattern=A_NAME, description="what happened, e.g. `order.placed`, `push.opened`")
    user_id: str = Field(pattern=A_NAME)
    timestamp: datetime | None = Field(None, description="RFC 3339 with an offset, 1970 to 2099; default: when "
                                       "received", json_schema_extra={"pattern": IN_RANGE})
    properties: dict[str, Any] | None = Field(None, description="any JSON object; numbers finite")


class EventBatch(BaseModel):
    """Many events in one transaction; each invalid item is listed in `rejected`, the rest go in."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=examples(
        {"events": [ORDER, {"type": "push.opened", "user_id": "u1"}]}))
    events: list[Any] = Field(description="events (`EventIn`); an item that is not one is listed in `rejected`",
                              json_schema_extra={"items": {"anyOf": [{"$ref": "#/components/schemas/EventIn"}, {}]}})


class ConsentIn(BaseModel):
    """One consent change; `at` defaults to now and `source` to `api`."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=examples(
        {"channel": "sms", "category": "marketing", "granted": True, "source": "checkout-form"}))
    channel: Channel
    category: Category
    granted: bool
    source: str | None = Field(None, pattern=TEXT)
    at: datetime | None = Field(None, description="RFC 3339 with an offset, 1970 to 2099; null or left out: when "
                                "received", json_schema_extra={"pattern": IN_RANGE})


TimeZone = Annotated[str, WithJsonSchema({"type": "string", "enum": sorted(time_zones())})]
Phone = Annotated[str, WithJsonSchema({"type": "string", "format": "e164", "pattern": r"^\+[1-9][0-9]{1,14}$",
                                       "examples": ["+14155550100"]})]
"""A valid phone number in E.164 (`format: e164`: the pattern says its shape; its country and number
plan decide the rest, as libphonenumber does)."""


Hours = Annotated[dict[str, int], WithJsonSchema({
    "type": "object", "propertyNames": {"pattern": r"^([0-9]|1[0-9]|2[0-3])$"},
    "additionalProperties": {"type": "integer", "minimum": 0}, "examples": [{"19": 12, "8": 2}]})]


class RecentEngagement(BaseModel):
    """The sent and engaged counts decayed to `as_of`: each message counts half as much every
    half-life (the policy's `auto.half_life`) since it went."""

    model_config = ConfigDict(extra="forbid")
    sent: float = Field(ge=0)
    engaged: float = Field(ge=0)
    as_of: datetime | None = Field(None, description="RFC 3339 with an offset, 1970 to 2099; null: the next "
                                   "event counted", json_schema_extra={"pattern": IN_RANGE})


class ChannelEngagement(BaseModel):
    """A person's engagement on one channel (docs/formats.md): messages sent, delivered, failed and
    engaged with (once each), the last engagement, engagements by local hour of day."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=examples({"sent": 20, "engaged": 18}))
    sent: int = Field(0, ge=0)
    delivered: int = Field(0, ge=0)
    failed: int = Field(0, ge=0)
    engaged: int = Field(0, ge=0)
    last_engaged_at: datetime | None = Field(None, description="RFC 3339 with an offset, 1970 to 2099",
                                             json_schema_extra={"pattern": IN_RANGE})
    by_hour: Hours = Field({}, description="engagements by the person's local hour, \"0\" to \"23\"")
    recent: RecentEngagement | None = Field(None, description="left out: the counts themselves")


Engagement = dict[Channel, ChannelEngagement]
ENGAGEMENT = ("per channel, as the engine counts it; given, it replaces the stored counts of the channels it "
              "names (history from another tool), the others stay; left out or null, every count stays")


class ProfileFields(BaseModel):
    """What a profile holds besides its id and consents, in and out alike."""

    timezone: TimeZone | None = Field(None, description="IANA zone, e.g. `America/New_York`")
    email: str | None = Field(None, pattern=EMAIL, description="name@domain")
    phone: Phone | None = Field(None, description="a valid number in E.164, e.g. `+14155550100`")
    push_token: str | None = Field(None, pattern=TEXT)
    rcs_capable: bool = False
    attributes: dict[str, Any] = {}
    engagement: Engagement | None = Field(None, description=ENGAGEMENT)


class ProfileIn(ProfileFields):
    """A profile; fields are replaced, consents are appended to the ledger (never rewritten)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=examples(
        {"timezone": "Europe/Paris", "email": "ada@example.com", "phone": "+33612345678", "push_token": "tok-1",
         "attributes": {"first_name": "Ada", "region": "FR"},
         "consents": [{"channel": "sms", "category": "marketing", "granted": True}]}))
    user_id: str | None = Field(None, description="if present, the same as in the path (another is a 409)")
    consents: list[ConsentIn] = []


class ProfilePatch(BaseModel):
    """Changes to a stored profile: the fields given replace the stored ones (`null` clears one),
    `attributes` are merged key by key (a key given `null` is removed), consents are appended."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=examples(
        {"attributes": {"tier": "gold", "first_name": None}, "timezone": "Europe/Berlin"}))
    user_id: str | None = Field(None, description="if present, the same as in the path (another is a 409)")
    timezone: TimeZone | None = Field(None, description="IANA zone, e.g. `America/New_York`")
    email: str | None = Field(None, pattern=EMAIL, description="name@domain")
    phone: Phone | None = Field(None, description="a valid number in E.164, e.g. `+14155550100`")
    push_token: str | None = Field(None, pattern=TEXT)
    rcs_capable: bool | None = Field(None, description="`null`: false")
    attributes: dict[str, Any] = Field({}, description="merged key by key; `null` removes a key")
    consents: list[ConsentIn] = []
    engagement: Engagement | None = Field(None, description=ENGAGEMENT)


class SimulatedEvent(EventIn):
    """An event of a dry run: its timestamp is required (the virtual clock follows the events)."""

    timestamp: datetime = Field(description="RFC 3339 with an offset, 1970 to 2099",
                                json_schema_extra={"pattern": IN_RANGE})


class SimulatedProfile(ProfileIn):
    user_id: str = Field(pattern=SOME_TEXT)


class SimulateRequest(BaseModel):
    """A dry run of one journey on a virtual clock: nothing is sent or stored."""

    model_config = ConfigDict(extra="allow", json_schema_extra=examples(
        {"events": [ORDER], "profiles": [{"user_id": "u1", "push_token": "tok-1", "timezone": "UTC"}]}))
    events: list[SimulatedEvent] = Field(description="required, unless the journey is entered by audience runs")
    profiles: list[SimulatedProfile] = []
    start: datetime | None = Field(None, description="audience runs from this instant (see `journey simulate`)",
                                   json_schema_extra={"pattern": IN_RANGE})
    until: datetime | None = Field(None, description="audience runs up to this instant (default: the first only)",
                                   json_schema_extra={"pattern": IN_RANGE})


class TwilioForm(BaseModel):
    """Twilio's form (status callback or inbound message), signed with `X-Twilio-Signature`."""

    model_config = ConfigDict(extra="allow")
    MessageSid: str | None = None
    MessageStatus: str | None = None
    ErrorCode: str | None = Field(None, pattern=r"^[0-9]{0,9}$", description="Twilio's error code, a number")
    From: str | None = None
    To: str | None = None
    Body: str | None = None


class BulkProfiles(BaseModel):
    """Up to 10,000 profiles, each upserted as PUT /v1/profiles/{user_id} does one."""

    model_config = ConfigDict(extra="forbid")
    profiles: list[Any] = Field(max_length=10_000, description="profiles (`SimulatedProfile`); an item that is not "
                                "one is listed in `rejected`", json_schema_extra={
                                    "items": {"anyOf": [{"$ref": "#/components/schemas/SimulatedProfile"}, {}]}})
