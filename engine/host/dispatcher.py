"""Drains the outbox through channel providers, many messages at once.

A drain claims a batch of due messages under a lease (a token on each row: `engine.state.Fence`)
and flies it (`engine.host.flight`): a window at a time, each message is checked again right
before it is handed over (consent, the phone suppression list, the address, quiet hours:
`channels.recheck`), marked `sending`, handed to its provider's lane (`engine.host.lanes`: as
many at once as the provider takes) and recorded when its provider answers. One that may no
longer go is `cancelled` with the reason and never reaches a provider; one that falls into
quiet hours waits for the window's end.

Temporary errors are retried with backoff, trying the channel's next provider first (failover);
a permanent error, or running out of attempts, marks the message failed and becomes a
`<channel>.failed` event, so an escalation moves on at once. A provider that may have taken the
message without saying so (`engine.host.attempts`) leaves it `unknown`, never sent again, unless
the channel's providers drop duplicates by idempotency key.

A claim is sized to what this dispatcher sends in a quarter of a lease at the rate it measured,
and renewed while it flies; every write is fenced, so a dispatcher whose lease ran out can
neither record nor hand over, and the expiry never takes back what a live one is working on. A
database outage mid-flight is not a crash: what was handed over and what was not is recorded
once the database is back, if the claim still holds. A channel with a send rate
(`engine.host.rates`) sends no faster: what is over it goes back to the outbox, due when the
channel's token for it is.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import nullcontext
from datetime import datetime, timedelta
from typing import Any

from channels import Policy, Profile
from channels.providers import Provider
from channels.recheck import GO, Recheck, recheck
from engine.clock import Clock
from engine.errors import StoreError
from engine.host.attempts import attempt, outcome, result
from engine.host.flight import IN_DOUBT_MOST, IN_DOUBT_WINDOW, Answered, Flight, Row
from engine.host.lanes import Lanes, Turn
from engine.host.logs import log_dispatch
from engine.host.rates import Rates
from engine.ports import Outbox, OutboxItem
from engine.state import Fence

RATE_LIMITED = "over the channel's send rate: waits for its turn"
CLAIM_SHARE = 0.25  # a claim holds what this dispatcher sends in this share of a lease, at its measured rate

FailureSink = Callable[[list[dict[str, Any]]], None]


class Dispatcher:
    """Providers per channel (in failover order); `"*"` serves channels not listed."""

    def __init__(self, store: Outbox, providers: Mapping[str, Sequence[Provider]], clock: Clock,
                 on_failed: FailureSink, policy: Policy | None = None, batch: int = 500,
                 lease: timedelta = timedelta(seconds=60), turn: Turn = nullcontext) -> None:
        """`turn`: held around each send on a provider's lane (the engine's CPU counter)."""
        self.store = store
        self.providers = providers
        self.clock = clock
        self.on_failed = on_failed
        self.policy = policy
        self.batch = batch
        self.lease = lease
        self.lanes = Lanes(providers, turn)
        self.sent = 0
        self.cancelled: Counter[str] = Counter()  # messages kept back at dispatch, by reason
        self.outcomes: Counter[tuple[str, str]] = Counter()  # recorded attempts' outcomes by (channel, status)
        self.in_doubt = 0  # messages left `unknown`: caught mid-call by a crash, or taken without a word
        self.lost = 0  # messages of claims that ran out before they were recorded
        self.idempotent_channels = self.lanes.idempotent_channels()
        self.rates = Rates.of(policy, clock.now())
        self.throughput: float | None = None  # messages handed over a second, as measured
        self._expired_at: datetime | None = None
        self._unrecorded: tuple[Fence, list[Answered], list[Row]] | None = None
        self._failures: list[dict[str, Any]] = []

    def drain(self) -> int:
        """One claim, flown to the end; returns how many messages were claimed."""
        now = self.clock.now()
        self._record_unrecorded(now)
        self._expire_now_and_then(now)
        token = uuid.uuid4().hex
        claimed = self.store.claim_outbox(now, self.claim_size(), self.lease, token)
        if not claimed:
            return 0
        going, held = self.rates.ration(claimed, now) if self.rates else (claimed, [])
        back = [result(i, "pending", "queued", i.attempts, at, None, None, RATE_LIMITED, now) for i, at in held]
        users = {i.message_id: i.user_id for i in claimed}
        flight = Flight(self.store, self.clock, self.lanes, token, now, self.lease, self._settle, self._send,
                        self.window({i.channel for i in going}), users)
        started = time.perf_counter()
        try:
            flight.fly(going, back)
        except StoreError:
            self._unrecorded = (Fence(token, now, now, users), *flight.unrecorded(now))
            raise
        finally:
            self._account(flight.recorded)
            self.lost += flight.lost
        self._learn(flight.handed, time.perf_counter() - started)
        self._report_failures()
        return len(claimed)

    def claim_size(self) -> int:
        """What can be sent well within a lease at the measured rate (IN_DOUBT_MOST until measured)."""
        if self.throughput is None:
            return min(self.batch, IN_DOUBT_MOST)
        return min(self.batch, max(IN_DOUBT_MOST, int(self.throughput * self.lease.total_seconds() * CLAIM_SHARE)))

    def window(self, channels: Collection[str]) -> int:
        """How many messages of these channels may be `sending` at once, which is what a crash may
        leave in doubt: one for each thread of their providers' lanes, so that all are busy, and
        queued behind them about IN_DOUBT_WINDOW seconds of sends at the providers' measured
        speed, up to IN_DOUBT_MOST in all."""
        threads = self.lanes.threads(channels)
        ahead = int(self.lanes.speed(channels) * IN_DOUBT_WINDOW)
        return max(threads + 1, min(IN_DOUBT_MOST, threads + ahead))

    def close(self) -> None:
        """Let the providers' threads go, once the calls under way are answered."""
        self.lanes.close()

    def _learn(self, handed: int, seconds: float) -> None:
        """The send rate (messages a second), smoothed: how big the next claim may be."""
        if handed and seconds > 0:
            measured = handed / seconds
            self.throughput = measured if self.throughput is None else 0.5 * self.throughput + 0.5 * measured

    def _settle(self, items: Sequence[OutboxItem], now: datetime) -> tuple[list[OutboxItem], list[Answered]]:
        """Each message checked again as of now: those that go, and the others' rows (cancelled
        with the reason, or deferred to the end of quiet hours)."""
        verdicts = self._rechecks(items, now)
        going: list[OutboxItem] = []
        settled: list[Answered] = []
        for item in items:
            verdict = verdicts.get(item.message_id, GO)
            if verdict.cancel is not None:
                settled.append((item, result(item, "cancelled", "cancelled", item.attempts, None, None, None,
                                             verdict.cancel, now)))
            elif verdict.defer_until is not None:
                settled.append((item, result(item, "pending", "queued", item.attempts, verdict.defer_until, None,
                                             None, "quiet hours", now)))
            else:
                going.append(item)
        return going, settled

    def _send(self, item: OutboxItem, now: datetime) -> Row:
        """On the lane's thread: the attempt through the channel's providers."""
        return attempt(item, self.lanes.chain(item.channel), item.channel in self.idempotent_channels, self.clock,
                       now, self.lanes.gate)

    def _rechecks(self, items: Sequence[OutboxItem], now: datetime) -> dict[str, Recheck]:
        """Each message's verdict as of now, from its recipient's profile and number as committed:
        two queries per window. Keyword replies (no instance) always go: a STOP is confirmed."""
        if self.policy is None or not items:
            return {}
        policy = self.policy
        profiles = self.store.recipients({i.user_id for i in items})
        numbers = {p.phone for p in profiles.values() if p.phone}
        suppressed = self.store.suppressions(numbers) if numbers else {}
        verdicts = {}
        for item in items:
            if item.instance_id is None:
                continue
            profile: Profile | None = profiles.get(item.user_id)
            since = suppressed.get(profile.phone) if profile is not None and profile.phone else None
            verdicts[item.message_id] = recheck(profile, item.channel, item.category, policy, now, since)
        return verdicts

    def _account(self, recorded: Sequence[Answered]) -> None:
        """Counts, a log line and (for a failure) a `<channel>.failed` event per recorded attempt."""
        for item, row in recorded:
            unusable = row.pop("unusable_address", False)
            self.outcomes[(item.channel, outcome(row))] += 1
            dispatch = row["dispatch"]
            self.sent += dispatch == "sent"
            self.in_doubt += dispatch == "unknown"
            if dispatch == "cancelled":
                self.cancelled[row["error"]] += 1
            log_dispatch(row, item.user_id, item.channel)
            if dispatch == "failed":
                self._failures.append(_failed_event(item, row["error"], row["at"], unusable))

    def _report_failures(self) -> None:
        failures, self._failures = self._failures, []
        if failures:
            self.on_failed(failures)

    def _record_unrecorded(self, now: datetime) -> None:
        """What a database outage kept from being recorded, recorded now if the claim still holds
        (its lease has not run out: no other dispatcher can have taken those messages over); else
        the lease's expiry deals with them as with a crashed dispatcher's."""
        if self._unrecorded is None:
            return
        claim, answered, back = self._unrecorded
        held = self.store.finish_outbox([row for _, row in answered] + back,
                                        Fence(claim.token, now, now + self.lease, claim.users))
        self._unrecorded = None
        self._account([(i, row) for i, row in answered if row["message_id"] in held])
        self._report_failures()

    def _expire_now_and_then(self, now: datetime) -> None:
        """Leases of a dispatcher that stopped mid-flight run out after `lease`: look a few times a lease."""
        if self._expired_at is None or now - self._expired_at >= self.lease / 4:
            self._expired_at = now
            self.in_doubt += self.store.expire_interrupted(now, self.idempotent_channels)


def _failed_event(item: OutboxItem, error: str, now: datetime, unusable: bool = False) -> dict[str, Any]:
    """`unusable_address` (with the address) asks the server to drop that address from the profile."""
    properties: dict[str, Any] = {"message_id": item.message_id, "error": error}
    if unusable:
        properties.update(unusable_address=True, address=item.address)
    return {"type": f"{item.channel}.failed", "user_id": item.user_id, "timestamp": now.isoformat(),
            "properties": properties}
