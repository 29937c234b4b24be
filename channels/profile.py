"""Recipient profiles, their consent history and their engagement per channel.

The core works on frozen dataclasses; pydantic validates only at the JSON
edge (`Profile.from_dict`), so hot-path code never pays for validation.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import MappingProxyType
from typing import Any, Literal, NamedTuple
from zoneinfo import available_timezones

import phonenumbers
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from channels.engagement import ChannelEngagementDoc, Engagement, engagement_to_dict
from channels.locales import check_locale
from channels.policy import ChannelName
from channels.preferences import NO_PREFERENCES, Preferences, PreferencesError
from channels.timestamps import EARLIEST, LATEST, format_timestamp, read_timestamp
from channels.values import quick_init

__all__ = ["EARLIEST", "LATEST", "ConsentRecord", "Profile", "ProfileError", "format_timestamp", "read_timestamp",
           "time_zones"]

_EMPTY: Mapping[str, Any] = MappingProxyType({})
_NOT_IN_ADDRESS = r"@\s\x00-\x1f\x7f-\x9f\ufeff"  # what is blank to Python or to JavaScript, and controls
EMAIL_PATTERN = rf"^[^{_NOT_IN_ADDRESS}]+@[^.{_NOT_IN_ADDRESS}]+(\.[^.{_NOT_IN_ADDRESS}]+)*$"
"""An address a mail server could take: a local part, `@`, a domain of non-empty labels, with no
space or control character. Not a full RFC 5321 parse (which would refuse little more); whether it
exists, only sending tells. The same text is the API document's pattern: Python's and JavaScript's
whitespace class differ (U+001C to U+001F and U+0085 are blank only to Python, U+FEFF only to
JavaScript), so the characters they disagree on are named too."""
_EMAIL = re.compile(EMAIL_PATTERN)


class ProfileError(ValueError):
    """A profile document is invalid; the message names the field."""


class ConsentRecord(NamedTuple):
    """One consent change; the ledger of these is never rewritten. (An immutable tuple rather than
    a frozen dataclass: every channel decision looks the profile's ledger up by its hash, which a
    tuple computes in C, three times faster.)"""

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


@dataclass(frozen=True, slots=True)
class RcsCapability:
    """What a provider answered when asked whether the phone takes RCS: the cached answer,
    trusted until it is older than the provider's TTL (then asked again before an RCS send)."""

    capable: bool
    checked_at: datetime
    source: str

    def to_dict(self) -> dict[str, Any]:
        return {"capable": self.capable, "checked_at": format_timestamp(self.checked_at), "source": self.source}

    @classmethod
    def stored(cls, doc: Mapping[str, Any] | None) -> RcsCapability | None:
        """Read back from a stored profile document (validated when it was written)."""
        if not doc:
            return None
        return cls(bool(doc["capable"]), read_timestamp(doc["checked_at"]), str(doc["source"]))


@quick_init
@dataclass(frozen=True, slots=True)
class Profile:
    """What the channel layer needs to know about one recipient. `rcs_capable` is what is
    believed; `rcs_capability` says it was a provider's answer (when, which), else it is assumed."""

    user_id: str
    timezone: str | None = None
    email: str | None = None
    phone: str | None = None
    push_token: str | None = None
    rcs_capable: bool = False
    attributes: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    consents: tuple[ConsentRecord, ...] = ()
    rcs_capability: RcsCapability | None = None
    engagement: Engagement | None = None  # None: none given (an upsert keeps what is stored)
    locale: str | None = None  # BCP 47 (`fr-CA`): the language and formats of what they receive
    preferences: Preferences = NO_PREFERENCES  # what they turned off (channels/preferences.py)

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
            "locale": self.locale,
            "email": self.email,
            "phone": self.phone,
            "push_token": self.push_token,
            "rcs_capable": self.rcs_capable,
            "attributes": dict(self.attributes),
            "consents": [c.to_dict() for c in self.consents],
            "rcs_capability": self.rcs_capability.to_dict() if self.rcs_capability else None,
            "engagement": engagement_to_dict(self.engagement),
            **({"preferences": self.preferences.to_dict()} if self.preferences else {}),
        }

    def with_capability(self, capability: RcsCapability) -> Profile:
        """A copy that believes a provider's answer."""
        return replace(self, rcs_capable=capability.capable, rcs_capability=capability)

    def with_consents(self, records: Iterable[ConsentRecord]) -> Profile:
        """A copy with `records` appended: history is kept, never overwritten."""
        return replace(self, consents=self.consents + tuple(records))


