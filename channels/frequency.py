"""Frequency caps: per user, per channel, per category, over rolling windows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from channels.policy import Policy

DAY = timedelta(days=1)
WEEK = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class SentRecord:
    """One message already sent to the user: what the caps count."""

    channel: str
    category: str
    at: datetime


def cap_reached(sent: Sequence[SentRecord], channel: str, category: str, now: datetime, policy: Policy) -> bool:
    """True when one more `category` send on `channel` would break the policy's caps."""
    per_day, per_week = policy.fast.caps.get(category, (None, None))
    if per_day is None and per_week is None:
        return False
    day, week = recent_counts(sent, category, now).get(channel, (0, 0))
    return _over(day, per_day) or _over(week, per_week)


def capped_channels(sent: Sequence[SentRecord], category: str, now: datetime, policy: Policy) -> frozenset[str]:
    """Every channel whose cap is reached, in one pass over the sends."""
    per_day, per_week = policy.fast.caps.get(category, (None, None))
    if (per_day is None and per_week is None) or not sent:
        return frozenset()
    counts = recent_counts(sent, category, now)
    return frozenset(channel for channel, (day, week) in counts.items() if _over(day, per_day) or _over(week, per_week))


def recent_counts(sent: Sequence[SentRecord], category: str, now: datetime) -> dict[str, tuple[int, int]]:
    """channel -> (sends in the last 24h, sends in the last 7 days), for one category."""
    day_start, week_start = now - DAY, now - WEEK
    counts: dict[str, tuple[int, int]] = {}
    for record in sent:
        if record.category != category or not week_start < record.at <= now:
            continue
        day, week = counts.get(record.channel, (0, 0))
        counts[record.channel] = (day + (record.at > day_start), week + 1)
    return counts


def _over(count: int, cap: int | None) -> bool:
    return cap is not None and count >= cap
