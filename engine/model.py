"""Journey definitions as the YAML author wrote them (docs/journeys.md), validated at load.

Pydantic is used here because this is the edge where untrusted YAML becomes data;
unknown keys are rejected everywhere so a typo is an error, not a silently ignored key.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from channels.locales import check_locale
from channels.mms import MEDIA_MAX
from channels.rcs import (
    CALENDAR_DESCRIPTION_MAX,
    CALENDAR_TITLE_MAX,
    CARD_SUGGESTIONS_MAX,
    CAROUSEL_MAX,
    CAROUSEL_MIN,
    CHIP_KINDS,
    CHIP_TEXT_MAX,
    DESCRIPTION_MAX,
    POSTBACK_MAX,
    SUGGESTIONS_MAX,
    TEXT_MAX,
    TITLE_MAX,
)
from engine.schedule import check_cron, parse_instant, zone

CHANNELS = ("push", "in_app", "email", "sms", "mms", "rcs", "webhook")
Channel = Literal["push", "in_app", "email", "sms", "mms", "rcs", "webhook"]
Urgency = Literal["low", "normal", "high", "critical"]
Strategy = Literal["escalate", "all", "first", "cheapest", "auto"]
Category = Literal["marketing", "transactional"]

_SHORT_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_ISO_DURATION = re.compile(
    r"^P(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?"
    r"(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
DURATION_PATTERN = r"^(\d+(\.\d+)?\s*[smhdw]|P(\d+W)?(\d+D)?(T(\d+(\.\d+)?H)?(\d+(\.\d+)?M)?(\d+(\.\d+)?S)?)?)$"
HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
LOCALE_TAG = r"^[a-z]{2,3}(-[A-Z][a-z]{3})?(-([A-Z]{2}|[0-9]{3}))?(-[A-Za-z0-9]{4,8})*$"  # BCP 47 as CLDR spells it
BEST_TIME = "best_time"
"""`wait: {until: best_time}`: the hour this person engages most, within `within`."""


def parse_duration(value: object, written: object = None) -> timedelta:
    """`30s`, `15m`, `2h`, `1d`, `1w` or ISO 8601 (`PT2H`, `P1D`) to a timedelta."""
    if isinstance(value, timedelta):
        return value
    if not isinstance(value, str):
        raise ValueError(f"duration must be a string like '2h' or 'PT2H', got {value!r}")
    short = _SHORT_DURATION.match(value)
    if short:
        return timedelta(seconds=float(short.group(1)) * _UNIT_SECONDS[short.group(2)])
    iso = _ISO_DURATION.match(value.strip())
    if iso and value.strip() not in ("P", "PT") and not value.strip().endswith("T"):
        parts = {k: float(v) for k, v in iso.groupdict().items() if v}
        return timedelta(weeks=parts.get("w", 0), days=parts.get("d", 0), hours=parts.get("h", 0),
                         minutes=parts.get("m", 0), seconds=parts.get("s", 0))
    raise ValueError(f"invalid duration {value if written is None else written!r}: use 30s, 15m, 2h, 1d, 1w or "
                     "ISO 8601 like PT2H")


def format_duration(value: timedelta) -> str:
    """The shortest author-style spelling: 90m, 2h, 1d, 1w, 45s."""
    seconds = int(value.total_seconds())
    sign, seconds = ("-", -seconds) if seconds < 0 else ("", seconds)
    for unit in ("w", "d", "h", "m"):
        if seconds and seconds % _UNIT_SECONDS[unit] == 0:
            return f"{sign}{seconds // _UNIT_SECONDS[unit]}{unit}"
    return f"{sign}{seconds}s"


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    WithJsonSchema({"type": "string", "pattern": DURATION_PATTERN, "examples": ["2h", "PT2H"]}),
]


def _parse_signed_duration(value: object) -> timedelta:
    if isinstance(value, str) and value.strip().startswith("-"):  # an error quotes it as written, sign included
        return -parse_duration(value.strip()[1:], written=value)
    return parse_duration(value)


SignedDuration = Annotated[
    timedelta,
    BeforeValidator(_parse_signed_duration),
    WithJsonSchema({"type": "string", "pattern": "^-?" + DURATION_PATTERN[1:], "examples": ["-24h"]}),
]


class Strict(BaseModel):
    """Every model rejects unknown keys and is immutable once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class CalendarOffset(Strict):
    """A shift on the recipient's wall clock: `{days: -1}` is the same local time the day before,
    whatever a daylight-saving change in between does to the hours."""

    days: int = Field(default=0, description="whole days on the recipient's calendar, e.g. -1")
    hours: int = Field(default=0, description="hours on the recipient's wall clock")
    minutes: int = Field(default=0, description="minutes on the recipient's wall clock")

    def delta(self) -> timedelta:
        return timedelta(days=self.days, hours=self.hours, minutes=self.minutes)


