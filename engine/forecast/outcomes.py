"""What a person does with one message in a forecast: it fails, or it is delivered and maybe
engaged with after some delay, drawn from the reach model of `strategy: auto`.

The chance of engagement is `channels.reach.reach`: the person's own history on the channel shrunk
towards the policy's prior, as it stands when the message is sent. A delivery fails at the rate the
person's history says (failed / (sent + prior_weight)); a new person's messages are delivered. An
engagement comes after a delay drawn from the channel's `DELAYS`, a few typical delays and their
shares: a text is read within minutes, a push opened within the hour by most who open it and
hours later by a few, an email over the day.

The outcome of a message is a small whole number (`FAILED`, an engagement after `DELAYS[c][j]`,
or `DELIVERED`), picked by one uniform draw against the cumulative chances (`Chances.cuts`). So
two people with the same history who draw the same outcome follow the same path, which is what
lets a forecast evaluate each path once (engine/forecast/paths.py).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping
from datetime import datetime, timedelta
from hashlib import blake2b
from typing import NamedTuple

from channels import CHANNELS, Policy
from channels.engagement import Engagement
from channels.reach import reach

FAILED = 0
"""The outcome of a message that was not delivered (`<channel>.failed`)."""

_MINUTE = timedelta(minutes=1)
_HOUR = timedelta(hours=1)
_PHONE = ((2 * _MINUTE, 0.8), (15 * _MINUTE, 0.19), (3 * _HOUR, 0.01))
_APP = ((5 * _MINUTE, 0.7), (30 * _MINUTE, 0.29), (3 * _HOUR, 0.01))
_EMAIL = ((30 * _MINUTE, 0.5), (3 * _HOUR, 0.35), (12 * _HOUR, 0.15))
DELAYS: Mapping[str, tuple[tuple[timedelta, float], ...]] = {
    "push": _APP, "in_app": _APP, "email": _EMAIL, "sms": _PHONE, "mms": _PHONE, "rcs": _PHONE, "webhook": _PHONE}
"""How long after it is sent a message is engaged with, when it is: three typical delays and the
share of engagements at each, per channel. Of those who open a push, 70% do within 5 minutes, 29%
within half an hour, 1% three hours later; texts within minutes; emails over the day. Three, not
more: each outcome is a path of its own (engine/forecast/classes.py)."""

DELIVERED_AFTER = timedelta(seconds=5)
"""When `<channel>.delivered` (or `.failed`) comes back after the send."""


class Chances(NamedTuple):
    """One message's outcomes: `cuts`, the cumulative chance of each outcome but the last (a draw
    below `cuts[0]` fails, below `cuts[j]` engages after the channel's `j`-th delay, at or above
    the last is delivered and ignored)."""

    channel: str
    cuts: tuple[float, ...]

    def outcome(self, draw: float) -> int:
        return bisect_right(self.cuts, draw)

    def delivered(self) -> int:
        return len(self.cuts)


def chances(channel: str, engagement: Engagement | None, at: datetime, policy: Policy) -> Chances:
    """The outcomes of a message on `channel` sent at `at` to a person with this history."""
    history = (engagement or {}).get(channel)
    failing = 0.0 if history is None else history.failed / (history.sent + policy.fast.auto.prior_weight)
    engaging = 0.0 if not policy.engagement_events(channel) else min(reach(engagement, channel, at, policy.fast),
                                                                     1.0 - failing)
    cuts, total = [failing], failing
    for _, share in DELAYS[channel]:
        total += engaging * share
        cuts.append(total)
    return Chances(channel, tuple(cuts))


def engagement_event(channel: str, policy: Policy) -> str | None:
    """The event a forecast sends back for an engagement: the first the policy lists for it."""
    events = policy.channels[channel].engagement if channel in policy.channels else ()
    return events[0] if events else None


def delay(channel: str, outcome: int) -> timedelta:
    """How long after the send the engagement of `outcome` (1 to the number of delays) comes."""
    return DELAYS[channel][outcome - 1][0]


_CHANNEL_CODES = {channel: n for n, channel in enumerate(CHANNELS)}
_MASK = (1 << 64) - 1
_SCALE = 1.0 / (1 << 64)


def person_seed(seed: int, user_id: str) -> int:
    """The root of one person's draws (`run_seed` makes each run's): the same in every version
    compared (`--vs`), so a difference between two versions is theirs, not the dice's (common
    random numbers)."""
    digest = blake2b(f"{seed}/{user_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def run_seed(person: int, run: int) -> int:
    """The root of one person's draws in one run."""
    return _mix(person + (run + 1) * 0xD1B54A32D192ED03)


def slot(channel: str, ordinal: int) -> int:
    """Which of a person's draws decides their `ordinal`-th message on `channel`: each message's
    draw is its own, whatever came before it on other channels."""
    return _CHANNEL_CODES.get(channel, 63) * 1024 + ordinal + 1


def draw(root: int, which: int) -> float:
    """The uniform draw `which` (a `slot`) of the person-run rooted at `root` (splitmix64)."""
    return _mix(root + which * 0x9E3779B97F4A7C15) * _SCALE


def _mix(z: int) -> int:
    """splitmix64's finaliser: 64 well-mixed bits from any integer."""
    z &= _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)
