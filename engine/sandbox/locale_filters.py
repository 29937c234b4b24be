"""Filters that write dates, times, numbers and money as the recipient reads them.

`{{ event.properties.starts_at | datetime("EEEE, MMMM d 'at' h:mm a") }}` is the appointment in
the recipient's time zone and language; `{{ 1234.5 | currency("EUR") }}` is `1.234,50 €` for a
reader in `de-DE`. Babel (CLDR's data) does the formatting: month and day names, separators,
currency signs and plural units are never written by hand here.

Who the recipient is travels in the render's context under `RECIPIENT`, a key no template can
spell (`Recipient`: a BCP 47 locale and a zone, worked out by the engine from the profile and
the policy). A render without one (a bare expression in a test) formats in `en` and UTC.

Each filter is held to the render's budget like the rest (`engine.sandbox.filters.bounded`: a
step, its result's length charged and checked), and before formatting it refuses what would
build too much: a pattern longer than `MAX_PATTERN` characters, a number of more than
`MAX_DIGITS` digits, and an estimate of the output past what is left of the budget. Babel
Locale objects are parsed once per tag; templates that use none of these filters pay nothing.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import Decimal, InvalidOperation
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_datetime, format_time, format_timedelta
from babel.numbers import format_currency, format_decimal, format_percent, list_currencies
from jinja2 import pass_context
from jinja2.runtime import Context

from channels.profile import time_zones
from channels.quiet_hours import zone_named
from engine.errors import RenderLimitError
from engine.sandbox.budget import MAX_DIGITS, current

RECIPIENT = "journey-engine:recipient"
"""The context key of the `Recipient`: not a name, so no template can read or set it."""
MAX_PATTERN = 200  # characters in a date, time or number pattern
_PER_PATTERN_CHARACTER = 32  # what one pattern letter may print at most ('zzzz': "Central European Summer Time")
_STYLED = 256  # what a named style prints at most (`full`, with the zone's long name)
STYLES = ("short", "medium", "long", "full")
_TIMEDELTA_FORMATS = ("narrow", "short", "long")
_UNITS = ("year", "month", "week", "day", "hour", "minute", "second")


@dataclass(frozen=True, slots=True)
class Recipient:
    """Whom a render writes for: their locale (BCP 47, CLDR's spelling) and time zone."""

    locale: str
    zone: tzinfo


DEFAULT_RECIPIENT = Recipient("en", UTC)


def recipient_of(context: Context) -> Recipient:
    found = context.get(RECIPIENT)
    return found if isinstance(found, Recipient) else DEFAULT_RECIPIENT


@functools.lru_cache(maxsize=2048)
def babel_locale(tag: str) -> Locale:
    """Babel's Locale for a BCP 47 tag, parsed once per tag; a tag CLDR does not know falls back to
    its language (`fr-XX` formats as `fr`), then to `en`."""
    parts = tag.replace("_", "-").split("-")
    for end in range(len(parts), 0, -1):
        try:
            return Locale.parse("-".join(parts[:end]), sep="-")
        except (UnknownLocaleError, ValueError, TypeError):
            continue
    return Locale.parse("en")


def to_datetime(value: Any) -> datetime:
    """A timestamp as templates may hold one: RFC 3339 or a date (UTC unless it says), or epoch seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        value = datetime.fromisoformat(value.strip().replace("z", "Z"))
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if not isinstance(value, datetime):
        raise TypeError(f"{value!r} is not a timestamp")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _zone_of(value: datetime, recipient: Recipient) -> tzinfo:
    """A time from `in_tz` keeps its zone (a named one); any other is shown in the recipient's."""
    zone = value.tzinfo
    return zone if zone is not None and hasattr(zone, "key") else recipient.zone


def _pattern(format: Any, what: str) -> tuple[str, int]:
    """A style or pattern, with what it may print at most."""
    if not isinstance(format, str):
        raise TypeError(f"{what}: the format is a style ({', '.join(STYLES)}) or a pattern, not {format!r}")
    if len(format) > MAX_PATTERN:
        raise RenderLimitError(f"{what}: a pattern of {len(format):,} characters is over the limit of {MAX_PATTERN}")
    return format, _STYLED if format in STYLES else _PER_PATTERN_CHARACTER * len(format) + 16


def _charged(what: str, format: Any) -> str:
    pattern, most = _pattern(format, what)
    current().expect(most, what)
    return pattern


@pass_context
def datetime_filter(context: Context, value: Any, format: Any = "medium") -> str:
    """`{{ t | datetime("short") }}`, `{{ t | datetime("EEEE d MMMM 'à' HH:mm") }}`: date and time."""
    return _moment(format_datetime, "|datetime", context, value, format)


def _moment(formatter: Callable[..., str], what: str, context: Context, value: Any, format: Any) -> str:
    """`value` as a moment in the recipient's zone (or the one `in_tz` gave it), written by `formatter`."""
    pattern = _charged(what, format)
    recipient = recipient_of(context)
    moment = to_datetime(value)
    return formatter(moment, pattern, tzinfo=_zone_of(moment, recipient), locale=babel_locale(recipient.locale))


@pass_context
def date_filter(context: Context, value: Any, format: Any = "medium") -> str:
    """`{{ t | date("long") }}`: the day, in the recipient's zone (a bare `2026-03-12` is that day)."""
    pattern = _charged("|date", format)
    recipient = recipient_of(context)
    return format_date(_day(value, recipient), pattern, locale=babel_locale(recipient.locale))


def _day(value: Any, recipient: Recipient) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and len(value.strip()) == 10:
        return date.fromisoformat(value.strip())
    moment = to_datetime(value)
    return moment.astimezone(_zone_of(moment, recipient)).date()


@pass_context
def time_filter(context: Context, value: Any, format: Any = "short") -> str:
    """`{{ t | time }}`: the time of day in the recipient's zone (`short` by default: no seconds)."""
    return _moment(format_time, "|time", context, value, format)


@pass_context
def in_tz(context: Context, value: Any, zone: Any = None) -> datetime:
    """`{{ t | in_tz }}`: the time in the recipient's zone, or in `zone` (`in_tz("Asia/Tokyo")`); the
    date and time filters then show it in that zone."""
    if zone is None:
        target = recipient_of(context).zone
    elif isinstance(zone, str) and zone in time_zones():
        target = zone_named(zone)
    else:
        raise ValueError(f"in_tz: unknown IANA time zone {zone!r}")
    if not hasattr(target, "key"):  # a fixed offset (UTC): keep it as a named zone, so it is kept
        target = zone_named("UTC")
    return to_datetime(value).astimezone(target)


def _number(value: Any, what: str) -> int | float | Decimal:
    """A finite number of at most `MAX_DIGITS` digits either side of the point (text is read as one)."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        raise TypeError(f"{what}: {value!r} is not a number")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{what}: {value!r} is not a finite number")
        return value
    if isinstance(value, str) and len(value) > MAX_DIGITS + 16:
        raise RenderLimitError(f"{what}: a number of {len(value):,} characters is over the limit of {MAX_DIGITS:,} "
                               "digits")
    try:
        number = Decimal(value.strip() if isinstance(value, str) else value)
    except InvalidOperation:
        raise ValueError(f"{what}: {value!r} is not a number") from None
    if not number.is_finite():
        raise ValueError(f"{what}: {value!r} is not a finite number")
    if abs(number.adjusted()) > MAX_DIGITS or len(number.as_tuple().digits) > MAX_DIGITS:
        raise RenderLimitError(f"{what}: {value!r} has more than {MAX_DIGITS:,} digits")
    return number


def _digits(number: int | float | Decimal) -> int:
    if isinstance(number, int):
        return len(str(abs(number))) if abs(number) < 10 ** 18 else number.bit_length() * 77 // 256 + 1
    if isinstance(number, float):
        return 330  # the largest float has 309 digits before the point
    exponent = number.as_tuple().exponent
    return max(1, number.adjusted() + 1) + (max(0, -exponent) if isinstance(exponent, int) else 0)


def _numeric(what: str, value: Any, format: Any) -> tuple[int | float | Decimal, str | None]:
    """The number and pattern, the output they may build charged first."""
    number = _number(value, what)
    pattern = None
    extra = 0
    if format is not None:
        pattern, extra = _pattern(format, what)
    current().expect(2 * _digits(number) + 4 * extra + 32, what)
    return number, pattern


@pass_context
def number_filter(context: Context, value: Any, format: Any = None) -> str:
    """`{{ 1234.5 | number }}`: `1,234.5` in en, `1 234,5` in fr; `number("#,##0.00")` for a pattern."""
    number, pattern = _numeric("|number", value, format)
    return format_decimal(number, pattern, locale=babel_locale(recipient_of(context).locale))


@pass_context
def currency_filter(context: Context, value: Any, code: Any, format: Any = None) -> str:
    """`{{ 1234.5 | currency("EUR") }}`: `€1,234.50` in en-US, `1.234,50 €` in de-DE (ISO 4217 codes)."""
    if not isinstance(code, str) or code not in _currencies():
        raise ValueError(f"|currency: {code!r} is not an ISO 4217 currency code (EUR, USD, JPY...)")
    number, pattern = _numeric("|currency", value, format)
    return format_currency(number, code, pattern, locale=babel_locale(recipient_of(context).locale))


@functools.cache
def _currencies() -> frozenset[str]:
    return frozenset(list_currencies())


@pass_context
def percent_filter(context: Context, value: Any, format: Any = None) -> str:
    """`{{ 0.256 | percent }}`: `26%` in en, `26 %` in fr."""
    number, pattern = _numeric("|percent", value, format)
    return format_percent(number, pattern, locale=babel_locale(recipient_of(context).locale))


@pass_context
def timedelta_filter(context: Context, value: Any, granularity: Any = "second", add_direction: Any = False,
                     format: Any = "long", threshold: Any = 0.85) -> str:
    """`{{ 7200 | timedelta }}`: `2 hours`, `2 heures` (seconds, or a time difference); with
    `add_direction=true`, `in 2 hours`. Rounded to its largest unit, as people say it."""
    if isinstance(value, bool) or not isinstance(value, int | float | timedelta):
        raise TypeError(f"|timedelta: {value!r} is not a number of seconds")
    if granularity not in _UNITS:
        raise ValueError(f"|timedelta: granularity {granularity!r} is not one of {', '.join(_UNITS)}")
    if format not in _TIMEDELTA_FORMATS:
        raise ValueError(f"|timedelta: format {format!r} is not one of {', '.join(_TIMEDELTA_FORMATS)}")
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not math.isfinite(threshold):
        raise TypeError(f"|timedelta: threshold {threshold!r} is not a number")
    delta = value if isinstance(value, timedelta) else timedelta(seconds=value)
    current().expect(64, "|timedelta")
    return format_timedelta(delta, granularity=granularity, threshold=threshold, add_direction=bool(add_direction),
                            format=format, locale=babel_locale(recipient_of(context).locale))


LOCALE_FILTERS: dict[str, Callable[..., Any]] = {
    "datetime": datetime_filter, "date": date_filter, "time": time_filter, "in_tz": in_tz,
    "number": number_filter, "currency": currency_filter, "percent": percent_filter, "timedelta": timedelta_filter,
}
"""Every filter here by its name in templates."""
