"""Events as the engine sees them, parsed from JSON (docs/formats.md) at the edge.

Parsing is hand-written rather than pydantic because it sits on the ingest hot path;
every error still names the field, as `EventError`.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from channels.profile import format_timestamp as format_time
from channels.values import quick_init
from engine.errors import EventError

_FIELDS = frozenset({"id", "type", "user_id", "timestamp", "properties"})
# The statuses provider feedback (`<channel>.<status>`) carries: what a message goes through
# (Twilio's and the other providers' callbacks) and what counts as engagement with it.
FEEDBACK_STATUSES = frozenset({"queued", "sending", "sent", "delivered", "read", "opened", "clicked", "failed",
                               "bounced"})
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)  # exclusive: far enough for any schedule, short of overflows
_EMPTY: Mapping[str, Any] = {}


def looks_like_feedback(event_type: str, channels: Collection[str]) -> str | None:
    """The status of `<channel>.<word>` named after one of `channels`, feedback or not (None
    for any other name): the caller decides whether the word is a status it knows."""
    channel, dot, word = event_type.partition(".")
    return word if dot and word and channel in channels else None


@quick_init
@dataclass(frozen=True, slots=True)
class Event:
    type: str
    user_id: str
    timestamp: datetime
    properties: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    id: str | None = None

    def context(self) -> dict[str, Any]:
        """The `event` name seen by expressions and templates."""
        return {
            "id": self.id, "type": self.type, "user_id": self.user_id,
            "timestamp": format_time(self.timestamp), "properties": self.properties,
        }

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "type": self.type, "user_id": self.user_id,
                "timestamp": format_time(self.timestamp), "properties": dict(self.properties)}

    def with_properties(self, **extra: Any) -> Event:
        return Event(self.type, self.user_id, self.timestamp, {**self.properties, **extra}, self.id)


def parse_time(value: object, field_name: str) -> datetime:
    """An RFC 3339 timestamp with an offset, as aware UTC."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip().replace("z", "Z"))
        except ValueError:
            raise EventError(f"{field_name}: {value!r} is not an RFC 3339 timestamp") from None
    else:
        raise EventError(f"{field_name}: expected an RFC 3339 timestamp string, got {type(value).__name__}")
    if parsed.tzinfo is None:
        raise EventError(f"{field_name}: {value!r} has no time zone offset (add 'Z' for UTC)")
    try:
        utc = parsed.astimezone(UTC)
    except OverflowError:
        utc = EARLIEST - timedelta(days=1) if parsed.year < 2000 else LATEST
    if not EARLIEST <= utc < LATEST:
        raise EventError(f"{field_name}: {value!s} is outside the supported range, "
                         f"{format_time(EARLIEST)} to {format_time(LATEST - timedelta(seconds=1))}")
    return utc


def parse_event(data: object, now: datetime) -> Event:
    """Validate one event (docs/formats.md); `now` fills a missing timestamp."""
    if not isinstance(data, Mapping):
        raise EventError(f"event: expected a JSON object, got {type(data).__name__}")
    unknown = sorted(set(data) - _FIELDS)
    if unknown:
        raise EventError(f"{unknown[0]}: unknown field (an event has id, type, user_id, timestamp, properties)")
    kind = _required_text(data, "type")
    user_id = _required_text(data, "user_id")
    raw_time = data.get("timestamp")
    timestamp = now if raw_time is None else parse_time(raw_time, "timestamp")
    properties = data.get("properties")
    if properties is None:
        properties = _EMPTY
    elif not isinstance(properties, Mapping):
        raise EventError(f"properties: expected an object, got {type(properties).__name__}")
    else:
        check_values(properties, "properties")
    event_id = data.get("id")
    if event_id is not None and (not isinstance(event_id, str) or not event_id or "\x00" in event_id):
        raise EventError("id: expected a non-empty string without NUL characters")
    if event_id is not None:
        check_text(event_id, "id")
    return Event(kind, user_id, timestamp, properties, event_id)


def check_text(value: str, name: str) -> None:
    """A string the stores can keep: no lone UTF-16 surrogate (JSON's `\\ud800` escapes allow one)."""
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise EventError(f"{name}: contains a lone UTF-16 surrogate, which is not text") from None


def check_values(value: Any, name: str) -> None:
    """Every string (keys too) and number inside a JSON value: text without lone surrogates, numbers
    finite (`1e999` parses as infinity). Raises EventError naming the path."""
    if isinstance(value, str):
        check_text(value, name)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise EventError(f"{name}: {value} is not a finite number")
    elif isinstance(value, Mapping):
        for key, item in value.items():
            check_text(str(key), name)
            check_values(item, f"{name}.{key}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            check_values(item, f"{name}[{index}]")


def _required_text(data: Mapping[str, Any], name: str) -> str:
    value = data.get(name)
    if value is None:
        raise EventError(f"{name}: required field is missing")
    if not isinstance(value, str) or not value.strip():
        raise EventError(f"{name}: expected a non-empty string")
    if "\x00" in value:
        raise EventError(f"{name}: must not contain a NUL character")
    check_text(value, name)
    return value
