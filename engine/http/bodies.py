"""The API's request bodies: pydantic models that parse each body and describe it in the OpenAPI
document, one source for both. Their fields are the types of `engine.http.fields`, which apply the
engine's own rules, and each model turns itself into the engine's values (`Event`, `Profile`).

Most routes declare their model as the body parameter and FastAPI parses with it. The batches
(`POST /v1/events` with `{"events": [...]}`, `POST /v1/profiles`) take their items as anything and
parse each one with its model, so that a bad item is listed in `rejected` and the rest go in; a
dry run parses its body once it knows whether the journey needs events.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from types import MappingProxyType
from typing import Annotated, Any, ClassVar, TypeVar

from fastapi.exceptions import RequestValidationError
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from channels import ConsentRecord, Profile
from channels.engagement import ChannelEngagement, Engagement, hours_problem
from channels.preferences import MAX_ENTRIES, Preferences
from channels.profile import RcsCapability
from engine.events import Event
from engine.forecast.runner import DEFAULT_RUNS, MOST_RUNS
from engine.host.profiles import MAX_BATCH, merged
from engine.http.fields import (
    Category,
    Channel,
    Count,
    Email,
    EventId,
    JsonObject,
    Locale,
    Name,
    Phone,
    SomeText,
    Text,
    Timestamp,
    TimeZone,
    refused,
)
from engine.http.problems import describe, validation_errors

REF = "#/components/schemas/{model}"
LOCALE = ("BCP 47, as CLDR spells it, e.g. `fr-CA`: picks the message's variant and formats dates, numbers and "
          "currencies (default: the policy's `default_locale`)")
M = TypeVar("M", bound=BaseModel)


def parse(model: type[M], data: Any) -> M:
    """`data` parsed with `model`; otherwise a 422 naming every field at fault, as FastAPI answers
    for a body it parses itself."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError([{**error, "loc": ("body", *error["loc"])}
                                      for error in exc.errors(include_url=False)]) from None


def parse_each(model: type[M], items: Iterable[Any], item: str) -> tuple[list[M], list[dict[str, Any]]]:
    """The items `model` parses, and the others as `rejected`: `{index, error}`, the error naming
    the fields at fault within the item (or `item`, when it is not an object at all)."""
    parsed: list[M] = []
    rejected: list[dict[str, Any]] = []
    for index, data in enumerate(items):
        try:
            parsed.append(model.model_validate(data))
        except ValidationError as exc:
            rejected.append({"index": index, "error": describe(validation_errors(exc.errors(), item))})
    return parsed, rejected


def examples(*cases: dict[str, Any]) -> dict[str, Any]:
    return {"examples": list(cases)}


class Body(BaseModel):
    """A request body: a JSON object of JSON's own types (`granted: 0` is no boolean), and, unless it
    allows more, of the members it lists (an unknown one is named, with what the body holds)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    holds: ClassVar[str] = ""
    """What the body holds, for the error naming a member it does not (default: its members)."""
    members: ClassVar[frozenset[str] | None] = None  # None: it allows more

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        cls.members = frozenset(cls.model_fields) if cls.model_config.get("extra") == "forbid" else None

    @model_validator(mode="before")
    @classmethod
    def _known_members(cls, data: Any) -> Any:
        if isinstance(data, bytes):  # FastAPI parses only a body sent as JSON
            raise refused("expected a JSON object, sent with Content-Type: application/json")
        if not isinstance(data, dict):
            raise refused(f"expected a JSON object, got {type(data).__name__}")
        if cls.members is not None and not cls.members.issuperset(data):
            unknown = min(set(data) - cls.members)
            holds = cls.holds or f"expected one of {', '.join(cls.model_fields)}"
            raise refused(f"unknown field ({holds})", below=f".{unknown}")
        return data


ORDER = {"id": "evt-1001", "type": "order.placed", "user_id": "u1", "timestamp": "2026-01-05T10:00:00Z",
         "properties": {"order_id": "o-1001", "total": 42.5}}


class EventIn(Body):
    """One event (docs/formats.md)."""

    model_config = ConfigDict(json_schema_extra=examples(ORDER))
    holds: ClassVar[str] = "an event has id, type, user_id, timestamp, properties"
    id: EventId | None = Field(None, description="idempotency key: an id seen before is a duplicate")
    type: Name = Field(description="what happened, e.g. `order.placed`, `push.opened`")
    user_id: Name
    timestamp: Timestamp | None = Field(None, description="RFC 3339 with an offset, 1970 to 2099; default: when "
                                        "received")
    properties: JsonObject | None = Field(None, description="any JSON object; numbers finite")

    def to_event(self, now: datetime) -> Event:
        """The engine's event; `now` if it carries no timestamp."""
        return Event(self.type, self.user_id, now if self.timestamp is None else self.timestamp,
                     {} if self.properties is None else self.properties, self.id)


