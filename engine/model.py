"""Journey definitions as the YAML author wrote them (SPEC §1), validated at load.

Pydantic is used here because this is the edge where untrusted YAML becomes data;
unknown keys are rejected everywhere so a typo is an error, not a silently ignored key.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

CHANNELS = ("push", "in_app", "email", "sms", "mms", "rcs", "webhook")
Channel = Literal["push", "in_app", "email", "sms", "mms", "rcs", "webhook"]
Urgency = Literal["low", "normal", "high", "critical"]
Strategy = Literal["escalate", "all", "first", "cheapest"]
Category = Literal["marketing", "transactional"]

_SHORT_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_ISO_DURATION = re.compile(
    r"^P(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?"
    r"(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
DURATION_PATTERN = r"^(\d+(\.\d+)?\s*[smhdw]|P(\d+W)?(\d+D)?(T(\d+(\.\d+)?H)?(\d+(\.\d+)?M)?(\d+(\.\d+)?S)?)?)$"
HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


def parse_duration(value: object) -> timedelta:
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
        return timedelta(
            weeks=parts.get("w", 0), days=parts.get("d", 0), hours=parts.get("h", 0),
            minutes=parts.get("m", 0), seconds=parts.get("s", 0),
        )
    raise ValueError(f"invalid duration {value!r}: use 30s, 15m, 2h, 1d, 1w or ISO 8601 like PT2H")


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
    if isinstance(value, str) and value.strip().startswith("-"):
        return -parse_duration(value.strip()[1:])
    return parse_duration(value)


SignedDuration = Annotated[
    timedelta,
    BeforeValidator(_parse_signed_duration),
    WithJsonSchema({"type": "string", "pattern": "^-?" + DURATION_PATTERN[1:], "examples": ["-24h"]}),
]


class Strict(BaseModel):
    """Every model rejects unknown keys and is immutable once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Trigger(Strict):
    event: str = Field(min_length=1)
    when: str | None = None


class Goal(Strict):
    event: str = Field(min_length=1)
    within: Duration | None = None


class StepBase(Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class SendStep(StepBase):
    type: Literal["send"]
    message: str
    channels: list[Channel] | None = Field(default=None, min_length=1)
    strategy: Strategy | None = None
    escalate_after: Duration | None = None
    urgency: Urgency = "normal"
    next: str | None = None

    @model_validator(mode="after")
    def _escalate_after_needs_escalation(self) -> SendStep:
        if self.escalate_after is not None and self.strategy not in (None, "escalate"):
            raise ValueError(f"escalate_after only applies to strategy escalate, not {self.strategy}")
        return self


class WaitStep(StepBase):
    type: Literal["wait"]
    duration: Duration | None = None
    until: str | None = None
    offset: SignedDuration | None = Field(
        default=None, description="with `until: <expression>`: shift, e.g. -24h"
    )
    next: str | None = None

    @model_validator(mode="after")
    def _one_of_duration_until(self) -> WaitStep:
        if (self.duration is None) == (self.until is None):
            raise ValueError("a wait needs exactly one of 'duration' or 'until'")
        if self.offset is not None and (self.until is None or HHMM.match(self.until)):
            raise ValueError("'offset' only applies to 'until: <expression>'")
        return self


class WaitForStep(StepBase):
    type: Literal["wait_for"]
    event: str = Field(min_length=1)
    when: str | None = None
    timeout: Duration
    on_event: str | None = None
    on_timeout: str | None = None


class BranchCase(Strict):
    when: str
    next: str


class BranchStep(StepBase):
    type: Literal["branch"]
    branches: list[BranchCase] = Field(min_length=1)
    default: str | None = None


class SplitPath(Strict):
    weight: float = Field(gt=0)
    next: str


class SplitStep(StepBase):
    type: Literal["split"]
    paths: list[SplitPath] = Field(min_length=2)


class ExitStep(StepBase):
    type: Literal["exit"]


Step = Annotated[
    SendStep | WaitStep | WaitForStep | BranchStep | SplitStep | ExitStep,
    Field(discriminator="type"),
]
STEP_TYPES = ("send", "wait", "wait_for", "branch", "split", "exit")


class PushContent(Strict):
    title: str | None = None
    body: str
    data: dict[str, str] | None = None


class SmsContent(Strict):
    text: str


class EmailContent(Strict):
    subject: str
    body: str
    html: str | None = None


class MmsContent(Strict):
    text: str | None = None
    media_url: str | None = None


class RcsCard(Strict):
    title: str | None = None
    description: str | None = None
    media_url: str | None = None


class RcsSuggestion(Strict):
    reply: str | None = None
    open_url: str | None = None
    dial: str | None = None
    text: str | None = None


class RcsContent(Strict):
    text: str | None = None
    card: RcsCard | None = None
    suggestions: list[RcsSuggestion] | None = None


class InAppContent(Strict):
    title: str | None = None
    body: str


class WebhookContent(Strict):
    payload: dict[str, Any]


class Message(Strict):
    push: PushContent | None = None
    sms: SmsContent | None = None
    email: EmailContent | None = None
    mms: MmsContent | None = None
    rcs: RcsContent | None = None
    in_app: InAppContent | None = None
    webhook: WebhookContent | None = None

    def channels(self) -> tuple[str, ...]:
        """Channels this message has content for, in catalogue order."""
        return tuple(c for c in CHANNELS if getattr(self, c) is not None)


class Journey(Strict):
    """One journey file. Cross-references are checked by the compiler, not here."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, json_schema_extra={"title": "journey-engine journey"}
    )

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    name: str | None = None
    description: str | None = None
    category: Category = "marketing"
    trigger: Trigger
    instance_key: str | None = None
    re_entry: str = Field(default="always", pattern=r"^(always|never|after\s+\S+)$")
    exit_on: list[str] = Field(default_factory=list)
    goal: Goal | None = None
    steps: list[Step] = Field(min_length=1)
    messages: dict[str, Message] = Field(default_factory=dict)

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
