"""The value types of the API's request bodies: each parses a JSON value by the engine's own rules
(`engine.events`, `channels.profile`) and says in its JSON Schema what it takes, so the models built
from them (`engine.http.bodies`) both parse and document.

A rule refuses with the engine's words and no field name (pydantic's error carries the place):
`user_id: expected a non-empty string`, `properties.total: inf is not a finite number`. Where the
fault lies below the field (a member of `properties`), the error's `below` names the rest of the
path, which the problem handler (`engine.http.problems`) appends. A schema says what JSON Schema can:
a timestamp's year range as a pattern, the IANA zones and CLDR's locales as enums, a phone number as `format: e164`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, PlainValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

from channels.locales import check_locale, locales
from channels.profile import (
    EMAIL_PATTERN,
    check_email,
    check_phone,
    check_zone,
    read_timestamp,
    time_zones,
)
from engine.errors import EventError, HttpError
from engine.events import id_problem, name_problem, parse_time, text_problem, unstorable

IN_RANGE = r"^(19[7-9][0-9]|20[0-9][0-9])-"
"""A timestamp's year, 1970 to 2099: the range every stored time is held to (the pattern says what
`format: date-time` cannot)."""
TEXT = r"^[^\x00]*$"  # no NUL character: PostgreSQL cannot store one
SOME_TEXT = r"^[^\x00]+$"
A_NAME = r"^[^\x00]*[^\s\x00][^\x00]*$"  # not blank either
E164 = r"^\+[1-9][0-9]{1,14}$"
Channel = Literal["push", "in_app", "email", "sms", "mms", "rcs", "webhook"]
Category = Literal["marketing", "transactional"]


def refused(reason: str, below: str = "") -> PydanticCustomError:
    """A value refused by a rule: `reason` in the engine's words, `below` the path under the field."""
    return PydanticCustomError("refused", "{reason}", {"reason": reason, "below": below})


def _string(value: object) -> str:
    if not isinstance(value, str):
        raise refused(f"expected a string, got {type(value).__name__}")
    return value


def _by(problem: Callable[[Any], str | None]) -> Callable[[Any], Any]:
    def parse(value: Any) -> Any:
        reason = problem(value)
        if reason is not None:
            raise refused(reason)
        return value
    return parse


def _text(value: object) -> str:
    """Text the stores can keep: no NUL (PostgreSQL refuses it), no lone UTF-16 surrogate."""
    text = _string(value)
    if "\x00" in text:
        raise refused("must not contain a NUL character")
    problem = text_problem(text)
    if problem is not None:
        raise refused(problem)
    return text


def _some_text(value: object) -> str:
    text = _text(value)
    if not text:
        raise refused("must not be empty")
    return text


def _checked(check: Callable[[str], str]) -> Callable[[object], str]:
    """Text, then one of the profile's rules (a zone, an address, a number)."""
    def parse(value: object) -> str:
        text = _text(value)
        try:
            return check(text)
        except ValueError as exc:
            raise refused(str(exc)) from None
    return parse


def _timestamp(value: object) -> datetime:
    try:
        return read_timestamp(value)
    except ValueError as exc:
        raise refused(str(exc)) from None


def _json_object(value: object) -> dict[str, Any]:
    """Any JSON object whose every string and number can be stored."""
    if not isinstance(value, dict):
        raise refused(f"expected an object, got {type(value).__name__}")
    found = unstorable(value)
    if found is not None:
        raise refused(found[1], below=found[0])
    return value


Name = Annotated[str, PlainValidator(_by(name_problem)), WithJsonSchema({"type": "string", "pattern": A_NAME})]
"""An event's type or user: not blank."""
EventId = Annotated[str, PlainValidator(_by(id_problem)), WithJsonSchema({"type": "string", "pattern": SOME_TEXT})]
Text = Annotated[str, PlainValidator(_text), WithJsonSchema({"type": "string", "pattern": TEXT})]
SomeText = Annotated[str, PlainValidator(_some_text), WithJsonSchema({"type": "string", "pattern": SOME_TEXT})]
Timestamp = Annotated[datetime, PlainValidator(_timestamp),
                      WithJsonSchema({"type": "string", "format": "date-time", "pattern": IN_RANGE})]
"""RFC 3339 with an offset, 1970 to 2099."""
JsonObject = Annotated[dict[str, Any], PlainValidator(_json_object), WithJsonSchema({"type": "object"})]
TimeZone = Annotated[str, PlainValidator(_checked(check_zone)),
                     WithJsonSchema({"type": "string", "enum": sorted(time_zones())})]
Locale = Annotated[str, PlainValidator(_checked(check_locale)),
                   WithJsonSchema({"type": "string", "enum": sorted(locales()), "examples": ["en-US", "fr-CA"]})]
"""A BCP 47 tag CLDR has data for, as it spells it: the enum lists them."""
Email = Annotated[str, PlainValidator(_checked(check_email)), WithJsonSchema({"type": "string",
                                                                               "pattern": EMAIL_PATTERN})]
Phone = Annotated[str, PlainValidator(_checked(check_phone)),
                  WithJsonSchema({"type": "string", "format": "e164", "pattern": E164, "examples": ["+14155550100"]})]
"""A valid phone number in E.164 (`format: e164`: the pattern says its shape; its country and number
plan decide the rest, as libphonenumber does)."""


def _whole(value: object) -> object:
    """A count written 20.0 is the count 20: JSON Schema's `integer` takes it (and other tools
    write numbers so), while the strict bodies would refuse it; a fraction is still refused."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


Count = Annotated[int, BeforeValidator(_whole)]


def query_instant(value: str | None, field: str) -> datetime | None:
    """A query parameter's RFC 3339 instant (None when absent); a bad one is the 422 naming `field`.
    One reading for every route that filters by time (messages, stats)."""
    try:
        return parse_time(value, field) if value is not None else None
    except EventError as exc:
        raise HttpError(422, str(exc)) from None
