"""`Engine`: the ordered steps of processing one stimulus (an event, a due timer), each step
handed to its collaborator, in one transaction per batch."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from functools import partial
from typing import Any

from channels import Policy, Profile
from channels.links import CodeSource, new_code
from channels.recheck import with_suppression
from engine.clock import Clock, counter_ids
from engine.compiler import CompiledJourney
from engine.errors import EventError
from engine.events import INBOUND, Event, parse_event
from engine.ports import CapabilityLookup, IdSource, InboxTx, Store, Tx, UsersTx, carry_out
from engine.runtime import Runtime
from engine.service.capability import RcsCheck
from engine.service.catalog import Catalog, VersionSource
from engine.service.engagement import Engagements
from engine.service.faults import guarded
from engine.service.feedback import Feedback
from engine.service.goals import Goals
from engine.service.keywords import Keywords
from engine.service.recall import Recall
from engine.service.routing import Entry, InstanceKeys
from engine.state import Committed, Failure, Ingested, Instance, Outcome


class Engine:
    """Journeys + policy + store + clock. Not thread-safe: one caller at a time.

    Processing an event: its user's profile (a keyword in an inbound SMS or RCS reply changes
    consent first: `Keywords`), as the channel rules must see it (`as_seen`); feedback and replies
    pinned to their message (`Feedback`) and counted in the person's engagement (`Engagements`,
    which counts the sends too); each active instance it is for (`InstanceKeys`) evaluated; then
    each journey it triggers entered (`Entry`), unless a digest of it took the event; then the
    event kept if a look-back may take it. Each batch reads its users as far as the journeys need
    (`Recall`: sends, marks). Each instance is evaluated on its own version and fails alone
    (`guarded`); an evaluation that decides on rcs may first ask whether the phone takes it
    (`RcsCheck`); every outcome is carried out (`carry_out`) and noted for the host's
    `on_commit`."""

    def __init__(self, journeys: Iterable[CompiledJourney], policy: Policy, store: Store, clock: Clock,
                 new_id: IdSource | None = None, trace: bool = True, versions: VersionSource | None = None,
                 codes: CodeSource = new_code) -> None:
        self.policy = policy
        self.store = store
        self.clock = clock
        self.runtime = Runtime(policy, trace, codes)  # `codes`: of tracked links (random; a dry run's are seeded)
        self.new_id = new_id or counter_ids("i")
        self.catalog = Catalog(journeys, versions)
        self.keywords = Keywords(policy, self.new_id)
        self.feedback = Feedback(policy)
        self.engagements = Engagements(policy)
        self.rcs = RcsCheck()
        self.recall = Recall(self.catalog)
        self.goals = Goals(self.catalog)
        self.entry = Entry(self.runtime, self.new_id, self.rcs, self.recall)
        self.on_commit: Callable[[Committed], None] | None = None
        self.on_failure: Callable[[Failure], None] = lambda failure: None  # after commit, each instance that failed
        self.keep_outcomes = False  # the host's decision log: each transaction's outcomes in its `Committed`
        self._pending = Committed()

    @property
    def capabilities(self) -> CapabilityLookup | None:
        """The host's: asks a provider whether a phone takes RCS (None: `rcs_capable` is assumed)."""
        return self.rcs.lookup

    @capabilities.setter
    def capabilities(self, lookup: CapabilityLookup | None) -> None:
        self.rcs.lookup = lookup

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
                self.recall.prefetch(tx, {i.user_id for i in batch}, now)
                for instance in batch:
                    self._apply(tx, self.runtime.end(instance, "exited", "journey_stopped", now), instance)
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
        events = [_parsed(item, n, len(items), now) for n, item in enumerate(items)]
        return self.process_many(events)

    def process_many(self, events: Sequence[Event]) -> list[Ingested]:
        """Process already-validated events in one transaction, in order."""
        now = self.clock.now()
        with self.unit() as tx:
            results = _deduplicated(tx, events)
            self.recall.prefetch(tx, {e.user_id for e in events}, now)
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
            self.recall.prefetch(tx, {e.user_id for e in events}, now)
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
            self.recall.prefetch(tx, {i.user_id for i, _ in instances if i is not None}, now)
            for instance, timer_id in instances:
                if instance is not None:
                    self._fire(tx, instance, timer_id, now)
        return len(due)

    def enter(self, tx: Tx, journey: CompiledJourney, event: Event, profile: Profile, key: str | None,
              now: datetime) -> bool:
        """Start an instance for `profile` (its user's state prefetched) if re_entry allows it."""
        outcome = self.entry.enter(tx, journey, event, profile, key, now)
        if outcome is None:
            return False
        self._apply(tx, outcome)
        return True

    def keyword_from_number(self, number: str, text: str, source: str) -> str | None:
        """An inbound SMS from a number no profile holds: a STOP suppresses the number all the same,
        a START lifts that. Returns the reply text for the sender (`Keywords.from_number`)."""
        return self.keywords.from_number(self.store, number, text, source, self.clock.now())

    def _apply(self, tx: Tx, outcome: Outcome, before: Instance | None = None) -> None:
        """Carry an outcome out (`before`: its instance as it was; None: a new one), noting what the
        host should wake up for (and count) once the transaction commits."""
        carry_out(tx, outcome, before)
        self.engagements.on_sends(tx, outcome)
        self._pending.note(outcome, self.keep_outcomes)

    def _committed(self) -> None:
        summary, self._pending = self._pending, Committed()
        if self.on_commit is not None and summary:
            self.on_commit(summary)
        for failure in summary.failures:
            self.on_failure(failure)

    def _process(self, tx: Tx, event: Event, now: datetime) -> None:
        profile = tx.get_profile(event.user_id) or Profile(event.user_id)
        reply = None
        if event.type in INBOUND:
            profile, reply = self.keywords.on_inbound(tx, event, profile, now)
            if reply is not None:
                self._apply(tx, reply)
        profile = as_seen(tx, profile)
        event = self.feedback.pin(tx, event, now)
        profile = self.engagements.on_event(tx, event, profile, keyword=reply is not None)
        instances = tx.active_instances(event.user_id)
        triggered = self.catalog.triggered(event.type)
        keys = InstanceKeys(event, profile, now)
        collected: set[str] = set()  # journeys whose digest took the event: it enters none of them
        for instance in list(instances):
            on_event = partial(self._on_event, tx=tx, instance=instance, event=event, keys=keys, now=now,
                               collected=collected)
            profile = self._evaluate(tx, instance, profile, now, on_event)
        for journey in triggered:
            outcome = None if journey.id in collected else self.entry.on_trigger(tx, journey, event, profile, now)
            if outcome is not None:
                self._apply(tx, outcome)
        self.goals.on_event(tx, event, now)  # a goal reached after its instance ended
        self.recall.remember(tx, event, now)  # after: an event is never its own look-back

    def _evaluate(self, tx: Tx, instance: Instance, profile: Profile, now: datetime,
                  evaluate: Callable[[CompiledJourney, Profile], Outcome]) -> Profile:
        """Evaluate one instance on its own version, failing alone (`guarded`), asking for RCS
        capability when it decided on rcs (`RcsCheck`); returns the profile as it now stands."""
        seen = profile

        def on_version() -> Outcome:
            nonlocal seen
            journey = self.journey_version(instance.journey_id, instance.version)
            outcome, seen = self.rcs.evaluated(tx, profile, now, partial(evaluate, journey))
            return outcome

        self._apply(tx, guarded(self.runtime, instance, on_version, now), instance)
        return seen

    def _on_event(self, journey: CompiledJourney, profile: Profile, *, tx: Tx, instance: Instance, event: Event,
                  keys: InstanceKeys, now: datetime, collected: set[str]) -> Outcome:
        if not keys.reach(journey, instance):
            return Outcome(None)  # the event is for another instance of this journey
        sent = self.recall.sent(tx, event.user_id, now)
        outcome = self.runtime.on_event(instance, journey, event, profile, sent, now, tx.recent)
        if outcome.collected:
            collected.add(journey.id)
        return outcome

    def _fire(self, tx: Tx, instance: Instance, timer_id: str, now: datetime) -> None:
        if instance.timer is not None and instance.timer.timer_id == timer_id:  # for the host's metrics
            self._pending.lateness.append((now - instance.timer.due).total_seconds())
        profile = as_seen(tx, tx.get_profile(instance.user_id) or Profile(instance.user_id))
        sent = self.recall.sent(tx, instance.user_id, now)

        def on_timer(journey: CompiledJourney, seen: Profile) -> Outcome:
            return self.runtime.on_timer(instance, journey, timer_id, seen, sent, now, tx.recent)

        self._evaluate(tx, instance, profile, now, on_timer)


def as_seen(tx: UsersTx, profile: Profile) -> Profile:
    """The profile as the channel rules must see it: opted out of the phone channels while its
    number is on the suppression list (prefetched with the batch: no query per event)."""
    return with_suppression(profile, tx.suppressed_since(profile.phone)) if profile.phone else profile


def _deduplicated(tx: InboxTx, events: Sequence[Event]) -> list[Ingested]:
    """Record the events' ids; an id seen before, or earlier in this batch, marks a duplicate."""
    new_ids = tx.remember_events([e.id for e in events if e.id is not None])
    results = []
    for event in events:
        duplicate = event.id is not None and event.id not in new_ids
        if not duplicate:
            new_ids.discard(event.id or "")
        results.append(Ingested(event, duplicate))
    return results


def _parsed(item: Mapping[str, Any] | Event, index: int, count: int, now: datetime) -> Event:
    if isinstance(item, Event):
        return item
    try:
        return parse_event(item, now)
    except EventError as exc:
        raise EventError(f"events[{index}].{exc}" if count > 1 else str(exc)) from None
