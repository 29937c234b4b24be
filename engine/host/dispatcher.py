"""Drains the outbox through channel providers.

A message is leased before its attempt and marked after it, so two workers never take the
same row. Right before every attempt, first or retry, the message is checked again (consent,
the phone suppression list, the address, quiet hours: `channels.recheck`): one that may no
longer go is `cancelled` with the reason and never reaches a provider; one that falls into
quiet hours waits for the window's end. Temporary errors are retried with backoff, trying the
channel's next provider first (failover); a provider that raises anything else is treated as
temporary for that one message, and the rest of the batch is recorded as usual. A permanent
error, or running out of attempts, marks the message failed and becomes a `<channel>.failed`
event, so an escalation moves on at once. A database outage mid-batch is not a crash: what was
handed over and what was not is recorded once the database is back, within the claim's lease.
A channel with a send rate (`engine.host.rates`) sends no faster: what is over it goes back to
the outbox, due when the channel's next token is.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from channels import CHANNELS, Policy, Profile
from channels.providers import (
    DeliveryError,
    OutboundMessage,
    PermanentDeliveryError,
    Provider,
    TemporaryDeliveryError,
)
from channels.recheck import GO, Recheck, recheck
from engine.clock import Clock
from engine.errors import StoreError
from engine.host.logs import fields, log_dispatch
from engine.host.rates import Rates
from engine.ports import Outbox, OutboxItem

log = logging.getLogger("journey.dispatcher")

IN_DOUBT_WINDOW = 0.05  # seconds of sends recorded together: what one crash can leave in doubt
IN_DOUBT_MOST = 32  # and at most this many messages
BACKOFF = (timedelta(seconds=1), timedelta(seconds=5), timedelta(seconds=30), timedelta(minutes=2),
           timedelta(minutes=10))
MAX_ATTEMPTS = len(BACKOFF) + 1
RATE_LIMITED = "over the channel's send rate: waits for its turn"

FailureSink = Callable[[list[dict[str, Any]]], None]


class Dispatcher:
    """Providers per channel (in failover order); `"*"` serves channels not listed."""

    def __init__(self, store: Outbox, providers: Mapping[str, Sequence[Provider]], clock: Clock,
                 on_failed: FailureSink, policy: Policy | None = None, batch: int = 500,
                 lease: timedelta = timedelta(seconds=60)) -> None:
        self.store = store
        self.providers = providers
        self.clock = clock
        self.on_failed = on_failed
        self.policy = policy
        self.batch = batch
        self.lease = lease
        self.sent = 0
        self.cancelled: Counter[str] = Counter()  # messages kept back at dispatch, by reason
        self.outcomes: Counter[tuple[str, str]] = Counter()  # attempts' outcomes by (channel, status)
        self.in_doubt = 0  # messages caught mid-call by a crash and not retried: `unknown`
        self.idempotent_channels = _idempotent_channels(providers)
        self._buffering: list[Any] = list({id(p): p for ps in providers.values() for p in ps
                                            if hasattr(p, "flush")}.values())  # providers with a `flush`
        self.rates = Rates.of(policy, clock.now())
        self._rate = 100.0  # messages a second, until measured
        self._expired_at: datetime | None = None
        self._unrecorded: tuple[datetime, list[dict[str, Any]], list[dict[str, Any]]] | None = None

    def drain(self) -> int:
        """One batch: claim, check again, attempt, record; returns how many messages were claimed.

        Results are recorded group by group, each group about `IN_DOUBT_WINDOW` seconds of sends
        at the rate measured so far, and the next group is marked `sending` in the same write: a
        crash leaves at most one group in doubt, and the rest of the batch, never handed to a
        provider, `leased`, to be sent after a restart."""
        now = self.clock.now()
        self._record_unrecorded(now)
        self._expire_now_and_then(now)
        claimed, items = self._claim(now)
        failures: list[dict[str, Any]] = []
        position, results = 0, []
        try:
            verdicts = self._rechecks(items, now)
            group = items[:self._group_size()]
            while group:
                position += len(group)
                started = time.perf_counter()
                results = [self._record(item, verdicts.get(item.message_id, GO), now, failures) for item in group]
                self._flush(group, results, now, failures)
                self._learn(len(group), time.perf_counter() - started)
                group = items[position:position + self._group_size()]
                self.store.finish_outbox(results, sending=[i.message_id for i in group])
                results = []
        except StoreError:
            self._keep_unrecorded(now, results, items[position:], failures)
            raise
        if failures:
            self.on_failed(failures)
        return claimed

    def _claim(self, now: datetime) -> tuple[int, list[OutboxItem]]:
        """How many messages were claimed, and those to attempt now. With send rates, what is over
        them goes back to `pending`, due at its turn, in the write that marks the first group
        `sending`: a message held back is never `sending`, so a crash never leaves one in doubt."""
        if not self.rates:
            items = self.store.claim_outbox(now, self.batch, self.lease, sending=self._group_size())
            return len(items), items
        claimed = self.store.claim_outbox(now, self.batch, self.lease, sending=0)
        items, held = self.rates.ration(claimed, now)
        back = [_result(item, "pending", "queued", item.attempts, at, None, None, RATE_LIMITED, now)
                for item, at in held]
        try:
            self.store.finish_outbox(back, sending=[i.message_id for i in items[:self._group_size()]])
        except StoreError:
            self._keep_unrecorded(now, back, items, [])
            raise
        return len(claimed), items

    def _keep_unrecorded(self, claimed: datetime, results: list[dict[str, Any]], unhanded: Sequence[OutboxItem],
                         failures: list[dict[str, Any]]) -> None:
        """The database went away mid-batch: this process still knows what it handed over and
        what it did not. Kept for when the database is back, rather than left for the lease to run
        out as after a crash (the group in doubt, the rest held up for a whole lease)."""
        back = [_result(i, "pending", "queued", i.attempts, claimed, None, None, None, claimed) for i in unhanded]
        self._unrecorded = (claimed, results + back, failures)

    def _record_unrecorded(self, now: datetime) -> None:
        """What a database outage kept from being recorded, recorded while the claim's lease holds
        (no other dispatcher can have taken those messages over); after that, the lease's expiry
        deals with them as with a crashed dispatcher's."""
        if self._unrecorded is None:
            return
        claimed, results, failures = self._unrecorded
        if now - claimed < self.lease / 2:
            self.store.finish_outbox(results)
        else:  # too late: the database knows only the groups recorded before the outage
            unrecorded = {r["message_id"] for r in results}
            failures = [f for f in failures if f["properties"]["message_id"] not in unrecorded]
        self._unrecorded = None
        if failures:
            self.on_failed(failures)

    def _record(self, item: OutboxItem, verdict: Recheck, now: datetime, failures: list[dict[str, Any]],
                ) -> dict[str, Any]:
        result = self._settle(item, verdict, now)
        self.outcomes[(item.channel, _outcome(result))] += 1
        unusable = result.pop("unusable_address", False)
        log_dispatch(result, item.user_id, item.channel)
        if result["dispatch"] == "failed":
            failures.append(_failed_event(item, result["error"], now, unusable))
        return result

    def _flush(self, group: Sequence[OutboxItem], results: list[dict[str, Any]], now: datetime,
               failures: list[dict[str, Any]]) -> None:
        """The providers that buffer hand the group's sends over now, before any is recorded sent;
        the sends of one that cannot are tried again later, as after a temporary failure."""
        for provider in self._buffering:
            try:
                provider.flush()
            except DeliveryError as exc:
                log.warning("temporary failure", extra=fields(provider=provider.name, error=str(exc)))
                for n, (item, result) in enumerate(zip(group, results, strict=True)):
                    if result["dispatch"] == "sent" and result["provider"] == provider.name:
                        self.sent -= 1
                        self.outcomes[(item.channel, "sent")] -= 1
                        results[n] = self._not_sent(item, result["attempts"], f"{provider.name}: {exc}", now)
                        self.outcomes[(item.channel, _outcome(results[n]))] += 1
                        if results[n]["dispatch"] == "failed":
                            failures.append(_failed_event(item, results[n]["error"], now))

    def _group_size(self) -> int:
        return max(1, min(self.batch, IN_DOUBT_MOST, int(self._rate * IN_DOUBT_WINDOW)))

    def _learn(self, sent: int, seconds: float) -> None:
        """The send rate (messages a second), smoothed: how big the next group may be."""
        if seconds > 0:
            self._rate = 0.5 * self._rate + 0.5 * (sent / seconds)

    def _expire_now_and_then(self, now: datetime) -> None:
        """Leases of a dispatcher that stopped mid-batch run out after `lease`: look a few times a lease."""
        if self._expired_at is None or now - self._expired_at >= self.lease / 4:
            self._expired_at = now
            self.in_doubt += self.store.expire_interrupted(now, self.idempotent_channels)

    def _rechecks(self, items: Sequence[OutboxItem], now: datetime) -> dict[str, Recheck]:
        """Each message's verdict as of now, from its recipient's profile and number as committed:
        two queries per batch. Keyword replies (no instance) always go: a STOP is confirmed."""
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

    def _settle(self, item: OutboxItem, verdict: Recheck, now: datetime) -> dict[str, Any]:
        if verdict.cancel is not None:
            self.cancelled[verdict.cancel] += 1
            return _result(item, "cancelled", "cancelled", item.attempts, None, None, None, verdict.cancel, now)
        if verdict.defer_until is not None:
            return _result(item, "pending", "queued", item.attempts, verdict.defer_until, None, None,
                           "quiet hours", now)
        return self._attempt(item, now)

    def _attempt(self, item: OutboxItem, now: datetime) -> dict[str, Any]:
        message = OutboundMessage(item.message_id, item.user_id, item.channel, item.category, item.content,
                                  item.address)
        attempts = item.attempts + 1
        error = "no provider for this channel"
        for provider in self.providers.get(item.channel) or self.providers.get("*") or ():
            try:
                provider_id = provider.send(message)
            except TemporaryDeliveryError as exc:
                error = f"{provider.name}: {exc}"
                log.warning("temporary failure", extra=fields(message_id=item.message_id, channel=item.channel,
                                                              provider=provider.name, error=str(exc)))
                continue
            except PermanentDeliveryError as exc:
                result = _result(item, "failed", "failed", attempts, None, provider.name, None, str(exc), now)
                return {**result, "unusable_address": exc.unusable_address}
            except Exception as exc:  # noqa: BLE001 - one provider's bug must not sink the batch
                error = f"{provider.name}: {type(exc).__name__}: {exc}"
                log.exception("provider raised; treated as temporary", extra=fields(
                    message_id=item.message_id, channel=item.channel, provider=provider.name))
                continue
            self.sent += 1  # status_at: when the provider took it, not when the batch began
            return _result(item, "sent", "sent", attempts, None, provider.name, provider_id, None, self.clock.now())
        return self._not_sent(item, attempts, error, now)

    @staticmethod
    def _not_sent(item: OutboxItem, attempts: int, error: str, now: datetime) -> dict[str, Any]:
        """No provider took it this time: retried with backoff, or failed once out of attempts."""
        if attempts >= MAX_ATTEMPTS:
            return _result(item, "failed", "failed", attempts, None, None, None, f"gave up: {error}", now)
        retry_at = now + BACKOFF[attempts - 1]
        return _result(item, "pending", "queued", attempts, retry_at, None, None, error, now)


