"""Decisions per second for a 6-candidate send (run: python -m tests.channels.bench_selection):
by urgency (`escalate`, as every journey without `strategy: auto` decides) and with
`strategy: auto` for a person with engagement history on every channel (reach, cost and score
for each candidate, the order and its reason).

Counted per second of this process's CPU time (one core), so that other work on the machine does
not count against it; the wall-clock figure is printed beside it. Not collected by pytest (the
file name does not start with test_): it measures, it does not assert.
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from channels import ChannelEngagement, ConsentRecord, Profile, SendRequest, SentRecord, load_policy, select

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


def auto_request() -> SendRequest:
    """The same send with `strategy: auto`, for a person with history on every candidate."""
    request = build_request()
    half_life = timedelta(days=30)
    engagement = {}
    for n, channel in enumerate(CANDIDATES):
        counts = ChannelEngagement()
        for m in range(5):
            counts = counts.after_send(f"{channel}-{m}", NOW - timedelta(days=m + n), half_life)
        engagement[channel] = counts.after_feedback(f"{channel}-0", "engaged", NOW - timedelta(days=n), 19,
                                                    half_life) or counts
    return replace(request, strategy="auto", profile=replace(request.profile, engagement=engagement))


def decisions_per_second(request: SendRequest | None = None, seconds: float = 2.0) -> tuple[float, float]:
    """(per CPU second, per wall-clock second)."""
    policy = load_policy()
    request = request or build_request()
    select(request, policy)
    count = 0
    cpu, wall = time.process_time(), time.perf_counter()
    deadline = cpu + seconds
    while time.process_time() < deadline:
        for _ in range(1000):
            select(request, policy)
        count += 1000
    return count / (time.process_time() - cpu), count / (time.perf_counter() - wall)


if __name__ == "__main__":
    for name, made in (("by urgency (escalate)", build_request()), ("strategy auto", auto_request())):
        cpu, wall = decisions_per_second(made)
        print(f"{name}: {cpu:,.0f} decisions per CPU second ({wall:,.0f} per wall-clock second; 6 candidates, "
              f"one core)")
