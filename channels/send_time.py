"""`wait: {until: best_time, within: 24h}`: when, within the window, this person is most likely to
engage, from the local hours of their past engagements (every channel together).

The instants looked at are now and each start of a local hour after it, up to the end of the
window; the one whose local hour holds the most engagements wins, the earliest on a tie (so now,
when now's hour is as good as any). When no hour in the window holds any engagement (a new
person, or one who engages at other times), the policy's `auto.best_time` is taken if it falls in
the window, else now. Pure: the time, the zone and the counts come in.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from channels.quiet_hours import next_local_time

HOUR = timedelta(hours=1)


def best_time(now: datetime, zone: ZoneInfo, hours: Sequence[int], within: timedelta, default: str) -> datetime:
    """The instant to send at (aware UTC), at or after `now` and no later than `now + within`."""
    end = now + within
    best, most = now, hours[now.astimezone(zone).hour]
    for at in _hour_starts(now, zone, end):
        count = hours[at.astimezone(zone).hour]
        if count > most:
            best, most = at, count
    if most:
        return best
    fallback = next_local_time(now, zone, default)
    return fallback if fallback <= end else now


def _hour_starts(now: datetime, zone: ZoneInfo, end: datetime) -> list[datetime]:
    """Each instant after `now`, up to `end`, at which the local clock shows a whole hour."""
    local = now.astimezone(zone)
    first = now + timedelta(minutes=60 - local.minute) - timedelta(seconds=local.second,
                                                                   microseconds=local.microsecond)
    starts = []
    at = first
    while at <= end:
        starts.append(at)
        at += HOUR
    return starts