class EventBatch(Body):
    """Many events in one transaction; each invalid item is listed in `rejected`, the rest go in."""

    model_config = ConfigDict(json_schema_extra=examples({"events": [ORDER, {"type": "push.opened", "user_id": "u1"}]}))
    holds: ClassVar[str] = 'a batch is {"events": [...]}'
    events: list[Any] = Field(description="events (`EventIn`); an item that is not one is listed in `rejected`",
                              json_schema_extra={"items": {"anyOf": [{"$ref": REF.format(model="EventIn")}, {}]}})


class ConsentIn(Body):
    """One consent change; `at` defaults to now and `source` to `api`."""

    model_config = ConfigDict(json_schema_extra=examples(
        {"channel": "sms", "category": "marketing", "granted": True, "source": "checkout-form"}))
    channel: Channel
    category: Category
    granted: bool
    source: Text | None = None
    at: Timestamp | None = Field(None, description="RFC 3339 with an offset, 1970 to 2099; null or left out: when "
                                 "received")

    def to_record(self, now: datetime, source: str = "api") -> ConsentRecord:
        """The ledger's record: at `now` unless it says when, from `source` unless it says whence."""
        return ConsentRecord(self.channel, self.category, self.granted,
                             self.source if "source" in self.model_fields_set else source,
                             now if self.at is None else self.at)


class RcsCapabilityIn(Body):
    """A provider's answer to "does this phone take RCS?" (RBM's capability check), as the engine
    caches it; trusted for the provider's TTL, then asked again before an RCS send."""

    capable: bool
    checked_at: Timestamp = Field(description="RFC 3339 with an offset, 1970 to 2099: when it was asked")
    source: Text = Field(description="the provider that answered, by name")

    def to_capability(self) -> RcsCapability:
        return RcsCapability(self.capable, self.checked_at, self.source)


Hours = Annotated[dict[str, Count], WithJsonSchema({
    "type": "object", "propertyNames": {"pattern": r"^([0-9]|1[0-9]|2[0-3])$"},
    "additionalProperties": {"type": "integer", "minimum": 0}, "examples": [{"19": 12, "8": 2}]})]


class RecentEngagement(Body):
    """The sent and engaged counts decayed to `as_of`: each message counts half as much every
    half-life (the policy's `auto.half_life`) since it went."""

    sent: float = Field(ge=0, allow_inf_nan=False)
    engaged: float = Field(ge=0, allow_inf_nan=False)
    as_of: Timestamp | None = Field(None, description="RFC 3339 with an offset, 1970 to 2099; null: the next "
                                    "event counted")


