"""Quiet hours in the recipient's local time, across zones and DST changes."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from channels import Policy, Profile, load_policy, next_local_time, quiet_until, recipient_zone
from channels.policy import QuietHours

POLICY = load_policy()
NEW_YORK = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
TOKYO = ZoneInfo("Asia/Tokyo")


def utc(year: int, month: int, day: int, hour: int, minute: int, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def with_window(start: str, end: str, *categories: str) -> Policy:
    window = {"start": start, "end": end, "categories": categories or ("marketing",)}
    return POLICY.model_copy(update={"quiet_hours": QuietHours.model_validate(window)})


@pytest.mark.parametrize(
    ("profile", "zone"),
    [
        (Profile("u", timezone="Asia/Tokyo", phone="+12125550123"), "Asia/Tokyo"),
        (Profile("u", phone="+12125550123"), "America/New_York"),
        (Profile("u", phone="+14155550123"), "America/Los_Angeles"),
        (Profile("u", phone="+18005550123"), "America/New_York"),  # toll-free: the whole US
        (Profile("u", phone="+4930123456"), "Europe/Berlin"),
        (Profile("u", phone="+61412345678"), "Australia/Sydney"),  # mobile: all of Australia
        (Profile("u", phone="+99912345"), "UTC"),  # unknown country: policy default
        (Profile("u"), "UTC"),
    ],
)
def test_recipient_zone(profile: Profile, zone: str) -> None:
    assert recipient_zone(profile, POLICY).key == zone


@pytest.mark.parametrize(
    ("now", "zone", "until"),
    [
        # New York, winter: 22:00 EST -> 08:00 EST next day
        (utc(2026, 1, 6, 3, 0), NEW_YORK, utc(2026, 1, 6, 13, 0)),
        # New York, spring-forward night 2026-03-08: 01:30 EST -> 08:00 EDT
        (utc(2026, 3, 8, 6, 30), NEW_YORK, utc(2026, 3, 8, 12, 0)),
        # the evening before the change, the window ends after it
        (utc(2026, 3, 8, 3, 0), NEW_YORK, utc(2026, 3, 8, 12, 0)),
        # Berlin spring forward 2026-03-29: 01:00 CET -> 08:00 CEST
        (utc(2026, 3, 29, 0, 0), BERLIN, utc(2026, 3, 29, 6, 0)),
        # Berlin fall back 2026-10-25: 23:00 CEST on the 24th -> 08:00 CET
        (utc(2026, 10, 24, 21, 0), BERLIN, utc(2026, 10, 25, 7, 0)),
        # Tokyo, no DST: 22:30 JST -> 08:00 JST
        (utc(2026, 7, 1, 13, 30), TOKYO, utc(2026, 7, 1, 23, 0)),
        # half-open: exactly 21:00 is inside
        (utc(2026, 7, 1, 12, 0), TOKYO, utc(2026, 7, 1, 23, 0)),
        # 07:59:59 is still inside
        (utc(2026, 7, 1, 22, 59, 59), TOKYO, utc(2026, 7, 1, 23, 0)),
        # half-open: exactly 08:00 is outside; daytime is outside
        (utc(2026, 7, 1, 23, 0), TOKYO, None),
        (utc(2026, 7, 1, 3, 0), TOKYO, None),
        (utc(2026, 7, 1, 11, 59, 59), TOKYO, None),
    ],
)
def test_marketing_inside_the_window_is_deferred_to_its_end(
    now: datetime, zone: ZoneInfo, until: datetime | None
) -> None:
    assert quiet_until(now, zone, POLICY, "marketing", "normal") == until


@pytest.mark.parametrize(
    ("categories", "category", "urgency", "deferred"),
    [
        (("marketing",), "transactional", "normal", False),
        (("marketing", "transactional"), "transactional", "high", True),
        (("marketing", "transactional"), "transactional", "critical", False),
        (("marketing", "transactional"), "marketing", "critical", True),
    ],
)
def test_only_listed_categories_and_never_critical_transactional(
    categories: tuple[str, ...], category: str, urgency: str, deferred: bool
) -> None:
    policy = with_window("21:00", "08:00", *categories)
    result = quiet_until(utc(2026, 7, 1, 14, 0), TOKYO, policy, category, urgency)
    assert (result is not None) == deferred


def test_window_within_one_day() -> None:
    policy = with_window("12:00", "14:00")
    assert quiet_until(utc(2026, 7, 1, 4, 0), TOKYO, policy, "marketing", "low") == utc(2026, 7, 1, 5, 0)
    assert quiet_until(utc(2026, 7, 1, 5, 0), TOKYO, policy, "marketing", "low") is None


def test_window_ending_in_a_dst_gap_ends_just_after_the_jump() -> None:
    # 02:30 does not exist in New York on 2026-03-08; the clock reads 03:30 EDT then.
    policy = with_window("01:00", "02:30")
    assert quiet_until(utc(2026, 3, 8, 6, 30), NEW_YORK, policy, "marketing", "low") == utc(2026, 3, 8, 7, 30)


def test_window_ending_in_a_fold_is_never_in_the_past() -> None:
    # 01:30 happens twice in New York on 2026-11-01; at 01:10 EST (the second pass) it ends at 01:30 EST.
    policy = with_window("00:00", "01:30")
    assert quiet_until(utc(2026, 11, 1, 6, 10), NEW_YORK, policy, "marketing", "low") == utc(2026, 11, 1, 6, 30)


def test_equal_start_and_end_means_no_quiet_hours() -> None:
    policy = with_window("08:00", "08:00")
    assert quiet_until(utc(2026, 7, 1, 23, 0), TOKYO, policy, "marketing", "low") is None


@pytest.mark.parametrize(
    ("now", "zone", "hhmm", "expected"),
    [
        (utc(2026, 7, 1, 0, 0), TOKYO, "09:00", utc(2026, 7, 1, 0, 0)),  # at 09:00: now
        (utc(2026, 7, 1, 0, 1), TOKYO, "09:00", utc(2026, 7, 2, 0, 0)),
        (utc(2026, 3, 7, 20, 0), NEW_YORK, "09:00", utc(2026, 3, 8, 13, 0)),  # across spring forward
        (utc(2026, 3, 8, 5, 0), NEW_YORK, "02:30", utc(2026, 3, 8, 7, 30)),  # in the gap
        (utc(2026, 10, 24, 12, 0), BERLIN, "09:00", utc(2026, 10, 25, 8, 0)),  # across fall back
        (utc(2026, 11, 1, 5, 50), NEW_YORK, "01:30", utc(2026, 11, 1, 6, 30)),  # second 01:30
    ],
)
def test_next_local_time(now: datetime, zone: ZoneInfo, hhmm: str, expected: datetime) -> None:
    assert next_local_time(now, zone, hhmm) == expected
