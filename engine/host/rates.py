"""Send rates per channel (the policy's `channels.<channel>.rate_per_second`).

Providers and carriers cap throughput (a US 10DLC campaign may be held to 75 SMS a minute),
and what is sent over the cap is refused or queued out of sight. The dispatcher asks `Rates`
which of the messages it claimed may go now; the others go back to the outbox `pending`, each
due when its channel will have a token for it (`Bucket.book`). The outbox's next due time is
then the next token, so the sweep wakes for it and the waiting messages leave one by one, in
the order they were queued, rather than in a burst every sweep interval; other channels' messages
are never held up.

A bucket is kept as one time (when its next token is there: the generic cell rate algorithm's
"theoretical arrival time") rather than a token count refilled with floating-point arithmetic:
exact to the microsecond. It holds one token at most, so the channel's messages leave evenly
spaced, never faster than the rate over any stretch of time, even right after a quiet spell. A
message held back books its token: when it comes back at that time it goes, late or not,
without taking another (a sweep that wakes a little late sends what is due then, rather than
sending one and pushing the others to the back). When the pace changes (a worker joins or
leaves, so each sends another share of the rate) the bookings are forgotten and the next token
is one new interval after the latest send: the server makes the held messages due again
(`Outbox.release_held`) and they are booked anew at the pace in force. The time comes from the
server's `Clock`, never the wall clock, so a virtual clock drives it in tests.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from channels import Policy
from engine.ports import OutboxItem

RESERVATION_KEPT = timedelta(minutes=1)
"""A booked token not claimed within this long after its time is forgotten: another worker sent
that message, or it was cancelled."""


@dataclass(slots=True)
class Bucket:
    """One token every `interval`, one held at most; a send takes one."""

    interval: timedelta
    next_at: datetime  # when the next token is there
    sent_at: datetime  # the latest token a send used (taken, or booked and come back)
    reserved: dict[str, datetime] = field(default_factory=dict)  # message id -> its booked token, in booking order

    @classmethod
    def empty(cls, rate_per_second: float, now: datetime) -> Bucket:
        """Empty: a server that starts right after another sent does not send at once."""
        interval = timedelta(microseconds=math.ceil(1_000_000 / rate_per_second))  # rounded up: never faster
        return cls(interval, now + interval, now)

    def take(self, now: datetime) -> bool:
        if self.next_at > now:
            return False
        self.next_at = now + self.interval
        self.sent_at = now
        return True

    def repace(self, interval: timedelta) -> None:
        """A new pace: the bookings made at the old one are forgotten (their messages are booked
        again), and the next token is one new interval after the latest send."""
        self.interval, self.next_at = interval, self.sent_at + interval
        self.reserved.clear()

    def book(self, message_id: str, now: datetime) -> datetime:
        """The next free token, taken for this message, which should come back then."""
        at = max(now, self.next_at)
        self.next_at = at + self.interval
        self.reserved[message_id] = at
        return at

    def booked(self, message_id: str, now: datetime) -> datetime | None:
        """The token this message booked, if any (given up once its time has come: it goes now)."""
        while self.reserved and next(iter(self.reserved.values())) < now - RESERVATION_KEPT:
            del self.reserved[next(iter(self.reserved))]
        at = self.reserved.get(message_id)
        if at is not None and at <= now:
            del self.reserved[message_id]
            self.sent_at = max(self.sent_at, at)
        return at


class Rates:
    """The buckets of the channels that have a send rate; false when none has."""

    def __init__(self, per_second: Mapping[str, float], now: datetime) -> None:
        self.per_second = dict(per_second)
        self.workers = 1
        self.buckets = {channel: Bucket.empty(rate, now) for channel, rate in per_second.items()}
        self._lock = threading.Lock()  # the heartbeat shares the rates while the outbox sweep rations

    def share(self, workers: int, now: datetime) -> bool:
        """Workers sharing one database each send an even share of every rate, so that together
        they send no faster than the policy says (called with each heartbeat's live count).
        True when the rates changed: what is held back was booked at the old pace, and no longer
        is (the caller has it booked again)."""
        if workers == self.workers or workers < 1:
            return False
        self.workers = workers
        with self._lock:
            for channel, rate in self.per_second.items():
                self.buckets[channel].repace(Bucket.empty(rate / workers, now).interval)
        return bool(self.per_second)

    @classmethod
    def of(cls, policy: Policy | None, now: datetime) -> Rates:
        channels = policy.channels if policy is not None else {}
        return cls({c: p.rate_per_second for c, p in channels.items() if p.rate_per_second is not None}, now)

    def __bool__(self) -> bool:
        return bool(self.buckets)

    def ration(self, items: Sequence[OutboxItem], now: datetime,
               ) -> tuple[list[OutboxItem], list[tuple[OutboxItem, datetime]]]:
        """The messages that may go now (each took a token, or comes back at or after the one it
        booked), and the others, each with the time to come back at; both in the order claimed."""
        going: list[OutboxItem] = []
        held: list[tuple[OutboxItem, datetime]] = []
        with self._lock:
            for item in items:
                bucket = self.buckets.get(item.channel)
                booked = bucket.booked(item.message_id, now) if bucket is not None else None
                if bucket is None or (booked is not None and booked <= now) or (booked is None and bucket.take(now)):
                    going.append(item)
                else:
                    held.append((item, booked or bucket.book(item.message_id, now)))
        return going, held
