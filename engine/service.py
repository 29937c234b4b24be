"""The one place that wires store + runtime + channels: events and timers in, state out.

`Engine` is the public Python API (`Engine(...).ingest(event)`); the simulator runs it
on a memory store and a virtual clock, the server on the SQL store and the wall clock.
"""

from __future__ import annotations

import itertools
import secrets
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from channels import CHANNELS, Decision, Policy, Profile, apply_keyword, classify_keyword, sms_encoding
from engine.clock import Clock
from engine.compiler import CompiledJourney
from engine.errors import EvaluationError, EventError, JourneyNotFoundError
from engine.events import Event, parse_event
from engine.ports import IdSource, Store, Tx
from engine.runtime import Runtime
from engine.state import Cancel, Instance, Outcome, Schedule, Send, Skip, Trace

CAP_WINDOW = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class Ingested:
    """What became of one event: processed, or acknowledged as a duplicate."""

    event: Event
    duplicate: bool


@dataclass(slots=True)
class Committed:
    """What one committed transaction left for the host: the earliest new timer, new sends."""

    earliest_timer: datetime | None = None
    sends: int = 0


def _deduplicated(tx: Tx, events: Sequence[Event]) -> list[Ingested]:
    """Record the events' ids; an id seen before, or earlier in this batch, marks a duplicate."""
    new_ids = tx.remember_events([e.id for e in events if e.id is not None])
    results = []
    for event in events:
        duplicate = event.id is not None and event.id not in new_ids
        if not duplicate:
            new_ids.discard(event.id or "")
        results.append(Ingested(event, duplicate))
    return results


_CARRY_OUT: dict[type, Callable[[Tx, Any], None]] = {
    Send: lambda tx, send: tx.add_message(send),
    Schedule: lambda tx, schedule: tx.add_timer(schedule.instance_id, schedule.timer),
    Cancel: lambda tx, cancel: tx.cancel_timer(cancel.timer_id),
    Skip: lambda tx, skip: tx.add_skip(skip),
    Trace: lambda tx, trace: tx.add_trace(trace),
}


def carry_out(tx: Tx, outcome: Outcome) -> None:
    """The one place the runtime's commands become store writes: the instance's new state first,
    then each command in order, through the `Tx` method it maps to."""
    if outcome.instance is not None:
        tx.save_instance(outcome.instance)
    for command in outcome.commands:
        _CARRY_OUT[type(command)](tx, command)


def ordered_ids(clock: Clock) -> IdSource:
    """Production ids: they sort in creation order, so rows keyed by them (instances, messages,
    timers) are appended to their B-trees rather than scattered over them as random UUIDs would
    be, which costs a third of the ingest time on SQLite. The prefix is the start time and a
    random part (two workers never share it); a counter follows."""
    prefix = f"{int(clock.now().timestamp() * 1000):012x}{secrets.token_hex(4)}"
    numbers = itertools.count()
    return lambda: f"{prefix}{next(numbers):010x}"


def counter_ids(prefix: str = "") -> IdSource:
    """Deterministic ids (i1, i2, ...) for dry runs, so two runs print the same output."""
    numbers = itertools.count(1)
    return lambda: f"{prefix}{next(numbers)}"