def _outcome(result: dict[str, Any]) -> str:
    """The `status` label of `journey_messages_total`: sent, failed, cancelled, or for a message
    still pending, deferred (quiet hours) or retried (a temporary failure, tried again later)."""
    if result["dispatch"] != "pending":
        return str(result["dispatch"])
    return "deferred" if result["error"] == "quiet hours" else "retried"


def _idempotent_channels(providers: Mapping[str, Sequence[Provider]]) -> frozenset[str]:
    """Channels every provider of which takes an idempotency key: a send caught mid-call by a
    crash is retried there (the provider drops the duplicate) rather than left `unknown`."""
    channels = set(CHANNELS) if "*" in providers else set()
    channels |= set(providers) - {"*"}
    chosen = {c: providers.get(c) or providers.get("*") or () for c in channels}
    return frozenset(c for c, serving in chosen.items() if serving and all(getattr(p, "idempotent", False)
                                                                             for p in serving))


def _result(item: OutboxItem, dispatch: str, status: str, attempts: int, retry_at: datetime | None,
            provider: str | None, provider_id: str | None, error: str | None, now: datetime) -> dict[str, Any]:
    return {"message_id": item.message_id, "dispatch": dispatch, "status": status, "attempts": attempts,
            "next_attempt_at": retry_at, "provider": provider, "provider_id": provider_id, "error": error,
            "at": now}


def _failed_event(item: OutboxItem, error: str, now: datetime, unusable: bool = False) -> dict[str, Any]:
    """`unusable_address` (with the address) asks the server to drop that address from the profile."""
    properties: dict[str, Any] = {"message_id": item.message_id, "error": error}
    if unusable:
        properties.update(unusable_address=True, address=item.address)
    return {"type": f"{item.channel}.failed", "user_id": item.user_id, "timestamp": now.isoformat(),
            "properties": properties}