def _offset_kind(value: Any) -> str:
    return "calendar_offset" if isinstance(value, dict | CalendarOffset) else "signed_duration"


Offset = Annotated[
    Annotated[SignedDuration, Tag("signed_duration")] | Annotated[CalendarOffset, Tag("calendar_offset")],
    Discriminator(_offset_kind),
]


class Trigger(Strict):
    """What starts an instance of the journey: an event, or an audience run (scheduled or one-off)."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra={"oneOf": [
        {"required": ["event"]}, {"required": ["schedule", "audience"]}, {"required": ["at", "audience"]}]})

    event: str | None = Field(default=None, min_length=1, description="event type that starts an instance, "
                              "e.g. cart.abandoned (or use schedule or at, with audience)")
    when: str | None = Field(
        default=None, description="optional expression: the event starts an instance only when it is true, "
        "e.g. event.properties.value >= 20",
    )
    schedule: str | None = Field(default=None, description='5-field cron, e.g. "0 9 * * MON": a run at each '
                                 "occurrence enters every profile the audience matches")
    at: str | None = Field(default=None, description='one instant, e.g. "2026-12-24T09:00:00Z": a one-off run '
                           "enters every profile the audience matches (without an offset: in timezone)")
    timezone: str | None = Field(default=None, description="IANA time zone of schedule (and of an at without "
                                 "offset), e.g. Europe/Amsterdam (default: the policy's default_timezone)")
    audience: str | None = Field(default=None, description="with schedule or at: expression over profile "
                                 "choosing who a run enters, e.g. profile.attributes.plan == 'trial'")

    @field_validator("schedule")
    @classmethod
    def _five_field_cron(cls, value: str | None) -> str | None:
        if value is not None:
            check_cron(value)
        return value

    @field_validator("at", mode="before")
    @classmethod
    def _instant(cls, value: object) -> object:
        if isinstance(value, datetime):
            value = value.isoformat()
        if isinstance(value, str):
            parse_instant(value, "UTC")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None:
            zone(value)
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> Trigger:
        kinds = [k for k in ("event", "schedule", "at") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError("a trigger needs exactly one of 'event', 'schedule' or 'at'"
                             + (f", not {' and '.join(kinds)}" if kinds else ""))
        if self.event is not None and (self.audience is not None or self.timezone is not None):
            raise ValueError("'audience' and 'timezone' go with 'schedule' or 'at'; an event trigger uses 'when'")
        if self.event is None and self.audience is None:
            raise ValueError(f"a '{kinds[0]}' trigger needs an 'audience': an expression over profile")
        if self.event is None and self.when is not None:
            raise ValueError(f"'when' goes with 'event'; a '{kinds[0]}' trigger chooses profiles with 'audience'")
        return self

    @property
    def kind(self) -> str:
        """event, schedule or at."""
        return "event" if self.event is not None else "schedule" if self.schedule is not None else "at"


class Goal(Strict):
    """The event the journey is for: status converted, counted, ends the instance."""

    event: str = Field(min_length=1, description="goal event: status converted, counted, ends the instance "
                       "(it wins when an event is both an exit and the goal)")
    within: Duration | None = Field(
        default=None, description="optional: the goal counts only this long after entry, e.g. 7d",
    )


def _event_names(value: object) -> object:
    if (isinstance(value, str) and value) or (isinstance(value, list) and value and
                                              all(isinstance(v, str) and v for v in value)):
        return value
    raise ValueError(f"expected an event type or a list of event types, got {value!r}")


EventNames = Annotated[
    str | list[str],
    BeforeValidator(_event_names),
    WithJsonSchema({"anyOf": [{"type": "string", "minLength": 1},
                              {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1}]}),
]
_NEXT = "step to go to next (default: the following step in the list)"


class StepBase(Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
                    description="step id, unique in the journey; next, branches and paths name steps by it")


class SendStep(StepBase):
    """send: one message, on the channels chosen for the recipient."""

    type: Literal["send"] = Field(description="send: one message, on the channels chosen for the recipient")
    message: str = Field(description="name of a message under `messages`")
    channels: list[Channel] | None = Field(
        default=None, min_length=1, description="optional candidate list, in preference order "
        "(default: every channel the message has content for)",
    )
    strategy: Strategy | None = Field(
        default=None, description="escalate | all | first | cheapest | auto (default: the policy's "
        "default_strategy, else by urgency: critical all, high escalate after 15m, normal escalate after 2h, "
        "low cheapest); auto weighs each channel's reach for the person against its cost, by urgency",
    )
    escalate_after: Duration | None = Field(
        default=None, description="escalate (and auto at high or normal urgency): time to wait for engagement "
        "before the next channel",
    )
    urgency: Urgency = Field(default="normal", description="low | normal | high | critical (default normal)")
    expires: str | None = Field(
        default=None, description="optional expression giving a timestamp, e.g. event.properties.starts_at: from "
        "that moment the send is skipped (reason expired) and the instance goes on",
    )
    expires_after: Duration | None = Field(
        default=None, description="optional: the send is skipped (reason expired) once this long has passed since "
        "the step began (put off by quiet hours, an escalation's later channel), e.g. 2h",
    )
    next: str | None = Field(default=None, description=_NEXT)

    @model_validator(mode="after")
    def _escalate_after_needs_escalation(self) -> SendStep:
        if self.escalate_after is not None and self.strategy not in (None, "escalate", "auto"):
            raise ValueError(f"escalate_after only applies to strategy escalate, not {self.strategy}")
        if self.expires is not None and self.expires_after is not None:
            raise ValueError("a send takes 'expires' or 'expires_after', not both")
        return self


class WaitStep(StepBase):
    """wait: a duration, or until a time of day or a timestamp."""

    type: Literal["wait"] = Field(description="wait: a duration, or until a time of day or a timestamp")
    duration: Duration | None = Field(
        default=None, description="how long to wait: 30s, 15m, 2h, 1d, 1w or ISO 8601 (PT2H); or use until",
    )
    until: str | None = Field(
        default=None, description='"09:00" = next such local time of the recipient, best_time = the local hour '
        "at which the recipient engages most (within `within`), or an expression giving a timestamp "
        "(e.g. event.properties.starts_at)",
    )
    offset: Offset | None = Field(
        default=None, description="with `until: <expression>`: a shift, e.g. -24h (24 hours), or {days: -1} (the "
        "same local time one day before, in the recipient's time zone, right across daylight-saving changes)",
    )
    calendar: bool = Field(default=False, description="with `offset`: shift on the recipient's wall clock, as "
                           "{days: ...} does (`offset: -1d` with `calendar: true` is {days: -1})")
    if_past: str = Field(default="go", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
                         description="with `until: <expression>`, when that time has already passed: go (default: "
                         "on at once) | exit (the instance ends, reason expired) | <step id> (go there)")
    within: Duration | None = Field(
        default=None, description="with `until: best_time`: the longest it waits (default 24h), e.g. 12h",
    )
    next: str | None = Field(default=None, description=_NEXT)

    @model_validator(mode="after")
    def _one_of_duration_until(self) -> WaitStep:
        if (self.duration is None) == (self.until is None):
            raise ValueError("a wait needs exactly one of 'duration' or 'until'")
        at_time = self.until is None or HHMM.match(self.until) or self.until == BEST_TIME
        for name, given in (("offset", self.offset is not None), ("calendar", self.calendar),
                            ("if_past", self.if_past != "go")):
            if given and at_time:
                raise ValueError(f"'{name}' only applies to 'until: <expression>'")
        if self.calendar and self.offset is None:
            raise ValueError("'calendar' shifts the 'offset': give one, e.g. offset: -1d")
        if self.within is not None and self.until != BEST_TIME:
            raise ValueError("'within' only applies to 'until: best_time'")
        if self.within is not None and self.within <= timedelta(0):
            raise ValueError("'within' must be longer than zero")
        return self

    @property
    def on_calendar(self) -> bool:
        """Whether the offset moves the recipient's wall clock rather than the instant."""
        return self.calendar or isinstance(self.offset, CalendarOffset)

    def offset_delta(self) -> timedelta:
        offset = self.offset
        return offset.delta() if isinstance(offset, CalendarOffset) else offset or timedelta(0)

    def best_time_within(self) -> timedelta:
        """The window of `until: best_time`."""
        return self.within or timedelta(hours=24)