class ChannelEngagementIn(Body):
    """A person's engagement on one channel (docs/formats.md): messages sent, delivered, failed and
    engaged with (once each), the last engagement, engagements by local hour of day."""

    model_config = ConfigDict(json_schema_extra=examples({"sent": 20, "engaged": 18}))
    sent: Count = Field(0, ge=0)
    delivered: Count = Field(0, ge=0)
    failed: Count = Field(0, ge=0)
    engaged: Count = Field(0, ge=0)
    last_engaged_at: Timestamp | None = Field(None, description="RFC 3339 with an offset, 1970 to 2099")
    by_hour: Hours = Field({}, description="engagements by the person's local hour, \"0\" to \"23\"")
    recent: RecentEngagement | None = Field(None, description="left out: the counts themselves")

    @field_validator("by_hour")
    @classmethod
    def _hours(cls, value: dict[str, int]) -> dict[str, int]:
        problem = hours_problem(value)
        if problem is not None:
            raise refused(problem)
        return value

    def value(self) -> ChannelEngagement:
        recent = None if self.recent is None else (self.recent.sent, self.recent.engaged, self.recent.as_of)
        return ChannelEngagement.given((self.sent, self.delivered, self.failed, self.engaged), self.last_engaged_at,
                                       self.by_hour, recent)


EngagementIn = dict[Channel, ChannelEngagementIn]
ENGAGEMENT = ("per channel, as the engine counts it; given, it replaces the stored counts of the channels it "
              "names (history from another tool), the others stay; left out or null, every count stays")


def engagement_value(given: EngagementIn | None) -> Engagement | None:
    """The engine's value of a body's `engagement` (None: none given, the stored counts stay)."""
    return None if given is None else MappingProxyType({channel: doc.value() for channel, doc in given.items()})


class ProfileFields(BaseModel):
    """What a profile holds besides its id and consents, in and out alike."""

    timezone: TimeZone | None = Field(None, description="IANA zone, e.g. `America/New_York`")
    locale: Locale | None = Field(None, description=LOCALE)
    email: Email | None = Field(None, description="name@domain")
    phone: Phone | None = Field(None, description="a valid number in E.164, e.g. `+14155550100`")
    push_token: Text | None = None
    rcs_capable: bool = Field(False, description="whether the phone takes RCS: assumed as given, or a provider's "
                              "answer (`rcs_capability`), which it then follows")
    attributes: JsonObject = {}
    rcs_capability: RcsCapabilityIn | None = Field(None, description="a capability check's cached answer, written "
                                                   "by the engine; null: rcs_capable is assumed")
    engagement: EngagementIn | None = Field(None, description=ENGAGEMENT)


class ProfileIn(Body, ProfileFields):
    """A profile; fields are replaced, consents are appended to the ledger (never rewritten)."""

    model_config = ConfigDict(json_schema_extra=examples(
        {"timezone": "Europe/Paris", "locale": "fr-FR", "email": "ada@example.com", "phone": "+33612345678",
         "push_token": "tok-1", "attributes": {"first_name": "Ada", "region": "FR"},
         "consents": [{"channel": "sms", "category": "marketing", "granted": True}]}))
    user_id: Text | None = Field(None, description="if present, the same as in the path (another is a 409)")
    consents: list[ConsentIn] = []

    def to_profile(self, user_id: str, now: datetime, source: str = "api") -> Profile:
        """The profile as sent, its consents dated `now` and from `source` where they do not say."""
        capability = None if self.rcs_capability is None else self.rcs_capability.to_capability()
        return Profile(user_id, self.timezone, self.email, self.phone, self.push_token,
                       self.rcs_capable if capability is None else capability.capable,
                       MappingProxyType(dict(self.attributes)), tuple(c.to_record(now, source) for c in self.consents),
                       capability, engagement_value(self.engagement), self.locale)


