"""What a person has done with the messages sent to them, per channel: how many were sent,
delivered, failed and engaged with (the channel's engagement events in the policy, or a reply),
when they last engaged, at which local hours, and the sent and engaged figures again with a decay,
so that recent behaviour counts more than old.

Pure values with a JSON form, the profile's `engagement` (docs/formats.md). The engine updates
them from the events it receives (engine/service/engagement.py); the channel choice reads them
(channels/reach.py). Each feedback counts once per message and kind: the latest `TRACKED`
messages of a channel are remembered with what was counted for them, and feedback for a message
not among them (older, or never sent to this person on that channel) counts nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from channels.timestamps import format_timestamp, read_timestamp

HOURS = 24
TRACKED = 20
"""The latest messages per channel whose feedback is counted, each once per kind."""
KINDS: Mapping[str, int] = {"delivered": 1, "failed": 2, "engaged": 4}
"""What feedback may count for a message, as the bits remembered for it."""
NO_HOURS: tuple[int, ...] = (0,) * HOURS


def decay(as_of: datetime | None, now: datetime, half_life: timedelta) -> float:
    """How much a figure as of `as_of` still counts at `now`: a half every `half_life`."""
    if as_of is None or now <= as_of:
        return 1.0
    return float(0.5 ** ((now - as_of) / half_life))


@dataclass(frozen=True, slots=True)
class ChannelEngagement:
    """One person on one channel. `recent_sent` and `recent_engaged` are the counts decayed to
    `as_of` (each message counted at its own time, halved every half-life since); `tracked` holds
    the latest messages and the kinds of feedback counted for each."""

    sent: int = 0
    delivered: int = 0
    failed: int = 0
    engaged: int = 0
    last_engaged_at: datetime | None = None
    by_hour: tuple[int, ...] = NO_HOURS
    recent_sent: float = 0.0
    recent_engaged: float = 0.0
    as_of: datetime | None = None
    tracked: tuple[tuple[str, int], ...] = ()
    as_of_seconds: float = field(init=False, repr=False, compare=False)
    """`as_of` in seconds since the epoch (infinite when None): what reach reads on every auto
    decision, where datetime arithmetic would cost more than the rest of the figure."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "as_of_seconds", math.inf if self.as_of is None else self.as_of.timestamp())

    @classmethod
    def given(cls, counts: tuple[int, int, int, int], last_engaged_at: datetime | None, by_hour: Mapping[str, int],
              recent: tuple[float, float, datetime | None] | None) -> ChannelEngagement:
        """As a document gives it (validated): `counts` are sent, delivered, failed and engaged,
        `by_hour` keyed "0" to "23"; `recent` left out is the counts themselves, as of the first
        event that updates them."""
        hours = list(NO_HOURS)
        for hour, count in by_hour.items():
            hours[int(hour)] = count
        sent, delivered, failed, engaged = counts
        recent_sent, recent_engaged, as_of = recent or (float(sent), float(engaged), None)
        return cls(sent, delivered, failed, engaged, last_engaged_at, tuple(hours), recent_sent, recent_engaged,
                   as_of)

    def recent(self, now: datetime, half_life: timedelta) -> tuple[float, float]:
        """(sent, engaged) decayed to `now`."""
        factor = decay(self.as_of, now, half_life)
        return self.recent_sent * factor, self.recent_engaged * factor

    def after_send(self, message_id: str, at: datetime, half_life: timedelta) -> ChannelEngagement:
        """One more message sent at `at`."""
        as_of, old, new = self._decayed_to(at, half_life)
        return replace(self, sent=self.sent + 1, recent_sent=self.recent_sent * old + new,
                       recent_engaged=self.recent_engaged * old, as_of=as_of,
                       tracked=((*self.tracked, (message_id, 0)))[-TRACKED:])

    def after_feedback(self, message_id: str, kind: str, at: datetime, hour: int, half_life: timedelta,
                       ) -> ChannelEngagement | None:
        """`kind` (delivered, failed, engaged) for one of the tracked messages, at local `hour`;
        None when it counts nothing (an unknown message, or this kind counted for it already)."""
        bit = KINDS[kind]
        for n, (tracked_id, counted) in enumerate(self.tracked):
            if tracked_id == message_id:
                if counted & bit:
                    return None
                tracked = (*self.tracked[:n], (message_id, counted | bit), *self.tracked[n + 1:])
                return self._counted(kind, at, hour, half_life, tracked)
        return None

    def _counted(self, kind: str, at: datetime, hour: int, half_life: timedelta,
                 tracked: tuple[tuple[str, int], ...]) -> ChannelEngagement:
        if kind == "delivered":
            return replace(self, delivered=self.delivered + 1, tracked=tracked)
        if kind == "failed":
            return replace(self, failed=self.failed + 1, tracked=tracked)
        as_of, old, new = self._decayed_to(at, half_life)
        hours = list(self.by_hour)
        hours[hour] += 1
        last = at if self.last_engaged_at is None or at > self.last_engaged_at else self.last_engaged_at
        return replace(self, engaged=self.engaged + 1, last_engaged_at=last, by_hour=tuple(hours),
                       recent_sent=self.recent_sent * old, recent_engaged=self.recent_engaged * old + new,
                       as_of=as_of, tracked=tracked)

    def _decayed_to(self, at: datetime, half_life: timedelta) -> tuple[datetime, float, float]:
        """The new `as_of` (the later of the two), and how much the figures so far and the one
        thing counted at `at` weigh then (events may come in out of order)."""
        as_of = at if self.as_of is None or at > self.as_of else self.as_of
        return as_of, decay(self.as_of, as_of, half_life), decay(at, as_of, half_life)

    def to_dict(self, digits: int | None = 4) -> dict[str, Any]:
        """The profile's `engagement.<channel>` (docs/formats.md); the decayed figures to `digits`."""
        recent_sent, recent_engaged = self.recent_sent, self.recent_engaged
        if digits is not None:
            recent_sent, recent_engaged = round(recent_sent, digits), round(recent_engaged, digits)
        return {"sent": self.sent, "delivered": self.delivered, "failed": self.failed, "engaged": self.engaged,
                "last_engaged_at": _time(self.last_engaged_at),
                "by_hour": {str(h): n for h, n in enumerate(self.by_hour) if n},
                "recent": {"sent": recent_sent, "engaged": recent_engaged, "as_of": _time(self.as_of)}}

    def stored(self) -> dict[str, Any]:
        """What a store keeps: the document, exact, and the tracked messages."""
        return {**self.to_dict(digits=None), "tracked": [list(item) for item in self.tracked]}