class WaitForStep(StepBase):
    """wait_for: an event (or the first of several), up to a timeout."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra={"oneOf": [
        {"required": ["event"]}, {"required": ["events"]}]})

    type: Literal["wait_for"] = Field(description="wait_for: an event (or the first of several), up to a timeout")
    event: EventNames | None = Field(
        default=None, description="event type to wait for, e.g. email.opened (or events: a list; a list here, "
        "e.g. [rcs.reply, sms.inbound], reads the same)")
    events: list[Annotated[str, Field(min_length=1)]] | None = Field(
        default=None, min_length=1, description="event types to wait for: the first to arrive is taken, e.g. "
        "[order.paid, order.cancelled] (or event: one type)",
    )
    when: str | None = Field(default=None, description="optional expression the event must make true")
    lookback: Duration | None = Field(
        default=None, description="optional: an event of the user that arrived this long before the wait began "
        "counts (once), e.g. 1h",
    )
    timeout: Duration = Field(description="required: how long to wait for the event (no instance waits forever)")
    on_event: str | dict[str, str] | None = Field(
        default=None, description="step to go to when the event arrives in time, or one per event type "
        "({order.paid: thanks, order.cancelled: done}; a type left out goes on to the following step) "
        "(default: the following step)",
    )
    on_timeout: str | None = Field(default=None, description="step to go to when the timeout passes "
                                   "(default: the following step)")

    @model_validator(mode="after")
    def _one_of_event_events(self) -> WaitForStep:
        if (self.event is None) == (self.events is None):
            raise ValueError("a wait_for needs exactly one of 'event' or 'events'")
        types = self.event_types()
        if len(set(types)) != len(types):
            raise ValueError(f"{'events' if self.events is not None else 'event'}: an event type is listed twice")
        return self

    def event_types(self) -> tuple[str, ...]:
        """The event types this step waits for, in the order written (`event:` takes one or a list)."""
        written = self.events if self.events is not None else self.event
        return (written,) if isinstance(written, str) else tuple(written or ())

    def target(self, event_type: str) -> str | None:
        """The step an event of `event_type` goes to; None: the following step."""
        if isinstance(self.on_event, dict):
            return self.on_event.get(event_type)
        return self.on_event


class BranchCase(Strict):
    when: str = Field(description="expression; the first case that is true is taken (a missing variable "
                      "counts as false)")
    next: str = Field(description="step to go to when `when` is true")


class BranchStep(StepBase):
    """branch: the first case whose condition is true, else the default."""

    type: Literal["branch"] = Field(description="branch: the first case whose condition is true, else the default")
    branches: list[BranchCase] = Field(min_length=1, description="cases in order: {when: <expression>, next: <step>}")
    default: str | None = Field(default=None, description="step to go to when no case is true "
                                "(default: the following step)")


class SplitPath(Strict):
    weight: float = Field(gt=0, description="relative weight of this path, e.g. 50")
    next: str = Field(description="step this path goes to")


class SplitStep(StepBase):
    """split: deterministic: the same user always takes the same path."""

    type: Literal["split"] = Field(description="split: deterministic: the same user always takes the same path")
    paths: list[SplitPath] = Field(min_length=2, description="two or more {weight, next}; users are shared in "
                                   "proportion to the weights")


class ExitStep(StepBase):
    """exit: ends the instance (status completed)."""

    type: Literal["exit"] = Field(description="exit: ends the instance (status completed)")


class DigestStep(StepBase):
    """digest: collects the journey's trigger events into one, over a window, then goes on."""

    type: Literal["digest"] = Field(description="digest: collects the trigger events of a key (default: the "
                                    "instance's) over a window, then goes on with `digest` for the templates")
    window: Duration | None = Field(default=None, description="how long the digest collects, from its first "
                                    "event, e.g. 30m (or until; with both, whichever comes first)")
    until: str | None = Field(default=None, description='collect until this local time of the recipient, e.g. '
                              '"18:00" (or window)')
    count: int | None = Field(default=None, ge=1, description="optional: close the digest as soon as it holds "
                              "this many events")
    key: str | None = Field(default=None, description="optional expression: only events with the same key as "
                            "the first join the digest, e.g. event.properties.order_id (default: the instance's)")
    next: str | None = Field(default=None, description=_NEXT)

    @field_validator("until")
    @classmethod
    def _local_time(cls, value: str | None) -> str | None:
        if value is not None and not HHMM.match(value):
            raise ValueError(f'{value!r} is not a local time HH:MM, e.g. "18:00"')
        return value

    @model_validator(mode="after")
    def _closes(self) -> DigestStep:
        if self.window is None and self.until is None:
            raise ValueError("a digest needs 'window' or 'until' (a count alone could wait forever)")
        return self


