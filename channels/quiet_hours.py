"""Quiet hours and local wall-clock times of the recipient.

Sends are deferred, never dropped, so the one question answered here is
"when may this go out". Everything is computed in the recipient's zone and
returned as aware UTC; zoneinfo handles daylight saving, and a wall time that
falls in a DST gap or fold still maps to one sensible instant.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import phonenumbers
from phonenumbers import timezone as phone_timezone

from channels.policy import Policy
from channels.profile import Profile

# Where the numbering plan can't narrow a multi-zone country, assume the
# zone most of its people live in.
_MOST_POPULOUS_ZONE: dict[str, str] = {
    "US": "America/New_York",
    "CA": "America/Toronto",
    "AU": "Australia/Sydney",
    "BR": "America/Sao_Paulo",
    "RU": "Europe/Moscow",
    "MX": "America/Mexico_City",
    "ID": "Asia/Jakarta",
}
_UNKNOWN_ZONE = "Etc/Unknown"


def recipient_zone(profile: Profile, policy: Policy) -> ZoneInfo:
    """The profile's zone, else its phone number's, else the policy default."""
    if profile.timezone:
        return zone_named(profile.timezone)
    if profile.phone:
        name = phone_zone_name(profile.phone)
        if name is not None:
            return zone_named(name)
    return policy.fast.default_zone


@lru_cache(maxsize=512)
def zone_named(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@lru_cache(maxsize=65536)
def phone_zone_name(phone: str) -> str | None:
    """The IANA zone of an E.164 number, chosen deterministically; None if unknown."""
    try:
        number = phonenumbers.parse(phone, None)
    except phonenumbers.NumberParseException:
        return None
    zones = [z for z in phone_timezone.time_zones_for_number(number) if z != _UNKNOWN_ZONE]
    if not zones:
        return None
    if len(zones) == 1:
        return zones[0]
    country_wide = phone_timezone._country_level_time_zones_for_number(number)
    if set(zones) == set(country_wide):
        region = phonenumbers.region_code_for_number(number)
        return _MOST_POPULOUS_ZONE.get(region or "", zones[0])
    return zones[0]


def quiet_until(now: datetime, zone: ZoneInfo, policy: Policy, category: str, urgency: str,
                region: str | None = None) -> datetime | None:
    """None to send now, else the UTC instant the quiet window (`region`'s, if it has its own)
    ends for this recipient."""
    rules = policy.fast.rules_for(region)
    if category not in rules.quiet_categories or rules.quiet_start == rules.quiet_end:
        return None
    if urgency == "critical" and category == "transactional":
        return None
    local = now.astimezone(zone)
    minute = local.hour * 60 + local.minute
    start, end = rules.quiet_start, rules.quiet_end
    if start < end:
        inside, end_day = start <= minute < end, local.date()
    else:
        inside = minute >= start or minute < end
        end_day = local.date() + timedelta(days=1) if minute >= start else local.date()
    if not inside:
        return None
    return _wall_time_at_or_after(end_day, end, zone, now) or _wall_time_at_or_after(
        end_day + timedelta(days=1), end, zone, now
    )


def next_local_time(now: datetime, zone: ZoneInfo, hhmm: str) -> datetime:
    """The next `hhmm` on the recipient's wall clock at or after `now`, as UTC."""
    hours, minutes = (int(part) for part in hhmm.split(":"))
    day = now.astimezone(zone).date()
    for offset in range(3):
        found = _wall_time_at_or_after(day + timedelta(days=offset), hours * 60 + minutes, zone, now)
        if found is not None:
            return found
    raise ValueError(f"no local time {hhmm} found after {now.isoformat()}")  # unreachable


def _wall_time_at_or_after(day: date, minutes: int, zone: ZoneInfo, now: datetime) -> datetime | None:
    """The first instant >= now when the wall clock shows `minutes` on `day`."""
    return next((t for t in _wall_instants(day, minutes, zone) if t >= now), None)


@lru_cache(maxsize=4096)
def _wall_instants(day: date, minutes: int, zone: ZoneInfo) -> tuple[datetime, ...]:
    """The UTC instants when the wall clock shows `minutes` on `day`, earliest first.

    In a fold (clocks go back) there are two; in a gap (clocks jump forward)
    there are none, so the wall time is read with the pre-jump offset, which
    lands just after the jump (02:30 on a spring-forward night -> 03:30).
    """
    wall = time(minutes // 60, minutes % 60)
    instants = set()
    for fold in (0, 1):
        local = datetime.combine(day, wall, tzinfo=zone).replace(fold=fold)
        instant = local.astimezone(UTC)
        if instant.astimezone(zone).replace(tzinfo=None) == local.replace(tzinfo=None):
            instants.add(instant)
    if not instants:
        instants.add(datetime.combine(day, wall, tzinfo=zone).astimezone(UTC))
    return tuple(sorted(instants))