Engagement = Mapping[str, ChannelEngagement]


def engagement_to_dict(engagement: Engagement | None) -> dict[str, Any]:
    return {channel: value.to_dict() for channel, value in (engagement or {}).items()}


def engagement_stored(engagement: Engagement) -> dict[str, Any]:
    return {channel: value.stored() for channel, value in engagement.items()}


def engagement_from_stored(data: Mapping[str, Any] | None) -> dict[str, ChannelEngagement] | None:
    """A store's document read back: validated when it came in, so not parsed again."""
    if data is None:
        return None
    return {channel: _from_stored(doc) for channel, doc in data.items()}


def _from_stored(doc: Mapping[str, Any]) -> ChannelEngagement:
    recent = doc.get("recent") or {}
    hours = list(NO_HOURS)
    for hour, count in (doc.get("by_hour") or {}).items():
        hours[int(hour)] = int(count)
    return ChannelEngagement(
        sent=doc["sent"], delivered=doc["delivered"], failed=doc["failed"], engaged=doc["engaged"],
        last_engaged_at=_read(doc.get("last_engaged_at")), by_hour=tuple(hours),
        recent_sent=float(recent.get("sent", doc["sent"])), recent_engaged=float(recent.get("engaged", doc["engaged"])),
        as_of=_read(recent.get("as_of")), tracked=tuple((str(m), int(c)) for m, c in doc.get("tracked") or ()))


def _read(value: str | None) -> datetime | None:
    return None if value is None else read_timestamp(value)


def _time(value: datetime | None) -> str | None:
    return None if value is None else format_timestamp(value)


class _Recent(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    sent: float = Field(ge=0, allow_inf_nan=False)
    engaged: float = Field(ge=0, allow_inf_nan=False)
    as_of: datetime | None = None

    @field_validator("as_of", mode="before")
    @classmethod
    def _timestamp(cls, value: Any) -> datetime | None:
        return None if value is None else read_timestamp(value)


class ChannelEngagementDoc(BaseModel):
    """`engagement.<channel>` as a profile document gives it: history from another tool, say.
    Left out: `recent` is the counts themselves, as of the first event that updates them."""

    model_config = ConfigDict(extra="forbid", strict=True)

    sent: int = Field(default=0, ge=0)
    delivered: int = Field(default=0, ge=0)
    failed: int = Field(default=0, ge=0)
    engaged: int = Field(default=0, ge=0)
    last_engaged_at: datetime | None = None
    by_hour: dict[str, int] = {}
    recent: _Recent | None = None

    @field_validator("last_engaged_at", mode="before")
    @classmethod
    def _timestamp(cls, value: Any) -> datetime | None:
        return None if value is None else read_timestamp(value)

    @field_validator("by_hour")
    @classmethod
    def _hours(cls, value: dict[str, int]) -> dict[str, int]:
        problem = hours_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    def value(self) -> ChannelEngagement:
        recent = None if self.recent is None else (self.recent.sent, self.recent.engaged, self.recent.as_of)
        return ChannelEngagement.given((self.sent, self.delivered, self.failed, self.engaged), self.last_engaged_at,
                                       self.by_hour, recent)


_HOUR_KEYS = frozenset(str(h) for h in range(HOURS))


def hours_problem(by_hour: Mapping[str, int]) -> str | None:
    """What is wrong with a document's `by_hour`, if anything (said without the field's name)."""
    for hour, count in by_hour.items():
        if hour not in _HOUR_KEYS:
            return f"{hour!r} is not an hour of the day (\"0\" to \"23\")"
        if count < 0:
            return f"hour {hour}: {count} is not a count"
    return None


def best_hours(engagement: Engagement | None) -> tuple[int, ...]:
    """Engagements by local hour of day, every channel together."""
    if not engagement:
        return NO_HOURS
    return tuple(sum(hours) for hours in zip(*(e.by_hour for e in engagement.values()), strict=True))
