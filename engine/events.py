"""Events as the engine sees them, parsed from JSON (docs/formats.md) at the edge.

Parsing is hand-written rather than pydantic because it sits on the ingest hot path;
every error still names the field, as `EventError`.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from channels.profile import format_timestamp as format_time
from channels.profile import read_timestamp
from channels.values import quick_init
from engine.errors import EventError

_FIELDS = frozenset({"id", "type", "user_id", "timestamp", "properties"})
# The statuses provider feedback (`<channel>.<status>`) carries: what a message goes through
# (Twilio's and the other providers' callbacks) and what counts as engagement with it.
FEEDBACK_STATUSES = frozenset({"queued", "sending", "sent", "delivered", "seen", "read", "opened", "clicked", "failed",
                               "bounced", "archived"})
REPLIES = {"rcs.reply": "replied"}
"""What people send back that answers one message: pinned to it like feedback (by
`properties.message_id`, else the user's latest message on the channel), setting this status."""
INBOUND = frozenset({"sms.inbound", *REPLIES})
"""What people send: keywords (STOP, START, HELP) are read from their `properties.text`."""
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
    """An RFC 3339 timestamp with an offset, as aware UTC, between `EARLIEST` and `LATEST`."""
    try:
        return read_timestamp(value)
    except ValueError as exc:
        raise EventError(f"{field_name}: {exc}") from None


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
    if event_id is not None:
        _refuse("id", id_problem(event_id))
    return Event(kind, user_id, timestamp, properties, event_id)


# The rules for the values of an event, each saying why a value breaks it (None: it does not),
# without the field's name: `parse_event` adds the name, and the HTTP API's body models
# (engine.http.fields) apply the same rules to every field of theirs.

LONE_SURROGATE = "contains a lone UTF-16 surrogate, which is not text"


def text_problem(value: str) -> str | None:
    """A string the stores can keep: no lone UTF-16 surrogate (JSON's `\\ud800` escapes allow one)."""
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return LONE_SURROGATE
    return None


def name_problem(value: object) -> str | None:
    """A name (an event's type, a user's id): a string, not blank, without NUL."""
    if not isinstance(value, str) or not value.strip():
        return "expected a non-empty string"
    if "\x00" in value:
        return "must not contain a NUL character"
    return text_problem(value)


def id_problem(value: object) -> str | None:
    """An event's id (its idempotency key): a non-empty string without NUL."""
    if not isinstance(value, str) or not value or "\x00" in value:
        return "expected a non-empty string without NUL characters"
    return text_problem(value)


def unstorable(value: Any) -> tuple[str, str] | None:
    """The first string (keys too) or number inside a JSON value that the stores cannot keep, as
    (its path below `value`, such as `.total` or `[2]`, and why): text with a lone surrogate, a
    number that is not finite (`1e999` parses as infinity)."""
    if isinstance(value, str):
        problem = text_problem(value)
        return None if problem is None else ("", problem)
    if isinstance(value, float):
        return None if math.isfinite(value) else ("", f"{value} is not a finite number")
    if value is None or isinstance(value, int):
        return None
    if isinstance(value, Mapping):
        for key, item in value.items():
            if (problem := text_problem(str(key))) is not None:
                return "", problem
            if (found := unstorable(item)) is not None:
                return f".{key}{found[0]}", found[1]
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            if (found := unstorable(item)) is not None:
                return f"[{index}]{found[0]}", found[1]
    return None


def check_values(value: Any, name: str) -> None:
    """Every string (keys too) and number inside a JSON value can be stored (`unstorable`).
    Raises EventError naming the path."""
    found = unstorable(value)
    if found is not None:
        raise EventError(f"{name}{found[0]}: {found[1]}")


def _required_text(data: Mapping[str, Any], name: str) -> str:
    value = data.get(name)
    if value is None:
        raise EventError(f"{name}: required field is missing")
    _refuse(name, name_problem(value))
    return value  # name_problem found none: a string


def _refuse(name: str, problem: str | None) -> None:
    if problem is not None:
        raise EventError(f"{name}: {problem}")
