"""Frequency caps over rolling windows, per channel and category."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from channels import Policy, SentRecord, cap_reached, load_policy
from channels.policy import Cap

POLICY = load_policy()  # marketing: 3 per day, 10 per week
NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def sends(channel: str, *hours_ago: float, category: str = "marketing") -> list[SentRecord]:
    return [SentRecord(channel, category, NOW - timedelta(hours=h)) for h in hours_ago]


@pytest.mark.parametrize(
    ("sent", "channel", "category", "reached"),
    [
        (sends("sms", 1, 2), "sms", "marketing", False),
        (sends("sms", 1, 2, 3), "sms", "marketing", True),
        (sends("sms", 1, 2, 24), "sms", "marketing", False),  # 24h ago has left the day window
        (sends("sms", 1, 2, 23.9), "sms", "marketing", True),
        (sends("sms", 1, 2, 3), "push", "marketing", False),  # per channel
        (sends("sms", 1, 2, 3, category="transactional"), "sms", "marketing", False),
        (sends("sms", 1, 2, 3, category="transactional"), "sms", "transactional", False),  # uncapped
        (sends("email", *range(25, 160, 15)), "email", "marketing", False),  # 9 this week
        (sends("email", *range(25, 175, 15)), "email", "marketing", True),  # 10 this week
        (sends("email", *range(25, 160, 15), 24 * 7), "email", "marketing", False),  # 7 days: gone
        (sends("email", *range(25, 160, 15), 24 * 7 - 1), "email", "marketing", True),
        (sends("sms", -1, -2, -3), "sms", "marketing", False),  # future records don't count
    ],
)
def test_cap_reached(sent: list[SentRecord], channel: str, category: str, reached: bool) -> None:
    assert cap_reached(sent, channel, category, NOW, POLICY) is reached


NEW_YORK = ZoneInfo("America/New_York")  # NOW is 10:00 EST on Monday 2 March


def calendar_policy(tmp_path: Path, cap: str) -> Policy:
    path = tmp_path / "policy.yaml"
    path.write_text(f"frequency_caps:\n  marketing: {cap}\n", encoding="utf-8")
    return load_policy(path)


@pytest.mark.parametrize(
    ("hours_ago", "reached"),
    [
        (10.5, False),  # 23:30 EST on Sunday: yesterday
        (10, True),  # 00:00 EST, exactly midnight: today
        (1, True),
    ],
)
def test_calendar_day_counts_since_local_midnight(tmp_path: Path, hours_ago: float, reached: bool) -> None:
    sent = sends("sms", hours_ago)
    calendar = calendar_policy(tmp_path, "{per_day: 1, window: calendar_day}")
    assert cap_reached(sent, "sms", "marketing", NOW, calendar, NEW_YORK) is reached
    rolling = calendar_policy(tmp_path, "{per_day: 1}")
    assert cap_reached(sent, "sms", "marketing", NOW, rolling, NEW_YORK)  # within the last 24 h


def test_calendar_days_are_the_recipients() -> None:
    """23:30 EST on Sunday is already Monday in UTC (the policy default zone)."""
    policy = POLICY.model_copy(update={"frequency_caps": {"marketing": Cap(per_day=1, window="calendar_day")}})
    sent = sends("sms", 10.5)
    assert not cap_reached(sent, "sms", "marketing", NOW, policy, NEW_YORK)
    assert cap_reached(sent, "sms", "marketing", NOW, policy)


def test_a_calendar_week_is_today_and_the_six_days_before() -> None:
    policy = POLICY.model_copy(update={"frequency_caps": {"marketing": Cap(per_week=2, window="calendar_day")}})
    tuesday_before = 6 * 24 + 10  # local midnight starting Tuesday 24 Feb
    assert cap_reached(sends("email", 1, tuesday_before), "email", "marketing", NOW, policy, NEW_YORK)
    assert not cap_reached(sends("email", 1, tuesday_before + 0.5), "email", "marketing", NOW, policy, NEW_YORK)


def test_a_region_cap_may_count_calendar_days(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("regions:\n  FR:\n    caps: [{category: marketing, channels: [sms, push], per_day: 2, "
                    "window: calendar_day}]\n", encoding="utf-8")
    policy = load_policy(path)
    paris = ZoneInfo("Europe/Paris")  # NOW is 16:00 in Paris
    sent = sends("sms", 1) + sends("push", 15.5)  # 00:30 in Paris: today
    assert cap_reached(sent, "email", "marketing", NOW, policy, paris, "FR") is False
    assert cap_reached(sent, "sms", "marketing", NOW, policy, paris, "FR")
    assert not cap_reached(sends("sms", 1) + sends("push", 16.5), "sms", "marketing", NOW, policy, paris, "FR")
    assert policy.fast.rules_for("FR").calendar == frozenset({"marketing"})
