"""Reference workload W1 (docs/cli.md): push, then SMS to those who ignore it.

Shared by `journey bench`, the simulator benchmark and the tests, so every figure
measures the same thing and is checked the same way.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta

from channels import ConsentRecord, Profile
from engine.compiler import CompiledJourney, load_text
from engine.events import Event
from engine.model import format_duration

OPEN_DELAY = timedelta(seconds=0.5)
_GRANTED = datetime(2025, 1, 1, tzinfo=UTC)


def w1_journey(timeout: timedelta) -> CompiledJourney:
    return load_text(w1_yaml(timeout), "w1.yaml")


def w1_yaml(timeout: timedelta) -> str:
    """The W1 journey file: push, then SMS when `push.opened` has not come within `timeout`."""
    return f"""
id: w1-push-then-sms
category: marketing
trigger: {{event: cart.abandoned}}
steps:
  - id: nudge
    type: send
    message: nudge
    channels: [push, sms]
    strategy: escalate
    escalate_after: {format_duration(timeout) if timeout.total_seconds() >= 1 else f"{timeout.total_seconds()}s"}
messages:
  nudge:
    push: {{title: "Still thinking?", body: "Your cart is waiting"}}
    sms: {{text: "Your cart is waiting: https://example.com/c/{{{{ event.properties.cart }}}}"}}
"""


def w1_profile(n: int, prefix: str = "u") -> Profile:
    """User u{n}: push token, phone, and marketing consent for push and SMS."""
    consents = tuple(ConsentRecord(channel, "marketing", True, "bench", _GRANTED) for channel in ("push", "sms"))
    return Profile(f"{prefix}{n}", "UTC", None, f"+1415555{n % 10000:04d}", f"token-{n}", False, {}, consents)


def opens(n: int) -> bool:
    """The 30% who open the push (i % 10 < 3)."""
    return n % 10 < 3


def w1_events(users: int, start: datetime, prefix: str = "u") -> Iterator[Event]:
    """Every cart.abandoned at `start`, then the opens 0.5 s later."""
    for n in range(users):
        yield cart_event(n, start, prefix)
    for n in range(users):
        if opens(n):
            yield open_event(n, start + OPEN_DELAY, prefix)


def cart_event(n: int, at: datetime, prefix: str = "u") -> Event:
    return Event("cart.abandoned", f"{prefix}{n}", at, {"cart": n}, f"{prefix}cart-{n}")


def open_event(n: int, at: datetime, prefix: str = "u") -> Event:
    return Event("push.opened", f"{prefix}{n}", at, {}, f"{prefix}open-{n}")


def check_w1(users: int, sends: Iterable[tuple[str, str]], prefix: str = "u") -> list[str]:
    """Problems with the (user_id, channel) pairs sent; empty when W1 ran correctly."""
    counts = Counter(sends)
    problems: list[str] = []
    pushes = sum(1 for (_, channel) in counts if channel == "push")
    texted = {user for (user, channel) in counts if channel == "sms"}
    expected_sms = sum(1 for n in range(users) if not opens(n))
    if pushes != users:
        problems.append(f"expected {users} pushes, got {pushes}")
    if len(texted) != expected_sms:
        problems.append(f"expected {expected_sms} SMS, got {len(texted)}")
    openers = [u for u in texted if opens(int(u[len(prefix):]))]
    if openers:
        problems.append(f"{len(openers)} SMS went to users who opened the push, e.g. {openers[0]}")
    duplicates = [pair for pair, count in counts.items() if count > 1]
    if duplicates:
        problems.append(f"{len(duplicates)} duplicate messages, e.g. {duplicates[0]}")
    return problems