class ProfilePatch(Body):
    """Changes to a stored profile: the fields given replace the stored ones (`null` clears one),
    `attributes` are merged key by key (a key given `null` is removed), consents are appended."""

    model_config = ConfigDict(json_schema_extra=examples(
        {"attributes": {"tier": "gold"}, "timezone": "Europe/Berlin", "rcs_capable": True}))
    user_id: Text | None = Field(None, description="if present, the same as in the path (another is a 409)")
    timezone: TimeZone | None = Field(None, description="IANA zone, e.g. `America/New_York`")
    locale: Locale | None = Field(None, description=LOCALE)
    email: Email | None = Field(None, description="name@domain")
    phone: Phone | None = Field(None, description="a valid number in E.164, e.g. `+14155550100`")
    push_token: Text | None = None
    rcs_capable: bool | None = Field(None, description="`null`: false")
    attributes: JsonObject = Field({}, description="merged key by key; `null` removes a key")
    consents: list[ConsentIn] = []
    engagement: EngagementIn | None = Field(None, description=ENGAGEMENT)

    def applied_to(self, stored: Profile, now: datetime) -> Profile:
        """`stored` with these changes, merged over it as `PUT` merges: the consents that change
        something appended to its ledger, the cached RCS capability kept unless `rcs_capable`
        contradicts it, engagement imported as `PUT` imports it."""
        given = self.model_fields_set - {"user_id", "attributes", "consents", "engagement"}
        fields: dict[str, Any] = {name: getattr(self, name) for name in given}
        if "rcs_capable" in fields:
            fields["rcs_capable"] = bool(fields["rcs_capable"])  # cleared: false, a profile's default
        kept: Mapping[str, Any] = {**stored.attributes, **self.attributes}
        attributes = MappingProxyType({k: v for k, v in kept.items() if v is not None})
        incoming = replace(stored, **fields, attributes=attributes, rcs_capability=None,
                           consents=tuple(c.to_record(now) for c in self.consents),
                           engagement=engagement_value(self.engagement))
        return merged(stored, incoming)