class ThrottleStep(StepBase):
    """throttle: at most `limit` instances of this journey per user (and key) pass in each `period`."""

    type: Literal["throttle"] = Field(description="throttle: at most `limit` instances of this journey per user "
                                      "(and key) pass this step in any `period`; the others take on_throttled")
    limit: int = Field(ge=1, description="how many may pass in any period, e.g. 1")
    period: Duration = Field(description="the rolling period, e.g. 1d")
    key: str | None = Field(default=None, description="optional expression: count per this key too, e.g. "
                            "event.properties.product_id (default: per user)")
    on_throttled: str | None = Field(default=None, description="step for the instances over the limit (default: "
                                     "the instance ends, reason throttled)")
    next: str | None = Field(default=None, description=_NEXT)


Step = Annotated[
    SendStep | WaitStep | WaitForStep | BranchStep | SplitStep | ExitStep | DigestStep | ThrottleStep,
    Field(discriminator="type"),
]
STEP_TYPES = ("send", "wait", "wait_for", "branch", "split", "exit", "digest", "throttle")
OFFSET_TAGS = ("signed_duration", "calendar_offset")  # the union tags pydantic puts in an offset's error locations
_TEMPLATE = " (Jinja2 template)"


class PushContent(Strict):
    title: str | None = Field(default=None, description="notification title" + _TEMPLATE)
    body: str = Field(description="notification text" + _TEMPLATE)
    data: dict[str, str] | None = Field(default=None, description="key/value data delivered with the push, "
                                        "e.g. a deep link url" + _TEMPLATE)


