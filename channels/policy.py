"""The channel policy: quiet hours, caps, jurisdiction rules, prices, engagement events, reach
priors and `strategy: auto`'s thresholds, SMS keywords per language, tracked links.

The model is validated once at load time; `select()` reads the precomputed
lookups in `Policy.fast` so the hot path never touches pydantic.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from functools import cache, cached_property
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, get_args
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from channels.locales import check_locale
from channels.preferences import CHANNELS as PREFERENCE_CHANNELS
from channels.yaml_lines import FileError, describe_errors, read_mapping

ChannelName = Literal["push", "in_app", "email", "sms", "mms", "rcs", "webhook"]
CHANNELS = PREFERENCE_CHANNELS  # every channel, in the order the docs list them
CATEGORIES: tuple[str, ...] = ("marketing", "transactional")
Category = Literal["marketing", "transactional"]
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
REGION_CODE = re.compile(r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$")  # ISO 3166-1 country, or ISO 3166-2 subdivision


class PolicyError(FileError):
    """A policy file is invalid; str() is one `file:line: message` line per problem."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _hhmm(value: str) -> str:
    if not _HHMM.match(value):
        raise ValueError(f"{value!r} is not a time of day HH:MM (00:00 to 23:59)")
    return value


TimeOfDay = Annotated[str, AfterValidator(_hhmm)]


class QuietHours(_Frozen):
    start: TimeOfDay
    end: TimeOfDay
    categories: tuple[Category, ...] = ("marketing",)


class Cap(_Frozen):
    """At most `per_day` / `per_week` sends: over the last 24 h and 7 d (`rolling`), or since
    the recipient's local midnight today and 6 days before (`calendar_day`, as Braze counts)."""

    per_day: int | None = Field(default=None, ge=0)
    per_week: int | None = Field(default=None, ge=0)
    window: Literal["rolling", "calendar_day"] = "rolling"


class RegionCap(Cap):
    """A cap on `category` sends over `channels` counted together (default: every channel)."""

    category: Category
    channels: tuple[ChannelName, ...] = Field(default=get_args(ChannelName), min_length=1)


class RegionQuietHours(_Frozen):
    """A region's quiet window; a key it leaves out keeps the policy-wide value."""

    start: TimeOfDay | None = None
    end: TimeOfDay | None = None
    categories: tuple[Category, ...] | None = None


class Region(_Frozen):
    """Jurisdiction rules: the quiet window replaces the policy-wide one for the region's
    recipients; the caps hold on top of `frequency_caps` (every cap must allow a send)."""

    quiet_hours: RegionQuietHours | None = None
    caps: tuple[RegionCap, ...] = ()


class SmsPolicy(_Frozen):
    max_segments: int = Field(ge=1)


def _no_flag(value: Any) -> Any:
    """pydantic reads `true` as 1.0; as a rate it is a mistake."""
    if isinstance(value, bool):
        raise ValueError(f"expected a number of messages a second, not {str(value).lower()}")
    return value


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def _duration(value: Any) -> Any:
    """`30s`, `15m`, `2h`, `30d`, `1w`, as in journey files."""
    if isinstance(value, timedelta):
        return value
    found = _DURATION.match(value) if isinstance(value, str) else None
    if found is None:
        raise ValueError(f"{value!r} is not a duration: use 30s, 15m, 2h, 30d or 1w")
    seconds = float(found.group(1)) * _UNIT_SECONDS[found.group(2)]
    if seconds <= 0:
        raise ValueError(f"{value!r}: a duration longer than zero")
    return timedelta(seconds=seconds)


Duration = Annotated[timedelta, BeforeValidator(_duration)]


Trackable = Literal["email", "sms", "mms", "rcs"]
TRACKABLE: tuple[Trackable, ...] = ("email", "sms", "mms", "rcs")
MIN_CODE_LENGTH = 8  # 8 characters of 62: 47.6 bits; the default, 10, is 59.5 (docs/policy.md, Tracked links)


