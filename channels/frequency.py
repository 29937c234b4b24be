"""Frequency caps: per user and category, per channel or over several channels together;
over rolling windows or calendar days in the recipient's zone."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from channels.policy import FREQUENCY_CAP, CapRule, Policy
from channels.values import quick_init

DAY = timedelta(days=1)
WEEK = timedelta(days=7)


@quick_init
@dataclass(frozen=True, slots=True)
class SentRecord:
    """One message already sent to the user: what the caps count."""

    channel: str
    category: str
    at: datetime
    journey: str | None = None  # the journey that sent it (None: a keyword reply): journey limits count these


def cap_reached(sent: Sequence[SentRecord], channel: str, category: str, now: datetime, policy: Policy,
                zone: ZoneInfo | None = None, region: str | None = None) -> bool:
    """True when one more `category` send on `channel` would break a cap of the policy (or of
    `region`'s rules); calendar days are counted in `zone` (default: the policy's)."""
    return channel in capped_channels(sent, category, now, policy, zone, region)


_NONE: dict[str, str] = {}


def capped_channels(sent: Sequence[SentRecord], category: str, now: datetime, policy: Policy,
                    zone: ZoneInfo | None = None, region: str | None = None) -> Mapping[str, str]:
    """Every channel a cap closes to one more `category` send, with the reason (`frequency_cap`, or
    `global_cap` for the policy's cap across all channels; a channel's own cap is named first), in
    one pass over the sends per cap."""
    rules = policy.fast.rules_for(region).caps.get(category)
    if not rules or not sent:
        return _NONE
    capped: dict[str, str] = {}
    for rule in rules:
        if rule.per_day is None and rule.per_week is None:
            continue
        counts = _counts(sent, category, now, rule, zone or policy.fast.default_zone)
        if rule.channels is None:
            closed: Iterable[str] = (channel for channel, (day, week) in counts.items() if _over(rule, day, week))
        elif _over(rule, sum(counts.get(c, (0, 0))[0] for c in rule.channels),
                   sum(counts.get(c, (0, 0))[1] for c in rule.channels)):
            closed = rule.channels
        else:
            continue
        for channel in closed:
            if capped.get(channel) != FREQUENCY_CAP:
                capped[channel] = rule.reason
    return capped


def _counts(sent: Sequence[SentRecord], category: str, now: datetime, rule: CapRule,
            zone: ZoneInfo) -> dict[str, tuple[int, int]]:
    """channel -> (sends in the rule's day, sends in its week), for one category. Rolling windows
    leave out a send exactly 24 h (7 d) old; a calendar day starts at local midnight, included."""
    if rule.calendar_day:
        today = now.astimezone(zone).date()
        day_start, week_start = _midnight(today, zone), _midnight(today - timedelta(days=6), zone)
    else:
        day_start, week_start = now - DAY, now - WEEK
    inclusive = rule.calendar_day
    counts: dict[str, tuple[int, int]] = {}
    for record in sent:
        at = record.at
        if record.category != category or at > now or at < week_start or (at == week_start and not inclusive):
            continue
        day, week = counts.get(record.channel, (0, 0))
        counts[record.channel] = (day + (at > day_start or (inclusive and at == day_start)), week + 1)
    return counts


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    """The instant `day` begins in `zone` (where a DST jump skips midnight: the jump's instant)."""
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def _over(rule: CapRule, day: int, week: int) -> bool:
    return (rule.per_day is not None and day >= rule.per_day) or (rule.per_week is not None and week >= rule.per_week)