class SmsContent(Strict):
    text: str = Field(description="SMS text" + _TEMPLATE + "; GSM-7 or UCS-2, at most the policy's max_segments")


class EmailContent(Strict):
    subject: str = Field(description="subject line" + _TEMPLATE)
    body: str = Field(description="plain-text body" + _TEMPLATE)
    html: str | None = Field(default=None, description="optional HTML body" + _TEMPLATE
                             + "; inserted values are HTML-escaped unless marked | safe")
    layout: str | None = Field(default=None, max_length=200, description="a layout from the templates/ folder "
                               "beside the journeys (`base.html`) that wraps the html (else the body, escaped): it "
                               "reads it as {{ content }}")


class MmsContent(Strict):
    text: str | None = Field(default=None, description="MMS text" + _TEMPLATE)
    media_url: str | list[str] | None = Field(
        default=None, description="URL of the image or video, or a list of up to 10 URLs; an rcs message falls "
        "back to mms only when this is set", json_schema_extra={"maxItems": MEDIA_MAX})
    media_size: str | int | None = Field(
        default=None, description="optional: the media's total size when known, e.g. 480KB or 1.5MB: validate "
        "refuses over 5 MB (Twilio's limit) and warns over 1 MB (AT&T, T-Mobile); a data: URL's size is known "
        "without it", examples=["480KB"])