def _base_url(value: str | None) -> str | None:
    """Where `journey serve` answers the public: http(s), a host, maybe a path; no query or fragment."""
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{value!r} is not a public base URL (https://go.example.com)")
    if parts.query or parts.fragment or any(c.isspace() for c in value):
        raise ValueError(f"{value!r}: a base URL has no query, fragment or space")
    return value.rstrip("/")


class LinksPolicy(_Frozen):
    """Tracked links: with a `base_url`, every http(s) link in the `channels`' text is rewritten to
    `<base_url>/l/<code>` (a random code of `code_length` letters and digits) when the message is
    rendered, and an email's HTML gets an open pixel `<base_url>/o/<code>` when `open_pixel` is on."""

    base_url: Annotated[str, AfterValidator(_base_url)] | None = None
    code_length: int = Field(default=10, ge=MIN_CODE_LENGTH, le=64)
    open_pixel: bool = False
    channels: tuple[Trackable, ...] = TRACKABLE


class ChannelPolicy(_Frozen):
    """A channel's price, the events that count as engagement with it, its send rate (providers
    and carriers cap throughput: a US 10DLC campaign may be held to 75 SMS a minute, so the
    dispatcher hands over at most `rate_per_second`; unset: as many as the providers take), and
    `reach`, the chance that a person new to it engages with a message on it (`strategy: auto`'s
    prior, before the person's own history counts)."""

    cost: float = Field(ge=0)
    engagement: tuple[str, ...] = ()
    rate_per_second: Annotated[float, BeforeValidator(_no_flag)] | None = Field(default=None, gt=0,
                                                                                allow_inf_nan=False)
    reach: float = Field(default=0.5, ge=0, le=1)


class AutoPolicy(_Frozen):
    """`strategy: auto`'s thresholds (docs/policy.md). A channel's reach for a person is
    (prior_weight x its prior + messages engaged with) / (prior_weight + messages sent), every
    message counted half as much each `half_life` since it went."""

    prior_weight: float = Field(gt=0, allow_inf_nan=False)
    half_life: Duration
    target: float = Field(gt=0, lt=1)
    floor: float = Field(ge=0, le=1)
    escalate_after: dict[Literal["high", "normal"], Duration]
    best_time: TimeOfDay

    @field_validator("escalate_after")
    @classmethod
    def _both(cls, value: dict[str, timedelta]) -> dict[str, timedelta]:
        missing = [u for u in ("high", "normal") if u not in value]
        if missing:
            raise ValueError(f"needs a delay for {' and '.join(missing)}")
        return value


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


FREQUENCY_CAP, GLOBAL_CAP = "frequency_cap", "global_cap"


class Caps(_Frozen):
    """Caps over more than one channel: `all_channels` counts every message of a category to a
    user, whatever its channel (a channel over it is `global_cap`)."""

    all_channels: dict[Category, Cap] = {}


@dataclass(frozen=True, slots=True)
class CapRule:
    """One cap as the hot path counts it."""

    channels: frozenset[str] | None  # None: each channel counted on its own; else these together
    per_day: int | None
    per_week: int | None
    calendar_day: bool
    reason: str = FREQUENCY_CAP  # what a channel it closes is refused with


@dataclass(frozen=True, slots=True)
class Rules:
    """The quiet window and the caps that hold for the recipients of one region (or of none)."""

    quiet_start: int  # minutes after local midnight
    quiet_end: int
    quiet_categories: frozenset[str]
    caps: dict[str, tuple[CapRule, ...]]  # by category
    calendar: frozenset[str]  # categories with a cap counting calendar days: those need the zone


@dataclass(frozen=True, slots=True)
class Weighing:
    """What strategy auto's reach reads on every decision (channels/reach.py), in plain numbers."""

    priors: dict[str, tuple[float, bool]]  # channel -> (its prior, whether any event counts as engagement on it)
    weight: float  # auto.prior_weight
    per_second: float  # 1 / auto.half_life in seconds: a figure counts 2 ** -(seconds since x per_second)


@dataclass(frozen=True, slots=True)
class FastPolicy:
    """Plain lookups derived once from the policy, for the per-send hot path."""

    default_zone: ZoneInfo
    rules: Rules  # for a recipient whose region has no rules
    regions: dict[str, Rules]  # region code -> its rules (a subdivision's hold on top of its country's)
    subdivided: frozenset[str]  # countries with rules for one of their subdivisions (US for US-FL)
    costs: dict[str, float]
    engagement: dict[str, frozenset[str]]
    reach: dict[str, float]  # each channel's prior
    auto: AutoPolicy
    weighing: Weighing
    default_strategy: str | None
    max_segments: int
    keywords: dict[str, tuple[str, str]]  # keyword_key(word) -> (kind, language); the first language wins

    @property
    def quiet_start(self) -> int:
        return self.rules.quiet_start

    @property
    def quiet_end(self) -> int:
        return self.rules.quiet_end

    @property
    def quiet_categories(self) -> frozenset[str]:
        return self.rules.quiet_categories

    def rules_for(self, region: str | None) -> Rules:
        """The rules of `region` (`US-FL`), else of its country (`US`), else the policy-wide ones."""
        if region is None or not self.regions:
            return self.rules
        found = self.regions.get(region)
        if found is None:
            country, dash, _ = region.partition("-")
            found = self.regions.get(country) if dash else None
        return found or self.rules


class Policy(_Frozen):
    """A whole, merged policy. Build it with `load_policy()`."""

    default_timezone: str
    default_locale: str = "en"  # BCP 47: for a recipient whose profile has no locale
    quiet_hours: QuietHours
    frequency_caps: dict[Category, Cap] = {}
    caps: Caps = Caps()
    regions: dict[str, Region | None] = {}  # ISO 3166 code -> rules; null drops a shipped region
    sms: SmsPolicy
    channels: dict[ChannelName, ChannelPolicy]
    default_strategy: Literal["auto"] | None = None  # for sends that name no strategy; None: by urgency
    auto: AutoPolicy
    keywords: dict[str, KeywordSet] = Field(min_length=1)
    links: LinksPolicy = LinksPolicy()

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

    @field_validator("regions")
    @classmethod
    def _region_codes(cls, value: dict[str, Region | None]) -> dict[str, Region | None]:
        for code in value:
            if not REGION_CODE.match(code):
                raise ValueError(f"{code!r} is not a region code (ISO 3166: a country FR or a subdivision US-FL)")
        return value

    @field_validator("default_locale")
    @classmethod
    def _known_locale(cls, value: str) -> str:
        return check_locale(value)

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
        quiet = self.quiet_hours
        caps: dict[str, tuple[CapRule, ...]] = {c: (_cap_rule(cap, None),) for c, cap in self.frequency_caps.items()}
        for category, cap in self.caps.all_channels.items():
            caps[category] = (*caps.get(category, ()), _cap_rule(cap, CHANNELS, GLOBAL_CAP))
        rules = _rules(_minutes(quiet.start), _minutes(quiet.end), frozenset(quiet.categories), caps)
        return FastPolicy(
            default_zone=ZoneInfo(self.default_timezone),
            rules=rules,
            regions=_region_rules(rules, self.regions),
            subdivided=frozenset(code.partition("-")[0] for code, r in self.regions.items() if "-" in code and r),
            costs={k: v.cost for k, v in self.channels.items()},
            engagement={k: frozenset(v.engagement) for k, v in self.channels.items()},
            reach={k: v.reach for k, v in self.channels.items()},
            auto=self.auto,
            weighing=Weighing({k: (v.reach, bool(v.engagement)) for k, v in self.channels.items()},
                              self.auto.prior_weight, 1 / self.auto.half_life.total_seconds()),
            default_strategy=self.default_strategy,
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


def _cap_rule(cap: Cap, channels: Iterable[str] | None, reason: str = FREQUENCY_CAP) -> CapRule:
    pooled = frozenset(channels) if channels is not None else None
    return CapRule(pooled, cap.per_day, cap.per_week, cap.window == "calendar_day", reason)


def _rules(start: int, end: int, categories: frozenset[str], caps: dict[str, tuple[CapRule, ...]]) -> Rules:
    calendar = frozenset(category for category, rules in caps.items() if any(r.calendar_day for r in rules))
    return Rules(start, end, categories, caps, calendar)


def _with_region(parent: Rules, region: Region) -> Rules:
    quiet = region.quiet_hours or RegionQuietHours()
    caps = dict(parent.caps)
    for cap in region.caps:
        caps[cap.category] = (*caps.get(cap.category, ()), _cap_rule(cap, cap.channels))
    return _rules(
        _minutes(quiet.start) if quiet.start is not None else parent.quiet_start,
        _minutes(quiet.end) if quiet.end is not None else parent.quiet_end,
        frozenset(quiet.categories) if quiet.categories is not None else parent.quiet_categories,
        caps,
    )


def _region_rules(everyone: Rules, regions: Mapping[str, Region | None]) -> dict[str, Rules]:
    given = {code: region for code, region in regions.items() if region is not None}
    found: dict[str, Rules] = {}
    for code, region in given.items():
        country = code.partition("-")[0]
        parent = _with_region(everyone, given[country]) if country != code and country in given else everyone
        found[code] = _with_region(parent, region)
    return found


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
