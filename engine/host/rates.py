"""Send rates per channel (the policy's `channels.<channel>.rate_per_second`).

Providers and carriers cap throughput (a US 10DLC campaign may be held to 75 SMS a minute),
and what is sent over the cap is refused or queued out of sight. The dispatcher asks `Rates`
which of the messages it claimed may go now; the others go back to the outbox `pending`, each
due when its channel will have a token for it (`Bucket.book`). The outbox's next due time is
then the next token, so the sweep wakes for it and the waiting messages leave one by one, in
the order they were queued, rather than in a burst every sweep interval; other channels' messages
are never held up.

A bucket is kept as one time (when it is full again: the generic cell rate algorithm's
"theoretical arrival time") rather than a token count refilled with floating-point arithmetic:
exact to the microsecond, so a message booked for a token's time finds that token there. The
time comes from the server's `Clock`, never the wall clock, so a virtual clock drives it in tests.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from channels import Policy
from engine.ports import OutboxItem


@dataclass(slots=True)
class Bucket:
    """At most `burst` tokens, one more every `interval`; a send takes one."""

    interval: timedelta
    burst: int
    full_at: datetime  # the bucket holds `burst` tokens from this time on
    booked: datetime | None = None  # the latest time handed to a message held back

    @classmethod
    def empty(cls, rate_per_second: float, now: datetime) -> Bucket:
        """Holding one second's worth at most (one token at least), and empty: a server that
        starts right after another sent a burst does not send a second one at once."""
        interval = timedelta(microseconds=math.ceil(1_000_000 / rate_per_second))  # rounded up: never faster
        burst = max(1, int(rate_per_second))
        return cls(interval, burst, now + burst * interval)

    def next_token(self, now: datetime) -> datetime:
        """When a token is there: `now` if one is."""
        return max(now, self.full_at - (self.burst - 1) * self.interval)

    def take(self, now: datetime) -> bool:
        if self.next_token(now) > now:
            return False
        self.full_at = max(self.full_at, now) + self.interval
        return True

    def book(self, now: datetime) -> datetime:
        """When a message that found no token should come back: the next token not promised
        already to a message held back before it, so the held ones leave in turn."""
        at = self.next_token(now)
        if self.booked is not None:
            at = max(at, self.booked + self.interval)
        self.booked = at
        return at


class Rates:
    """The buckets of the channels that have a send rate; false when none has."""

    def __init__(self, per_second: Mapping[str, float], now: datetime) -> None:
        self.per_second = dict(per_second)
        self.workers = 1
        self.buckets = {channel: Bucket.empty(rate, now) for channel, rate in per_second.items()}

    def share(self, workers: int, now: datetime) -> bool:
        """Workers sharing one database each send an even share of every rate, so that together
        they send no faster than the policy says (called with each heartbeat's live count).
        True when the rates changed: what is held back was booked at the old pace, and no longer
        is (the caller has it booked again)."""
        if workers == self.workers or workers < 1:
            return False
        self.workers = workers
        for channel, rate in self.per_second.items():
            fresh = Bucket.empty(rate / workers, now)
            bucket = self.buckets[channel]
            bucket.interval, bucket.burst, bucket.booked = fresh.interval, fresh.burst, None
        return bool(self.per_second)

    @classmethod
    def of(cls, policy: Policy | None, now: datetime) -> Rates:
        channels = policy.channels if policy is not None else {}
        return cls({c: p.rate_per_second for c, p in channels.items() if p.rate_per_second is not None}, now)

    def __bool__(self) -> bool:
        return bool(self.buckets)

    def ration(self, items: Sequence[OutboxItem], now: datetime,
               ) -> tuple[list[OutboxItem], list[tuple[OutboxItem, datetime]]]:
        """The messages that may go now (each took a token), and the others, each with the time
        to come back at; both in the order claimed."""
        going: list[OutboxItem] = []
        held: list[tuple[OutboxItem, datetime]] = []
        for item in items:
            bucket = self.buckets.get(item.channel)
            if bucket is None or bucket.take(now):
                going.append(item)
            else:
                held.append((item, bucket.book(now)))
        return going, held