class SimulatedEvent(EventIn):
    """An event of a dry run: its timestamp is required (the virtual clock follows the events)."""

    timestamp: Timestamp = Field(description="RFC 3339 with an offset, 1970 to 2099")

    @model_validator(mode="before")
    @classmethod
    def _timed(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("timestamp") is None:
            raise refused("required in a simulation (the clock follows the events)", below=".timestamp")
        return data


class SimulatedProfile(ProfileIn):
    """A profile with its id: an item of `POST /v1/profiles`, or a profile of a dry run."""

    user_id: SomeText  # required here

    def as_profile(self, now: datetime, source: str = "api") -> Profile:
        return self.to_profile(self.user_id, now, source)


class SimulateRequest(Body):
    """A dry run of one journey on a virtual clock: nothing is sent or stored."""

    model_config = ConfigDict(extra="allow", json_schema_extra=examples(
        {"events": [ORDER], "profiles": [{"user_id": "u1", "push_token": "tok-1", "timezone": "UTC"}]}))
    events: list[SimulatedEvent] = Field(description="required, unless the journey is entered by audience runs")
    profiles: list[SimulatedProfile] = []
    start: Timestamp | None = Field(None, description="audience runs from this instant (see `journey simulate`)")
    until: Timestamp | None = Field(None, description="audience runs up to this instant (default: the first only)")


MAX_FORECAST = 100_000
"""Profile-runs (profiles x runs) one forecast request may ask for; `journey forecast` has no bound."""


class ForecastRequest(Body):
    """A forecast of one journey over these profiles and their events: `runs` Monte Carlo runs
    of sampled engagement on a virtual clock; nothing is sent or stored. At most 100,000
    profile-runs (people x runs; the people are the profiles and the users of the events)."""

    model_config = ConfigDict(extra="allow", json_schema_extra=examples(
        {"events": [{**ORDER, "type": "cart.abandoned"}], "runs": 20, "seed": 7,
         "profiles": [{"user_id": "u1", "push_token": "tok-1", "timezone": "UTC"}]}))
    events: list[SimulatedEvent] = Field(description="the entry events (and any others), each with its timestamp; "
                                         "required, unless the journey is entered by audience runs")
    profiles: list[SimulatedProfile] = []
    runs: Count = Field(DEFAULT_RUNS, ge=1, le=MOST_RUNS, description=f"Monte Carlo runs (default {DEFAULT_RUNS})")
    seed: Count = Field(0, ge=0, le=2**63 - 1, description="the draws' seed: the same seed, the same answer")
    by: Annotated[str, StringConstraints(pattern=r"^(attributes\..+|timezone|locale)$", max_length=200)] | None = \
        Field(None, description="break the figures down by this profile field: `attributes.<name>`, `timezone` or "
              "`locale`")

    @model_validator(mode="after")
    def _bounded(self) -> ForecastRequest:
        """People are the profiles and the users of the events (a user with events and no profile is one)."""
        people = len({p.user_id for p in self.profiles} | {e.user_id for e in self.events})
        asked = max(people, 1) * self.runs
        if asked > MAX_FORECAST:
            raise refused(f"{people} people x {self.runs} runs is {asked} profile-runs, more than "
                          f"{MAX_FORECAST:,} in one request: fewer runs, or journey forecast on the command line",
                          below=".runs")
        return self


class PreviewEvent(Body):
    """The event a previewed message's templates read; its type defaults to the journey's trigger."""

    id: EventId | None = None
    type: Name | None = Field(None, description="default: the journey's trigger event")
    timestamp: Timestamp | None = Field(None, description="RFC 3339 with an offset; default: now")
    properties: JsonObject | None = Field(None, description="any JSON object; numbers finite")


class PreviewRequest(Body):
    """Whom to render a message for: a stored person (`user_id`) or one given here (`profile`)."""

    model_config = ConfigDict(json_schema_extra={**examples(
        {"user_id": "u1", "event": {"properties": {"starts_at": "2026-03-12T15:30:00Z"}}, "channels": ["sms"]},
        {"profile": {"user_id": "u1", "locale": "fr-FR", "timezone": "Europe/Paris", "phone": "+33612345678"}}),
        "oneOf": [{"required": ["user_id"]}, {"required": ["profile"]}]})
    user_id: Name | None = Field(None, description="a stored profile (its consents and preferences count)")
    profile: SimulatedProfile | None = Field(None, description="a profile given here, instead of `user_id`")
    event: PreviewEvent | None = None
    channels: list[Channel] = Field([], description="the channels to render (default: every one the message has)")

    @model_validator(mode="after")
    def _one_person(self) -> PreviewRequest:
        if ("user_id" in self.model_fields_set) == ("profile" in self.model_fields_set):
            raise refused("give either user_id (a stored profile) or profile (one given here)")
        return self

    def to_event(self, trigger: str, user_id: str, now: datetime) -> Event:
        given = self.event
        if given is None:
            return Event(trigger, user_id, now)
        return Event(given.type or trigger, user_id, given.timestamp or now, given.properties or {}, given.id)


class PreferencesIn(Body):
    """What a person wants: per category, each channel on or off; per journey (one that says it may be
    turned off), on or off. What is left out is on; a PUT replaces what was said before."""

    model_config = ConfigDict(json_schema_extra=examples(
        {"categories": {"marketing": {"sms": False, "email": True}}, "journeys": {"win-back": False}}))
    categories: dict[Category, dict[Channel, bool]] = Field({}, description="per category, each channel on or off")
    journeys: dict[Name, bool] = Field({}, max_length=MAX_ENTRIES, description="per journey id, on or off (for a "
                                       "journey with `mutable: true`)",
                                       json_schema_extra={"additionalProperties": False})  # a key is a Name

    def to_preferences(self) -> Preferences:
        return Preferences.from_dict({"categories": self.categories, "journeys": self.journeys})


class CancelRequest(Body):
    """Which instances of the journey to end: the user's, with this instance key (default: all of them)."""

    model_config = ConfigDict(json_schema_extra=examples({"user_id": "u1", "key": "o-1001"}, {"user_id": "u1"}))
    user_id: Name
    key: Text | None = Field(None, description="the instance key (the journey's `instance_key`, e.g. the order "
                             "id); left out or null: every instance of the user in the journey")


class BulkProfiles(Body):
    """Up to 10,000 profiles, each upserted as PUT /v1/profiles/{user_id} does one."""

    holds: ClassVar[str] = 'a batch is {"profiles": [...]}'
    profiles: list[Any] = Field(max_length=MAX_BATCH, description="profiles (`SimulatedProfile`); an item that is not "
                                "one is listed in `rejected`", json_schema_extra={
                                    "items": {"anyOf": [{"$ref": REF.format(model="SimulatedProfile")}, {}]}})
