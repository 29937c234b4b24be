"""Decisions per second for a 6-candidate send (run: python -m tests.channels.bench_selection).

Not collected by pytest (the file name does not start with test_): it
measures, it does not assert.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from channels import ConsentRecord, Profile, SendRequest, SentRecord, load_policy, select

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
CANDIDATES = ("push", "email", "rcs", "sms", "mms", "in_app")


def build_request() -> SendRequest:
    consents = tuple(
        ConsentRecord(ch, "marketing", True, "web", NOW - timedelta(days=30))
        for ch in ("push", "email", "sms", "mms", "in_app")
    )
    profile = Profile(
        "u1",
        phone="+14155550123",
        email="u1@example.com",
        push_token="tok",
        consents=consents,
    )
    contents = {
        "push": {"title": "Forgot something?", "body": "3 items wait in your cart"},
        "email": {"subject": "Your cart", "body": "..."},
        "rcs": {"text": "Your cart is waiting"},
        "sms": {"text": "Ann, your cart: https://example.com/c/123"},
        "mms": {"text": "Your cart", "media_url": "https://example.com/cart.png"},
        "in_app": {"title": "Cart", "body": "..."},
    }
    sent = tuple(SentRecord("push", "marketing", NOW - timedelta(hours=h)) for h in (3, 30))
    return SendRequest(profile=profile, category="marketing", urgency="normal", candidates=CANDIDATES,
                       contents=contents,
                       template_errors={}, sent=sent, now=NOW)


def decisions_per_second(seconds: float = 2.0) -> float:
    policy = load_policy()
    request = build_request()
    select(request, policy)
    count, start = 0, time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        for _ in range(1000):
            select(request, policy)
        count += 1000
    return count / (time.perf_counter() - start)


if __name__ == "__main__":
    print(f"{decisions_per_second():,.0f} decisions/s (6 candidates, one core)")