@functools.cache
def time_zones() -> frozenset[str]:
    """The IANA time zones a profile's `timezone` may name: every one this machine's zoneinfo knows
    (read once; the API's document lists the same)."""
    return frozenset(available_timezones())


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        message = err["msg"].removeprefix("Value error, ")
        parts.append(f"{field_path(err['loc']) or 'profile'}: {message}")
    return "; ".join(parts)


def field_path(loc: Iterable[int | str]) -> str:
    """A field's path as every error names it: `consents[0].at`, `attributes.score`."""
    path = ""
    for part in loc:
        if part == "[key]":  # a bad key of a mapping: named by the key, which comes before
            continue
        path += f"[{part}]" if isinstance(part, int) else f".{part}" if path else str(part)
    return path


# The rules for a profile's addresses, each raising ValueError saying what is wrong (without the
# field's name): the profile document below applies them, and so do the HTTP API's body models.

def check_zone(value: str) -> str:
    if value not in time_zones():
        raise ValueError(f"unknown IANA time zone {value!r}")
    return value


def check_email(value: str) -> str:
    if not _EMAIL.fullmatch(value):
        raise ValueError(f"{value!r} is not an email address (name@domain)")
    return value


def check_phone(value: str) -> str:
    """A valid number in E.164, as libphonenumber knows the country's number plan."""
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"{value!r} is not an E.164 number (+<country><number>)") from exc
    formatted = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if formatted != value or not phonenumbers.is_valid_number(number):
        raise ValueError(f"{value!r} is not a valid E.164 number (+<country><number>)")
    return value


def _no_nul(value: Any) -> Any:
    """Text with NUL (0x00) cannot be stored (PostgreSQL refuses it): reject it at the door."""
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("must not contain a NUL character")
    return value


class _ConsentDoc(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)  # JSON's own types: `granted: 0` is no boolean

    @field_validator("source", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        return _no_nul(value)

    channel: Literal["push", "in_app", "email", "sms", "mms", "rcs", "webhook"]
    category: Literal["marketing", "transactional"]
    granted: bool
    source: str | None = None
    at: datetime

    @field_validator("at", mode="before")
    @classmethod
    def _timestamp(cls, value: Any) -> datetime:
        """A string, as the documents say (`0` is not taken for 1970), held to the range of events."""
        return read_timestamp(value)


class _CapabilityDoc(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    capable: bool
    checked_at: datetime
    source: str

    @field_validator("checked_at", mode="before")
    @classmethod
    def _timestamp(cls, value: Any) -> datetime:
        return read_timestamp(value)

    @field_validator("source", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        return _no_nul(value)


class _ProfileDoc(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    @field_validator("user_id", "timezone", "locale", "email", "phone", "push_token", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        return _no_nul(value)

    user_id: str
    timezone: str | None = None
    locale: str | None = None
    email: str | None = None
    phone: str | None = None
    push_token: str | None = None
    rcs_capable: bool = False
    attributes: dict[str, Any] = {}
    consents: list[_ConsentDoc] = []
    rcs_capability: _CapabilityDoc | None = None
    engagement: dict[ChannelName, ChannelEngagementDoc] | None = None
    preferences: Any = None

    @field_validator("preferences")
    @classmethod
    def _preferences(cls, value: Any) -> Preferences:
        try:
            return Preferences.from_dict(value)
        except PreferencesError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("user_id")
    @classmethod
    def _non_empty(cls, value: str) -> str:
        if not value:
            raise ValueError("must not be empty")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        return None if value is None else check_zone(value)

    @field_validator("locale")
    @classmethod
    def _known_locale(cls, value: str | None) -> str | None:
        return None if value is None else check_locale(value)

    @field_validator("email")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        return None if value is None else check_email(value)

    @field_validator("phone")
    @classmethod
    def _e164(cls, value: str | None) -> str | None:
        return None if value is None else check_phone(value)

    def to_profile(self) -> Profile:
        consents = tuple(ConsentRecord(c.channel, c.category, c.granted, c.source, c.at) for c in self.consents)
        return Profile(
            user_id=self.user_id,
            timezone=self.timezone,
            email=self.email,
            phone=self.phone,
            push_token=self.push_token,
            rcs_capable=self.rcs_capable if self.rcs_capability is None else self.rcs_capability.capable,
            attributes=MappingProxyType(dict(self.attributes)),
            consents=consents,
            rcs_capability=None if self.rcs_capability is None else RcsCapability(
                self.rcs_capability.capable, self.rcs_capability.checked_at, self.rcs_capability.source),
            engagement=None if self.engagement is None else
            MappingProxyType({channel: doc.value() for channel, doc in self.engagement.items()}),
            locale=self.locale,
            preferences=self.preferences if isinstance(self.preferences, Preferences) else NO_PREFERENCES,
        )
