"""When audience runs happen: a 5-field cron `schedule` (croniter, in the trigger's time zone) or
one instant `at`. Pure functions of the trigger and the times given: no clock is read here."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

MOST_MISSED = 10_000  # occurrences counted when catching up after downtime; beyond, "at least" this many


class Timing(Protocol):
    """The parts of `engine.model.Trigger` that say when runs happen."""

    schedule: str | None
    at: str | None
    timezone: str | None


def check_cron(value: str) -> None:
    """A standard 5-field cron expression (minute hour day-of-month month day-of-week), checked by croniter."""
    if len(value.split()) != 5:
        raise ValueError(f"{value!r} is not a 5-field cron expression (minute hour day month weekday), "
                         'e.g. "0 9 * * MON"')
    try:
        croniter(value, datetime(2000, 1, 1)).get_next(datetime)  # one that never fires (31 2 *) fails here
    except (ValueError, KeyError) as exc:
        raise ValueError(f"{value!r} is not a valid cron expression: {exc}") from None


def zone(name: str) -> ZoneInfo:
    """An IANA time zone, or ValueError naming it."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{name!r} is not an IANA time zone, e.g. Europe/Amsterdam or America/New_York") from None


def parse_instant(value: str, default_zone: str) -> datetime:
    """An ISO 8601 instant as aware UTC; without an offset it is a local time in `default_zone`."""
    try:
        parsed = datetime.fromisoformat(value.strip().replace("z", "Z"))
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO 8601 date and time, e.g. 2026-12-24T09:00:00Z") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone(default_zone))
    return parsed.astimezone(UTC)


def occurrences(trigger: Timing, default_zone: str, start: datetime, until: datetime | None = None,
                ) -> Iterator[datetime]:
    """The trigger's instants from `start` (inclusive) to `until` (inclusive; None: without end), in UTC."""
    zone_name = trigger.timezone or default_zone
    if trigger.at is not None:
        at = parse_instant(trigger.at, zone_name)
        if at >= start and (until is None or at <= until):
            yield at
        return
    if trigger.schedule is None:
        return
    times = croniter(trigger.schedule, (start - timedelta(seconds=1)).astimezone(zone(zone_name)))
    while True:
        at = times.get_next(datetime).astimezone(UTC)
        if until is not None and at > until:
            return
        if at >= start:
            yield at


def next_after(trigger: Timing, default_zone: str, after: datetime) -> datetime | None:
    """The first instant of the trigger strictly after `after`, if any."""
    return next(occurrences(trigger, default_zone, after + timedelta(microseconds=1)), None)


def due(trigger: Timing, default_zone: str, after: datetime, now: datetime) -> tuple[datetime, int] | None:
    """The run due `now`, when the last one (or the journey's first load) was at `after`: the latest
    instant in (after, now], and how many instants there were in it (more than one: the others were
    missed, and collapse into this run). None when nothing is due."""
    first = next_after(trigger, default_zone, after)
    if first is None or first > now:
        return None
    latest, count = first, 1
    for at in occurrences(trigger, default_zone, first + timedelta(microseconds=1), now):
        latest, count = at, count + 1
        if count >= MOST_MISSED:
            latest = _latest(trigger, default_zone, now)
            break
    return latest, count


def _latest(trigger: Timing, default_zone: str, now: datetime) -> datetime:
    """The latest instant of a schedule at or before `now` (its instants fall on whole minutes)."""
    assert trigger.schedule is not None
    times = croniter(trigger.schedule, (now + timedelta(minutes=1)).astimezone(zone(trigger.timezone or default_zone)))
    while (at := times.get_prev(datetime).astimezone(UTC)) > now:
        pass
    return at