class Engine:
    """Journeys + policy + store + clock. Not thread-safe: one caller at a time."""

    def __init__(self, journeys: Iterable[CompiledJourney], policy: Policy, store: Store, clock: Clock,
                 new_id: IdSource | None = None, trace: bool = True) -> None:
        self.policy = policy
        self.store = store
        self.clock = clock
        self.runtime = Runtime(policy, trace)
        self.new_id = new_id or counter_ids("i")
        self.on_commit: Callable[[Committed], None] | None = None
        self._pending = Committed()
        self.journeys: dict[str, CompiledJourney] = {}
        self._versions: dict[tuple[str, str], CompiledJourney] = {}
        self._by_trigger: dict[str, list[CompiledJourney]] = defaultdict(list)
        for journey in journeys:
            self.load(journey)

    def load(self, journey: CompiledJourney) -> None:
        """Add or replace a journey; running instances keep the version they entered with."""
        self.journeys[journey.id] = journey
        self._versions[(journey.id, journey.version)] = journey
        self._by_trigger.clear()
        for current in self.journeys.values():
            self._by_trigger[current.definition.trigger.event].append(current)

    def journey_version(self, journey_id: str, version: str) -> CompiledJourney:
        try:
            return self._versions[(journey_id, version)]
        except KeyError:
            raise JourneyNotFoundError(f"journey '{journey_id}' version {version} is not loaded") from None

    def ingest(self, data: Mapping[str, Any] | Event) -> Ingested:
        """Validate, de-duplicate and process one event now; raises EventError naming the field."""
        return self.ingest_many([data])[0]

    def ingest_many(self, items: Sequence[Mapping[str, Any] | Event]) -> list[Ingested]:
        """Validate every item first (EventError names the field and index), then process them
        all in one transaction: durable together, or not at all."""
        now = self.clock.now()
        events = [self._parse(item, n, len(items), now) for n, item in enumerate(items)]
        return self.process_many(events)

    def process_many(self, events: Sequence[Event]) -> list[Ingested]:
        """Process already-validated events in one transaction, in order."""
        now = self.clock.now()
        self._pending = Committed()
        with self.store.transaction() as tx:
            results = _deduplicated(tx, events)
            tx.prefetch({e.user_id for e in events}, now - CAP_WINDOW)
            for result in results:
                if not result.duplicate:
                    self._process(tx, result.event, now)
        self._committed()
        return results

    def accept_many(self, events: Sequence[Event]) -> list[Ingested]:
        """Queue already-validated events for `process_queued`: durable and de-duplicated when this
        returns, processed later in the order accepted. It touches only the store, never the
        engine's state, so a host may call it while another thread is processing."""
        with self.store.transaction() as tx:
            results = _deduplicated(tx, events)
            tx.queue_events([r.event for r in results if not r.duplicate])
        return results

    def process_queued(self, limit: int = 1000) -> Sequence[Event]:
        """Process up to `limit` of the oldest queued events in one transaction; returns them."""
        now = self.clock.now()
        self._pending = Committed()
        with self.store.transaction() as tx:
            events = tx.claim_queued(limit)
            tx.prefetch({e.user_id for e in events}, now - CAP_WINDOW)
            for event in events:
                self._process(tx, event, now)
        self._committed()
        return events

    def quarantine_queued(self, error: str) -> str | None:
        """Set the oldest queued event aside (it failed to process): kept with `error`, not retried,
        so one bad event cannot hold up every event behind it. Returns its user."""
        with self.store.transaction() as tx:
            return tx.quarantine_queued(error)

    def due_timer_users(self, limit: int = 1000) -> set[str]:
        """Whose timers the next `fire_due(limit)` would fire: a host with queued events for
        them processes those first, since they came before the timers were due."""
        with self.store.transaction() as tx:
            return tx.due_timer_users(self.clock.now(), limit)

    def fire_due(self, limit: int = 1000) -> int:
        """Fire up to `limit` timers due now, in one transaction; returns how many fired."""
        now = self.clock.now()
        self._pending = Committed()
        with self.store.transaction() as tx:
            due = tx.claim_due_timers(now, limit)
            instances = [(tx.get_instance(instance_id), timer_id) for instance_id, timer_id in due]
            tx.prefetch({i.user_id for i, _ in instances if i is not None}, now - CAP_WINDOW)
            for instance, timer_id in instances:
                if instance is not None:
                    self._fire(tx, instance, timer_id, now)
        self._committed()
        return len(due)

    def _apply(self, tx: Tx, outcome: Outcome) -> None:
        """Apply an outcome, noting what the host should wake up for once the transaction commits."""
        carry_out(tx, outcome)
        for command in outcome.commands:
            if isinstance(command, Schedule):
                due = command.timer.due
                if self._pending.earliest_timer is None or due < self._pending.earliest_timer:
                    self._pending.earliest_timer = due
            elif isinstance(command, Send):
                self._pending.sends += 1

    def _committed(self) -> None:
        summary, self._pending = self._pending, Committed()
        if self.on_commit is not None and (summary.sends or summary.earliest_timer):
            self.on_commit(summary)

    def _parse(self, item: Mapping[str, Any] | Event, index: int, count: int, now: datetime) -> Event:
        if isinstance(item, Event):
            return item
        try:
            return parse_event(item, now)
        except EventError as exc:
            raise EventError(f"events[{index}].{exc}" if count > 1 else str(exc)) from None

    def _fire(self, tx: Tx, instance: Instance, timer_id: str, now: datetime) -> None:
        journey = self.journey_version(instance.journey_id, instance.version)
        profile = tx.get_profile(instance.user_id) or Profile(instance.user_id)
        sent = tx.recent_sends(instance.user_id, now - CAP_WINDOW)
        self._apply(tx, self.runtime.on_timer(instance, journey, timer_id, profile, sent, now))

    def _process(self, tx: Tx, event: Event, now: datetime) -> None:
        profile = tx.get_profile(event.user_id) or Profile(event.user_id)
        if event.type == "sms.inbound":
            profile = self._keyword(tx, event, profile, now)
        event = self._feedback(tx, event, now)
        instances = tx.active_instances(event.user_id)
        triggered = self._by_trigger.get(event.type, ())
        if not instances and not triggered:
            return
        keys: dict[str, str | None] = {}  # each journey's instance key for this event, computed once
        for instance in list(instances):
            journey = self.journey_version(instance.journey_id, instance.version)
            if journey.id not in keys:
                keys[journey.id] = self._event_key(journey, event, profile)
            if instance.key is None or keys[journey.id] in (None, instance.key):
                sent = tx.recent_sends(event.user_id, now - CAP_WINDOW)
                self._apply(tx, self.runtime.on_event(instance, journey, event, profile, sent, now))
        for journey in triggered:
            self._maybe_enter(tx, journey, event, profile, now)

    def _maybe_enter(self, tx: Tx, journey: CompiledJourney, event: Event, profile: Profile, now: datetime) -> None:
        ok, key, why = self.runtime.entry_key(journey, event, profile)
        if not ok:
            if why.startswith("trigger_error"):
                self._apply(tx, Outcome(None, [Trace(now, event.user_id, None, None, "not_entered", why)]))
            return
        if not self.runtime.may_reenter(journey, tx.entry_history(journey.id, event.user_id, key), now):
            return
        sent = tx.recent_sends(event.user_id, now - CAP_WINDOW)
        self._apply(tx, self.runtime.enter(journey, event, profile, key, self.new_id(), sent, now))

    def _event_key(self, journey: CompiledJourney, event: Event, profile: Profile) -> str | None:
        """The instance key this event carries for `journey`; None (reaches every instance) when the
        journey has no instance_key or the event lacks it (feedback such as `push.opened`)."""
        expression = journey.expression("instance_key")
        if expression is None:
            return None
        try:
            return str(expression({"event": event.context(), "profile": {"user_id": profile.user_id}}))
        except EvaluationError:
            return None

    def _feedback(self, tx: Tx, event: Event, now: datetime) -> Event:
        """`<channel>.<status>` pinned to a message: by message_id, else the user's latest on that channel."""
        channel, _, status = event.type.partition(".")
        if channel not in CHANNELS or not status or status == "inbound":
            return event
        message_id = event.properties.get("message_id")
        if message_id is None:
            message_id = tx.latest_message(event.user_id, channel)
            if message_id is None:
                return event
            event = event.with_properties(message_id=message_id)
        tx.set_message_status(str(message_id), status, now)
        return event

    def _keyword(self, tx: Tx, event: Event, profile: Profile, now: datetime) -> Profile:
        """STOP / START / HELP: consent changes at once, and one reply by SMS."""
        keyword = classify_keyword(str(event.properties.get("text", "")))
        if keyword is None:
            return profile
        outcome = apply_keyword(keyword, profile.consents, now, self.policy)
        if outcome.records:
            profile = profile.with_consents(outcome.records)
            tx.put_profile(profile)
        self._reply(tx, profile, outcome.reply_message, outcome.reply_text, now)
        return profile

    def _reply(self, tx: Tx, profile: Profile, message: str, text: str, now: datetime) -> None:
        encoding = sms_encoding(text)
        decision = Decision("sms", True, None)
        send = Send(message_id=self.new_id(), instance_id=None, journey_id=None, user_id=profile.user_id, step=None,
                    message=message, channel="sms", category="transactional", content={"text": text},
                    cost=round(self.policy.cost("sms") * encoding.segments, 6), encoding=encoding.encoding,
                    segments=encoding.segments, decisions=(decision,), at=now)
        self._apply(tx, Outcome(None, [send, Trace(now, profile.user_id, None, None, "keyword", message)]))