_CHIP_TEXT = f"at most {CHIP_TEXT_MAX} characters"


class RcsMedia(Strict):
    url: str = Field(description="URL of the image or video" + _TEMPLATE)
    height: Literal["short", "medium", "tall"] = Field(
        default="medium", description="short | medium (default) | tall; a carousel card's is short or medium")
    thumbnail_url: str | None = Field(default=None, description="optional: a thumbnail shown while a video loads")


class RcsCard(Strict):
    title: str | None = Field(default=None, description=f"card title, at most {TITLE_MAX} characters" + _TEMPLATE)
    description: str | None = Field(default=None, description=f"card text, at most {DESCRIPTION_MAX} characters"
                                    + _TEMPLATE)
    media_url: str | None = Field(default=None, description="URL of the card's image or video (medium height); or "
                                  "use media")
    media: RcsMedia | None = Field(default=None, description="the card's image or video: {url, height}")
    orientation: Literal["vertical", "horizontal"] | None = Field(
        default=None, description="a standalone card's layout: vertical (default) | horizontal")
    suggestions: list[RcsSuggestion] | None = Field(
        default=None, description=f"chips on the card, at most {CARD_SUGGESTIONS_MAX}: as the message's "
        "suggestions", json_schema_extra={"maxItems": CARD_SUGGESTIONS_MAX})

    @model_validator(mode="after")
    def _one_media(self) -> RcsCard:
        if self.media_url is not None and self.media is not None:
            raise ValueError("a card has media_url or media, not both")
        return self


class RcsCarousel(Strict):
    width: Literal["small", "medium"] = Field(default="medium", description="card width: small | medium (default)")
    cards: list[RcsCard] = Field(description=f"{CAROUSEL_MIN} to {CAROUSEL_MAX} cards, shown side by side",
                                 json_schema_extra={"minItems": CAROUSEL_MIN, "maxItems": CAROUSEL_MAX})


class RcsCalendarEvent(Strict):
    title: str = Field(description=f"the event's title, at most {CALENDAR_TITLE_MAX} characters" + _TEMPLATE)
    start: str = Field(description='RFC 3339 start, e.g. "2026-05-01T18:00:00Z"' + _TEMPLATE)
    end: str = Field(description="RFC 3339 end, after start" + _TEMPLATE)
    description: str | None = Field(default=None, description=f"optional, at most {CALENDAR_DESCRIPTION_MAX} "
                                    "characters" + _TEMPLATE)


class RcsLocation(Strict):
    latitude: float | None = Field(default=None, ge=-90, le=90, description="with longitude: the place to show")
    longitude: float | None = Field(default=None, ge=-180, le=180, description="with latitude")
    query: str | None = Field(default=None, description='or a search for the place, e.g. "Acme Store, Main St"'
                              + _TEMPLATE)
    label: str | None = Field(default=None, description="optional: the pin's label" + _TEMPLATE)

    @model_validator(mode="after")
    def _a_place(self) -> RcsLocation:
        if (self.latitude is None) != (self.longitude is None) or (self.latitude is None and self.query is None):
            raise ValueError("a location is latitude and longitude, or a query")
        return self


