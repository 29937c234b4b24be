"""Frequency caps over rolling windows, per channel and category."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from channels import SentRecord, cap_reached, load_policy

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
