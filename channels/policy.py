"""The channel policy: quiet hours, caps, prices, engagement events, SMS keywords per language.

The model is validated once at load time; `select()` reads the precomputed
lookups in `Policy.fast` so the hot path never touches pydantic.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import cache, cached_property
from importlib import resources
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from channels.yaml_lines import FileError, describe_errors, read_mapping

ChannelName = Literal["push", "in_app", "email", "sms", "mms", "rcs", "webhook"]
CHANNELS: tuple[str, ...] = ("push", "in_app", "email", "sms", "mms", "rcs", "webhook")
CATEGORIES: tuple[str, ...] = ("marketing", "transactional")
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


class PolicyError(FileError):
    """A policy file is invalid; str() is one `file:line: message` line per problem."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class QuietHours(_Frozen):
    start: str
    end: str
    categories: tuple[Literal["marketing", "transactional"], ...] = ("marketing",)

    @field_validator("start", "end")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        if not _HHMM.match(value):
            raise ValueError(f"{value!r} is not a time of day HH:MM (00:00 to 23:59)")
        return value


class Cap(_Frozen):
    per_day: int | None = Field(default=None, ge=0)
    per_week: int | None = Field(default=None, ge=0)


class SmsPolicy(_Frozen):
    max_segments: int = Field(ge=1)


class ChannelPolicy(_Frozen):
    cost: float = Field(ge=0)
    engagement: tuple[str, ...] = ()


class KeywordReplies(_Frozen):
    stop_confirmation: str = Field(min_length=1)
    start_confirmation: str = Field(min_length=1)
    help: str = Field(min_length=1)


KEYWORD_KINDS: tuple[str, ...] = ("stop", "start", "help")
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


class KeywordSet(_Frozen):
    """One language's inbound words (whole text, any case, accents ignored) and its replies."""

    stop: tuple[str, ...] = ()
    start: tuple[str, ...] = ()
    help: tuple[str, ...] = ()
    replies: KeywordReplies

    @model_validator(mode="after")
    def _one_meaning_per_word(self) -> KeywordSet:
        seen: dict[str, str] = {}
        for kind in KEYWORD_KINDS:
            for word in getattr(self, kind):
                key = keyword_key(word)
                if not key:
                    raise ValueError(f"{kind}: an empty keyword never matches")
                if seen.setdefault(key, kind) != kind:
                    raise ValueError(f"{word!r} is both a {seen[key]} and a {kind} word")
        return self


@dataclass(frozen=True, slots=True)
class FastPolicy:
    """Plain lookups derived once from the policy, for the per-send hot path."""

    default_zone: ZoneInfo
    quiet_start: int  # minutes after local midnight
    quiet_end: int
    quiet_categories: frozenset[str]
    caps: dict[str, tuple[int | None, int | None]]
    costs: dict[str, float]
    engagement: dict[str, frozenset[str]]
    max_segments: int
    keywords: dict[str, tuple[str, str]]  # keyword_key(word) -> (kind, language); the first language wins


class Policy(_Frozen):
    """A whole, merged policy. Build it with `load_policy()`."""

    default_timezone: str
    quiet_hours: QuietHours
    frequency_caps: dict[Literal["marketing", "transactional"], Cap] = {}
    sms: SmsPolicy
    channels: dict[ChannelName, ChannelPolicy]
    keywords: dict[str, KeywordSet] = Field(min_length=1)

    @field_validator("keywords", mode="before")
    @classmethod
    def _replies_at_the_top(cls, value: Any) -> Any:
        """The older `keywords: {help: "..."}` (replies only) still sets the first language's replies."""
        if not isinstance(value, Mapping):
            return value
        old = {k: v for k, v in value.items() if k in KeywordReplies.model_fields and isinstance(v, str)}
        languages = {k: v for k, v in value.items() if k not in old}
        first = next(iter(languages), None)
        if not old or first is None or not isinstance(languages[first], Mapping):
            return value
        replies = languages[first].get("replies")
        languages[first] = {**languages[first], "replies": {**(replies if isinstance(replies, Mapping) else {}), **old}}
        return languages

    @field_validator("keywords")
    @classmethod
    def _language_codes(cls, value: dict[str, KeywordSet]) -> dict[str, KeywordSet]:
        for language in value:
            if not _LANGUAGE.match(language):
                raise ValueError(f"{language!r} is not a language code (ISO 639: en, fr, es, pt-BR)")
        return value

    @field_validator("default_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone {value!r}") from exc
        return value

    @cached_property
    def fast(self) -> FastPolicy:
        """Derived once per policy: plain attribute lookups instead of model traversal."""
        return FastPolicy(
            default_zone=ZoneInfo(self.default_timezone),
            quiet_start=_minutes(self.quiet_hours.start),
            quiet_end=_minutes(self.quiet_hours.end),
            quiet_categories=frozenset(self.quiet_hours.categories),
            caps={k: (v.per_day, v.per_week) for k, v in self.frequency_caps.items()},
            costs={k: v.cost for k, v in self.channels.items()},
            engagement={k: frozenset(v.engagement) for k, v in self.channels.items()},
            max_segments=self.sms.max_segments,
            keywords=_keyword_lookup(self.keywords),
        )

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Policy:
        """A copy whose derived lookups are rebuilt, so an update is never shadowed."""
        copy = super().model_copy(update=update, deep=deep)
        copy.__dict__.pop("fast", None)
        return copy

    def engagement_events(self, channel: str) -> frozenset[str]:
        """Events that count as engagement with `channel` (they stop an escalation)."""
        return self.fast.engagement.get(channel, frozenset())

    def cost(self, channel: str) -> float:
        """Price of one message (one segment for sms); LookupError if the channel is unknown."""
        try:
            return self.fast.costs[channel]
        except KeyError:
            raise LookupError(f"policy has no price for channel {channel!r}") from None


def keyword_key(text: str) -> str:
    """What an inbound text is matched on: whitespace runs as one space, trimmed, case and
    accents ignored (`Arrêt` and `ARRET` are one word)."""
    decomposed = unicodedata.normalize("NFKD", " ".join(text.split()))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def _keyword_lookup(keywords: Mapping[str, KeywordSet]) -> dict[str, tuple[str, str]]:
    lookup: dict[str, tuple[str, str]] = {}
    for language, words in keywords.items():
        for kind in KEYWORD_KINDS:
            for word in getattr(words, kind):
                lookup.setdefault(keyword_key(word), (kind, language))
    return lookup


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


@cache
def default_policy() -> Policy:
    """The shipped policy, loaded once."""
    return load_policy()


def default_policy_text() -> str:
    return resources.files("channels").joinpath("default_policy.yaml").read_text("utf-8")


def load_policy(path: str | Path | None = None) -> Policy:
    """The default policy, with the file at `path` (if any) merged over it key by key."""
    try:
        located = read_mapping(default_policy_text(), "channels/default_policy.yaml")
        data = located.data or {}
        if path is not None:
            located = read_mapping(_read_text(Path(path)), str(path))
            data = merge(data, located.data or {})
    except FileError as exc:
        raise PolicyError(exc.problems) from None
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(describe_errors(exc, replace(located, data=data), Policy)) from None


def merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """`over` on top of `base`, recursively for mappings; other values replace."""
    merged = dict(base)
    for key, value in over.items():
        below = merged.get(key)
        if isinstance(below, Mapping) and isinstance(value, Mapping):
            merged[key] = merge(below, value)
        else:
            merged[key] = value
    return merged


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError([f"{path}:1: cannot read policy file: {exc.strerror}"]) from exc