class RcsSuggestion(Strict):
    """A chip: a reply, or an action (open a URL, dial, share or view a location, add a calendar event)."""

    reply: str | None = Field(default=None, description=f"a reply chip: its text ({_CHIP_TEXT}); tapping it "
                              "sends rcs.reply with this postback" + _TEMPLATE)
    open_url: str | None = Field(default=None, description="a chip that opens this URL" + _TEMPLATE)
    dial: str | None = Field(default=None, description="a chip that dials this E.164 number" + _TEMPLATE)
    share_location: Literal[True] | None = Field(default=None, description="true: a chip that asks for the "
                                                 "person's location")
    calendar_event: RcsCalendarEvent | None = Field(default=None, description="a chip that adds this event to "
                                                    "their calendar: {title, start, end, description}")
    view_location: RcsLocation | None = Field(default=None, description="a chip that shows a place on a map: "
                                              "{latitude, longitude} or {query}")
    text: str | None = Field(default=None, description=f"an action chip's label ({_CHIP_TEXT}; an open_url or "
                             "dial chip without one shows its URL or number)" + _TEMPLATE)
    postback: str | None = Field(default=None, description=f"what comes back in rcs.reply's properties.postback "
                                 f"when tapped, at most {POSTBACK_MAX} characters (default: the chip's text)"
                                 + _TEMPLATE)

    @model_validator(mode="after")
    def _one_kind(self) -> RcsSuggestion:
        kinds = [k for k in CHIP_KINDS if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(f"a chip is exactly one of {', '.join(CHIP_KINDS)}"
                             + (f", not {' and '.join(kinds)}" if kinds else ""))
        if kinds[0] == "reply" and self.text is not None:
            raise ValueError("a reply chip shows its reply: leave out text")
        if kinds[0] in ("share_location", "calendar_event", "view_location") and self.text is None:
            raise ValueError(f"a {kinds[0]} chip needs a text: its label ({_CHIP_TEXT})")
        return self


class RcsContent(Strict):
    text: str | None = Field(default=None, description=f"RCS text, at most {TEXT_MAX} characters" + _TEMPLATE)
    card: RcsCard | None = Field(default=None, description="a rich card: {title, description, media, orientation, "
                                 "suggestions}")
    carousel: RcsCarousel | None = Field(default=None, description=f"or a carousel of {CAROUSEL_MIN} to "
                                         f"{CAROUSEL_MAX} cards: {{width, cards}}")
    suggestions: list[RcsSuggestion] | None = Field(
        default=None, description=f"chips under the message, at most {SUGGESTIONS_MAX}: {{reply, postback}}, "
        "{open_url, text}, {dial, text}, {share_location: true, text}, {calendar_event, text}, "
        "{view_location, text}", json_schema_extra={"maxItems": SUGGESTIONS_MAX})

    @model_validator(mode="after")
    def _something(self) -> RcsContent:
        if self.card is not None and self.carousel is not None:
            raise ValueError("rcs content has a card or a carousel, not both")
        if self.text is None and self.card is None and self.carousel is None:
            raise ValueError("rcs content needs a text, a card or a carousel")
        return self


class InAppContent(Strict):
    title: str | None = Field(default=None, description="in-app message title" + _TEMPLATE)
    body: str = Field(description="in-app message text" + _TEMPLATE)


class WebhookContent(Strict):
    payload: dict[str, Any] = Field(description="JSON body posted to the webhook; every string in it is a"
                                    + _TEMPLATE)


class Variant(Strict):
    """A message's content per channel, in one language."""

    push: PushContent | None = Field(default=None, description="push notification: {title, body, data}")
    sms: SmsContent | None = Field(default=None, description="SMS: {text}")
    email: EmailContent | None = Field(default=None, description="email: {subject, body, html}")
    mms: MmsContent | None = Field(default=None, description="MMS: {text, media_url, media_size}")
    rcs: RcsContent | None = Field(default=None, description="RCS: {text, card | carousel, suggestions}; falls "
                                   "back to mms (with a media_url) or sms when the phone is not RCS capable")
    in_app: InAppContent | None = Field(default=None, description="in-app message: {title, body}")
    webhook: WebhookContent | None = Field(default=None, description="webhook: {payload}")

    def channels(self) -> tuple[str, ...]:
        """Channels this message has content for, in catalogue order."""
        return tuple(c for c in CHANNELS if getattr(self, c) is not None)


class JourneyLimits(Strict):
    """A journey's own cap on what it sends each user."""

    messages: int = Field(ge=1, description="at most this many messages of this journey to one user per `per`; "
                          "a send over it is skipped (reason journey_cap)")
    per: Duration = Field(description="the rolling period, e.g. 7d")


class Message(Variant):
    """One message: its content per channel; the step's strategy picks among these channels. Variants per
    locale (`locales: {fr: {sms: {text: ...}}}`) replace a channel's content for readers of that language."""

    locales: dict[str, Variant] = Field(
        default_factory=dict, description="content per locale (BCP 47 as CLDR spells it: fr, fr-CA, pt-BR), for "
        "the channels it gives; the reader's locale picks the closest (fr-CA, then fr), else the content above",
        json_schema_extra={"propertyNames": {"pattern": LOCALE_TAG}},
    )

    @field_validator("locales")
    @classmethod
    def _known_locales(cls, value: dict[str, Variant]) -> dict[str, Variant]:
        for tag in value:
            check_locale(tag)
        return value

    @model_validator(mode="after")
    def _variants_of_its_channels(self) -> Message:
        for tag, variant in self.locales.items():
            extra = [c for c in variant.channels() if getattr(self, c) is None]
            if extra:
                raise ValueError(f"locales.{tag}: {', '.join(extra)}: a variant gives another language's content "
                                 f"of the message's own channels ({', '.join(self.channels()) or 'none'})")
        return self


class Journey(Strict):
    """One journey file. Cross-references are checked by the compiler, not here."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, json_schema_extra={
            "title": "journey-engine journey",
            "description": "A journey file of journey-engine: a trigger, steps and messages (see docs/journeys.md).",
        },
    )

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$", description="required; [a-z0-9][a-z0-9._-]*")
    name: str | None = Field(default=None, description="optional human-readable name")
    description: str | None = Field(default=None, description="optional: what the journey is for")
    category: Category = Field(default="marketing", description="marketing (default) | transactional: decides "
                               "consent, quiet hours and frequency caps")
    trigger: Trigger = Field(description="required: {event, when}, or {schedule | at, timezone, audience}: what "
                             "starts an instance")
    instance_key: str | None = Field(
        default=None, description="optional expression: several concurrent instances per user, one per key "
        "(default: one per user), e.g. event.properties.order_id",
    )
    mutable: bool = Field(default=False, description="the person may turn this journey off in their preference "
                          "centre (`journeys: {<id>: false}`); its sends then skip with preference_off")
    re_entry: str = Field(default="always", pattern=r"^(always|never|after\s+\S+)$",
                          description='always (default: when no instance is active) | never | "after 7d" '
                          "(counts from the last entry)")
    exit_on: list[str] = Field(default_factory=list, description="optional: these events end the instance "
                               "(status exited)")
    goal: Goal | None = Field(default=None, description="optional {event, within}: status converted, counted, "
                              "ends it")
    limits: JourneyLimits | None = Field(default=None, description="optional {messages, per}: at most this many "
                                         "messages of this journey to one user per period, e.g. {messages: 3, "
                                         "per: 7d}")
    steps: list[Step] = Field(min_length=1, description="a list; a step without `next` goes on to the following "
                              "one; reaching the end completes the instance")
    messages: dict[str, Message] = Field(default_factory=dict, description="messages by name, each with content "
                                         "per channel")

    @field_validator("re_entry")
    @classmethod
    def _re_entry_duration(cls, value: str) -> str:
        if value.startswith("after"):
            parse_duration(value[len("after"):].strip())
        return value

    def re_entry_after(self) -> timedelta | None:
        """The `after <duration>` of re_entry, or None for always/never."""
        if not self.re_entry.startswith("after"):
            return None
        return parse_duration(self.re_entry[len("after"):].strip())
