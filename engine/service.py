"""The one place that wires store + runtime + channels: events and timers in, state out.

`Engine` is the public Python API (`Engine(...).ingest(event)`); the simulator runs it
on a memory store and a virtual clock, the server on the SQL store and the wall clock.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from functools import partial
from typing import Any

from channels import (
    CHANNELS,
    Decision,
    Keyword,
    Policy,
    Profile,
    SentRecord,
    apply_keyword,
    classify_keyword,
    sms_encoding,
)
from channels.recheck import with_suppression
from engine.clock import Clock, counter_ids
from engine.compiler import CompiledJourney
from engine.errors import EvaluationError, EventError, JourneyNotFoundError, StoreError
from engine.events import FEEDBACK_STATUSES, Event, parse_event
from engine.expressions import instant
from engine.ports import IdSource, Store, Tx, carry_out
from engine.runtime import Runtime
from engine.state import (
    EVENT_MARK,
    Committed,
    Failure,
    Ingested,
    Instance,
    Mark,
    Outcome,
    Schedule,
    Send,
    Skip,
    Trace,
    journey_context,
    profile_context,
)
from engine.steps.needs import NOTHING, Needs, needs_of

VersionSource = Callable[[str, str], "CompiledJourney | None"]
"""Finds a journey version that is not loaded (an instance entered it before a change or a
restart): the host compiles it from the source the store kept."""


class Catalog:
    """The journeys an engine runs: the current version of each (for new entries), every version
    an instance may still be on (compiled from the store on demand), and each journey's state:
    a paused or stopped journey takes no new entries."""

    def __init__(self, journeys: Iterable[CompiledJourney], source: VersionSource | None = None) -> None:
        self.current: dict[str, CompiledJourney] = {}
        self.states: dict[str, str] = {}
        self._versions: dict[tuple[str, str], CompiledJourney] = {}
        self._source = source
        self._by_trigger: dict[str, list[CompiledJourney]] = {}
        self.needs: Needs = NOTHING  # what the journeys (every version known) need kept about each user
        for journey in journeys:
            self.load(journey)

    def load(self, journey: CompiledJourney) -> None:
        self.current[journey.id] = journey
        self._versions[(journey.id, journey.version)] = journey
        self._index()

    def unload(self, journey_id: str) -> None:
        """No new entries; its instances finish on their versions."""
        self.current.pop(journey_id, None)
        self._index()

    def set_state(self, journey_id: str, state: str) -> None:
        self.states[journey_id] = state
        self._index()

    def state(self, journey_id: str) -> str:
        return self.states.get(journey_id, "active")

    def triggered(self, event_type: str) -> Sequence[CompiledJourney]:
        return self._by_trigger.get(event_type, ())

    def version(self, journey_id: str, version: str) -> CompiledJourney:
        found = self._versions.get((journey_id, version))
        if found is None and self._source is not None:
            found = self._source(journey_id, version)
            if found is not None:
                self._versions[(journey_id, version)] = found
                self.needs = needs_of(self._versions.values())
        if found is None:
            raise JourneyNotFoundError(f"journey '{journey_id}' version {version} is not loaded")
        return found

    def _index(self) -> None:
        by_trigger: dict[str, list[CompiledJourney]] = defaultdict(list)
        for journey in self.current.values():
            event = journey.definition.trigger.event  # None: entered by audience runs, never by an event
            if event is not None and self.state(journey.id) == "active":
                by_trigger[event].append(journey)
        self._by_trigger = dict(by_trigger)
        self.needs = needs_of(self._versions.values())


def as_seen(tx: Tx, profile: Profile) -> Profile:
    """The profile as the channel rules must see it: opted out of the phone channels while its
    number is on the suppression list (prefetched with the batch: no query per event)."""
    return with_suppression(profile, tx.suppressed_since(profile.phone)) if profile.phone else profile


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


class Engine:
    """Journeys + policy + store + clock. Not thread-safe: one caller at a time."""

    def __init__(self, journeys: Iterable[CompiledJourney], policy: Policy, store: Store, clock: Clock,
                 new_id: IdSource | None = None, trace: bool = True, versions: VersionSource | None = None) -> None:
        self.policy = policy
        self.store = store
        self.clock = clock
        self.runtime = Runtime(policy, trace)
        self.new_id = new_id or counter_ids("i")
        self.on_commit: Callable[[Committed], None] | None = None
        self._pending = Committed()
        self.catalog = Catalog(journeys, versions)
        self.on_failure: Callable[[Failure], None] = lambda failure: None  # after commit, each instance that failed
        self.keep_outcomes = False  # the host's decision log: each transaction's outcomes in its `Committed`

    @property
    def journeys(self) -> Mapping[str, CompiledJourney]:
        """The current version of each loaded journey, by id."""
        return self.catalog.current

    def load(self, journey: CompiledJourney) -> None:
        """Add or replace a journey; running instances keep the version they entered with."""
        self.catalog.load(journey)

    def journey_version(self, journey_id: str, version: str) -> CompiledJourney:
        return self.catalog.version(journey_id, version)

    def stop_journey(self, journey_id: str, limit: int = 1000) -> int:
        """End every active instance of the journey as `exited` (reason `journey_stopped`), their
        timers cancelled, a batch per transaction; returns how many ended."""
        ended = 0
        while True:
            now = self.clock.now()
            with self.unit() as tx:
                batch = tx.active_instances_of(journey_id, limit)
                self.prefetch(tx, {i.user_id for i in batch}, now)
                for instance in batch:
                    self._apply(tx, self.runtime.end(instance, "exited", "journey_stopped", now))
            ended += len(batch)
            if len(batch) < limit:
                return ended

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
        with self.unit() as tx:
            results = _deduplicated(tx, events)
            self.prefetch(tx, {e.user_id for e in events}, now)
            for result in results:
                if not result.duplicate:
                    self._process(tx, result.event, now)
        return results

    @contextmanager
    def unit(self) -> Iterator[Tx]:
        """One transaction of the engine's work; once it commits, `on_commit` hears what it did."""
        self._pending = Committed()
        with self.store.transaction() as tx:
            yield tx
        self._committed()

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
        with self.unit() as tx:
            events = tx.claim_queued(limit)
            self.prefetch(tx, {e.user_id for e in events}, now)
            for event in events:
                self._process(tx, event, now)
        return events

    def quarantine_queued(self, error: str) -> str | None:
        """Set the oldest queued event aside (it failed to process): kept with `error`, not retried,
        so one bad event cannot hold up every event behind it. Returns its user."""
        with self.store.transaction() as tx:
            return tx.quarantine_queued(error)

    def due_timer_users(self, limit: int = 1000, now: datetime | None = None) -> set[str]:
        """Whose timers `fire_due(limit, now)` would fire: a host with queued events for them
        processes those first, since they came before the timers were due (the same `now`)."""
        with self.store.transaction() as tx:
            return tx.due_timer_users(now or self.clock.now(), limit)

    def fire_due(self, limit: int = 1000, now: datetime | None = None) -> int:
        """Fire up to `limit` timers due by `now` (default: now), in one transaction; returns how many fired."""
        now = now or self.clock.now()
        with self.unit() as tx:
            due = tx.claim_due_timers(now, limit)
            instances = [(tx.get_instance(instance_id), timer_id) for instance_id, timer_id in due]
            self.prefetch(tx, {i.user_id for i, _ in instances if i is not None}, now)
            for instance, timer_id in instances:
                if instance is not None:
                    self._fire(tx, instance, timer_id, now)
        return len(due)

    def prefetch(self, tx: Tx, user_ids: Collection[str], now: datetime) -> None:
        """Load what this transaction will read of these users: their state and sends as far back as
        the caps and journey limits count, and their recent marks when a journey reads them."""
        needs = self.catalog.needs
        tx.prefetch(user_ids, now - needs.sends_window)
        if needs.reads_marks:
            tx.recent.prefetch(user_ids, now)

    def _sent(self, tx: Tx, user_id: str, now: datetime) -> Sequence[SentRecord]:
        return tx.recent_sends(user_id, now - self.catalog.needs.sends_window)

    def _apply(self, tx: Tx, outcome: Outcome) -> None:
        """Apply an outcome, noting what the host should wake up for (and count) once the transaction commits."""
        carry_out(tx, outcome)
        if self.keep_outcomes:
            self._pending.outcomes.append(outcome)
        if outcome.instance is not None and outcome.instance.status == "failed":  # raised, or the runtime's
            self._pending.failures.append(Failure.of(outcome.instance))
        for command in outcome.commands:
            if isinstance(command, Schedule):
                due = command.timer.due
                if self._pending.earliest_timer is None or due < self._pending.earliest_timer:
                    self._pending.earliest_timer = due
            elif isinstance(command, Send):
                self._pending.sent(command)
            elif isinstance(command, Skip):
                self._pending.skipped(command)

    def _committed(self) -> None:
        summary, self._pending = self._pending, Committed()
        if self.on_commit is not None and summary:
            self.on_commit(summary)
        for failure in summary.failures:
            self.on_failure(failure)

    def _parse(self, item: Mapping[str, Any] | Event, index: int, count: int, now: datetime) -> Event:
        if isinstance(item, Event):
            return item
        try:
            return parse_event(item, now)
        except EventError as exc:
            raise EventError(f"events[{index}].{exc}" if count > 1 else str(exc)) from None

    def _fire(self, tx: Tx, instance: Instance, timer_id: str, now: datetime) -> None:
        if instance.timer is not None and instance.timer.timer_id == timer_id:  # for the host's metrics
            self._pending.lateness.append((now - instance.timer.due).total_seconds())
        profile = as_seen(tx, tx.get_profile(instance.user_id) or Profile(instance.user_id))
        sent = self._sent(tx, instance.user_id, now)
        self._guarded(tx, instance, now, lambda journey: self.runtime.on_timer(instance, journey, timer_id, profile,
                                                                               sent, now, tx.recent))

    def _guarded(self, tx: Tx, instance: Instance, now: datetime, evaluate: Callable[[CompiledJourney], Outcome],
                 ) -> None:
        """Evaluate one instance on its own version; if that raises (a template, an expression, a
        missing definition, a bug), the instance alone becomes `failed` with the reason and the
        batch goes on. The store's own errors are not the instance's fault: they propagate."""
        try:
            outcome = evaluate(self.journey_version(instance.journey_id, instance.version))
        except StoreError:
            raise
        except Exception as exc:  # noqa: BLE001 - isolating any failure is the point
            outcome = self._failed(instance, exc, now)
        self._apply(tx, outcome)

    def _failed(self, instance: Instance, exc: Exception, now: datetime) -> Outcome:
        return self.runtime.end(instance, "failed", f"{type(exc).__name__}: {exc}", now)

    def _process(self, tx: Tx, event: Event, now: datetime) -> None:
        profile = tx.get_profile(event.user_id) or Profile(event.user_id)
        if event.type == "sms.inbound":
            profile = self._keyword(tx, event, profile, now)
        profile = as_seen(tx, profile)
        event = self._feedback(tx, event, now)
        instances = tx.active_instances(event.user_id)
        triggered = self.catalog.triggered(event.type)
        if instances or triggered:
            keys: dict[str, str | None] = {}  # each journey's instance key for this event, computed once
            collected: set[str] = set()  # journeys whose digest took the event: it enters none of them
            for instance in list(instances):
                self._guarded(tx, instance, now, partial(self._on_event, tx=tx, instance=instance, event=event,
                                                         profile=profile, keys=keys, now=now, collected=collected))
            for journey in triggered:
                if journey.id not in collected:
                    self._maybe_enter(tx, journey, event, profile, now)
        self._remember(tx, event, now)

    def _remember(self, tx: Tx, event: Event, now: datetime) -> None:
        """Keep the event for a later `wait_for` look-back, if one may take its type (after it was
        processed: it is not its own look-back)."""
        needs = self.catalog.needs
        if event.type in needs.lookback_types:
            tx.recent.add(Mark(event.user_id, EVENT_MARK, event.type, now, now + needs.keep_events, event.context()))

    def _on_event(self, journey: CompiledJourney, *, tx: Tx, instance: Instance, event: Event, profile: Profile,
                  keys: dict[str, str | None], now: datetime, collected: set[str]) -> Outcome:
        if journey.id not in keys:
            keys[journey.id] = self._event_key(journey, event, profile, now)
        if instance.key is not None and keys[journey.id] not in (None, instance.key):
            return Outcome(None)  # the event is for another instance of this journey
        sent = self._sent(tx, event.user_id, now)
        outcome = self.runtime.on_event(instance, journey, event, profile, sent, now, tx.recent)
        if outcome.collected:
            collected.add(journey.id)
        return outcome

    def _maybe_enter(self, tx: Tx, journey: CompiledJourney, event: Event, profile: Profile, now: datetime) -> None:
        ok, key, why = self.runtime.entry_key(journey, event, profile, now)
        if ok:
            self.enter(tx, journey, event, profile, key, now)
        elif why.startswith("trigger_error"):
            self._apply(tx, Outcome(None, [Trace(now, event.user_id, None, None, "not_entered", why)]))

    def enter(self, tx: Tx, journey: CompiledJourney, event: Event, profile: Profile, key: str | None,
              now: datetime) -> bool:
        """Start an instance for `profile` (its user's state prefetched) if re_entry allows it."""
        if not self.runtime.may_reenter(journey, tx.entry_history(journey.id, event.user_id, key), now):
            return False
        sent = self._sent(tx, event.user_id, now)
        instance_id = self.new_id()
        try:
            outcome = self.runtime.enter(journey, event, profile, key, instance_id, sent, now, tx.recent)
        except StoreError:
            raise
        except Exception as exc:  # noqa: BLE001 - the entry fails alone, as a failed instance
            entered = Instance(instance_id=instance_id, journey_id=journey.id, version=journey.version,
                               user_id=event.user_id, key=key, entered_at=now, event=event.context())
            outcome = self._failed(entered, exc, now)
        self._apply(tx, outcome)
        return True

    def _event_key(self, journey: CompiledJourney, event: Event, profile: Profile, now: datetime) -> str | None:
        """The instance key this event carries for `journey`; None (reaches every instance) when the
        journey has no instance_key or the event lacks it (feedback such as `push.opened`)."""
        expression = journey.expression("instance_key")
        if expression is None:
            return None
        try:
            return str(expression({"event": event.context(), "profile": profile_context(profile),
                                   "journey": journey_context(journey), "now": instant(now)}))
        except EvaluationError:
            return None

    def _feedback(self, tx: Tx, event: Event, now: datetime) -> Event:
        """Feedback (a known status or engagement; `sms.go` is none) pinned to a message, by id or latest."""
        channel, _, status = event.type.partition(".")
        if channel not in CHANNELS or (status not in FEEDBACK_STATUSES and event.type not in
                                       self.policy.engagement_events(channel)):
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
        keyword = classify_keyword(str(event.properties.get("text", "")), self.policy)
        if keyword is None:
            return profile
        phone = profile.phone or event.properties.get("from")
        if isinstance(phone, str) and phone and keyword.kind is not Keyword.HELP:
            tx.record_suppression(phone, keyword.kind.value, now, f"sms.inbound:{event.id or event.user_id}")
        outcome = apply_keyword(keyword, profile.consents, now, self.policy)
        if outcome.records:
            profile = profile.with_consents(outcome.records)
            tx.put_profile(profile)
        self._reply(tx, profile, outcome.reply_message, outcome.reply_text, now)
        return profile

    def keyword_from_number(self, number: str, text: str, source: str) -> str | None:
        """An inbound SMS from a number no profile holds: a STOP suppresses the number all the same
        (for any profile that holds it now or later), a START lifts that. Returns the reply text
        for the sender (the host answers it directly: there is no profile to address it to)."""
        keyword = classify_keyword(text, self.policy)
        if keyword is None:
            return None
        now = self.clock.now()
        if keyword.kind is not Keyword.HELP:
            with self.store.transaction() as tx:
                tx.record_suppression(number, keyword.kind.value, now, source)
        return apply_keyword(keyword, (), now, self.policy).reply_text

    def _reply(self, tx: Tx, profile: Profile, message: str, text: str, now: datetime) -> None:
        encoding = sms_encoding(text)
        decision = Decision("sms", True, None)
        send = Send(message_id=self.new_id(), instance_id=None, journey_id=None, user_id=profile.user_id, step=None,
                    message=message, channel="sms", category="transactional", content={"text": text},
                    cost=round(self.policy.cost("sms") * encoding.segments, 6), encoding=encoding.encoding,
                    segments=encoding.segments, decisions=(decision,), at=now)
        self._apply(tx, Outcome(None, [send, Trace(now, profile.user_id, None, None, "keyword", message)]))
