"""Recipient profiles and their consent history.

The core works on frozen dataclasses; pydantic validates only at the JSON
edge (`Profile.from_dict`), so hot-path code never pays for validation.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from channels.values import quick_init

_EMPTY: Mapping[str, Any] = MappingProxyType({})
_EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(\.[^@\s.]+)*")
"""An address a mail server could take: a local part, `@`, a domain of non-empty labels. Not a
full RFC 5321 parse (which would refuse little more); whether it exists, only sending tells."""


class ProfileError(ValueError):
    """A profile document is invalid; the message names the field."""


@quick_init
@dataclass(frozen=True, slots=True)
class ConsentRecord:
    """One consent change; the ledger of these is never rewritten."""

    channel: str
    category: str
    granted: bool
    source: str | None
    at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "category": self.category,
            "granted": self.granted,
            "source": self.source,
            "at": format_timestamp(self.at),
        }


@quick_init
@dataclass(frozen=True, slots=True)
class Profile:
    """What the channel layer needs to know about one recipient."""

    user_id: str
    timezone: str | None = None
    email: str | None = None
    phone: str | None = None
    push_token: str | None = None
    rcs_capable: bool = False
    attributes: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    consents: tuple[ConsentRecord, ...] = ()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Profile:
        """Validate a profile document (docs/formats.md); raises ProfileError naming the field."""
        try:
            doc = _ProfileDoc.model_validate(data)
        except ValidationError as exc:
            raise ProfileError(_describe(exc)) from exc
        return doc.to_profile()

    def to_dict(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "timezone": self.timezone,
            "email": self.email,
            "phone": self.phone,
            "push_token": self.push_token,
            "rcs_capable": self.rcs_capable,
            "attributes": dict(self.attributes),
            "consents": [c.to_dict() for c in self.consents],
        }

    def with_consents(self, records: Iterable[ConsentRecord]) -> Profile:
        """A copy with `records` appended: history is kept, never overwritten."""
        return replace(self, consents=self.consents + tuple(records))


_last_formatted: tuple[datetime, str] | None = None


def format_timestamp(at: datetime) -> str:
    """RFC 3339 in UTC with a 'Z', the one timestamp shape in every output. A batch stamps
    most of what it writes with the same instant, so the last one formatted is kept."""
    global _last_formatted
    last = _last_formatted
    if last is not None and last[0] == at:  # equal instants print alike; naive never equals aware
        return last[1]
    text = at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    _last_formatted = (at, text)
    return text


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "profile"
        message = err["msg"].removeprefix("Value error, ")
        parts.append(f"{loc}: {message}")
    return "; ".join(parts)


def _no_nul(value: Any) -> Any:
    """Text with NUL (0x00) cannot be stored (PostgreSQL refuses it): reject it at the door."""
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("must not contain a NUL character")
    return value


class _ConsentDoc(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("source", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        return _no_nul(value)

    channel: Literal["push", "in_app", "email", "sms", "mms", "rcs", "webhook"]
    category: Literal["marketing", "transactional"]
    granted: bool
    source: str | None = None
    at: datetime

    @field_validator("at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("timestamp needs a time zone (e.g. a trailing 'Z')")
        return value.astimezone(UTC)


class _ProfileDoc(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("user_id", "timezone", "email", "phone", "push_token", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        return _no_nul(value)

    user_id: str
    timezone: str | None = None
    email: str | None = None
    phone: str | None = None
    push_token: str | None = None
    rcs_capable: bool = False
    attributes: dict[str, Any] = {}
    consents: list[_ConsentDoc] = []

    @field_validator("user_id")
    @classmethod
    def _non_empty(cls, value: str) -> str:
        if not value:
            raise ValueError("must not be empty")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise ValueError(f"unknown IANA time zone {value!r}") from exc
        return value

    @field_validator("email")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is not None and not _EMAIL.fullmatch(value):
            raise ValueError(f"{value!r} is not an email address (name@domain)")
        return value

    @field_validator("phone")
    @classmethod
    def _e164(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            number = phonenumbers.parse(value, None)
        except phonenumbers.NumberParseException as exc:
            raise ValueError(f"{value!r} is not an E.164 number (+<country><number>)") from exc
        formatted = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        if formatted != value or not phonenumbers.is_valid_number(number):
            raise ValueError(f"{value!r} is not a valid E.164 number (+<country><number>)")
        return value

    def to_profile(self) -> Profile:
        consents = tuple(ConsentRecord(c.channel, c.category, c.granted, c.source, c.at) for c in self.consents)
        return Profile(
            user_id=self.user_id,
            timezone=self.timezone,
            email=self.email,
            phone=self.phone,
            push_token=self.push_token,
            rcs_capable=self.rcs_capable,
            attributes=MappingProxyType(dict(self.attributes)),
            consents=consents,
        )
