"""The one place that wires store + runtime + channels: events and timers in, state out.

`Engine` is the public Python API (`Engine(...).ingest(event)`); the simulator runs it
on a memory store and a virtual clock, the server on the SQL store and the wall clock.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from channels import CHANNELS, Decision, Policy, Profile, apply_keyword, classify_keyword, sms_encoding
from engine.clock import Clock
from engine.compiler import CompiledJourney
from engine.errors import EvaluationError, JourneyNotFoundError
from engine.events import Event, parse_event
from engine.ports import IdSource, Store
from engine.runtime import Runtime
from engine.state import Instance, Outcome, Send, Trace

CAP_WINDOW = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class Ingested:
    """What became of one event: processed, or acknowledged as a duplicate."""

    event: Event
    duplicate: bool


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
        event = data if isinstance(data, Event) else parse_event(data, self.clock.now())
        if event.id is not None and not self.store.remember_event(event.id):
            return Ingested(event, True)
        self.process(event)
        return Ingested(event, False)

    def process(self, event: Event) -> None:
        now = self.clock.now()
        profile = self.store.get_profile(event.user_id) or Profile(event.user_id)
        if event.type == "sms.inbound":
            profile = self._keyword(event, profile, now)
        event = self._feedback(event, now)
        instances = self.store.active_instances(event.user_id)
        triggered = self._by_trigger.get(event.type, ())
        if not instances and not triggered:
            return
        sent = self.store.recent_sends(event.user_id, now - CAP_WINDOW)
        for instance in list(instances):
            journey = self.journey_version(instance.journey_id, instance.version)
            if self._routes_to(journey, event, profile, instance):
                outcome = self.runtime.on_event(instance, journey, event, profile, sent, now)
                sent = self._apply(outcome, sent)
        for journey in triggered:
            sent = self._maybe_enter(journey, event, profile, sent, now)

    def fire_due(self, limit: int = 1000) -> int:
        """Fire the timers due now, at most `limit`; returns how many fired."""
        now = self.clock.now()
        due = self.store.due_timers(now, limit)
        for instance_id, timer_id in due:
            instance = self.store.get_instance(instance_id)
            if instance is None:
                continue
            journey = self.journey_version(instance.journey_id, instance.version)
            profile = self.store.get_profile(instance.user_id) or Profile(instance.user_id)
            sent = self.store.recent_sends(instance.user_id, now - CAP_WINDOW)
            self._apply(self.runtime.on_timer(instance, journey, timer_id, profile, sent, now), sent)
        return len(due)

    def _apply(self, outcome: Outcome, sent: Sequence[Any]) -> Sequence[Any]:
        self.store.apply(outcome)
        if any(isinstance(c, Send) for c in outcome.commands) and outcome.instance is not None:
            return self.store.recent_sends(outcome.instance.user_id, self.clock.now() - CAP_WINDOW)
        return sent

    def _maybe_enter(self, journey: CompiledJourney, event: Event, profile: Profile, sent: Sequence[Any],
                     now: datetime) -> Sequence[Any]:
        ok, key, why = self.runtime.entry_key(journey, event, profile)
        if not ok:
            if why.startswith("trigger_error"):
                self.store.apply(Outcome(None, [Trace(now, event.user_id, None, None, "not_entered", why)]))
            return sent
        history = self.store.entry_history(journey.id, event.user_id, key)
        if not self.runtime.may_reenter(journey, history, now):
            return sent
        outcome = self.runtime.enter(journey, event, profile, key, self.new_id(), sent, now)
        return self._apply(outcome, sent)

    def _routes_to(self, journey: CompiledJourney, event: Event, profile: Profile, instance: Instance) -> bool:
        """With an instance_key, an event that carries a key only reaches the instance with that key."""
        if instance.key is None:
            return True
        expression = journey.expression("instance_key")
        if expression is None:
            return True
        try:
            key = expression({"event": event.context(), "profile": {"user_id": profile.user_id}})
        except EvaluationError:
            return True
        return str(key) == instance.key

    def _feedback(self, event: Event, now: datetime) -> Event:
        """`<channel>.<status>` pinned to a message: by message_id, else the user's latest on that channel."""
        channel, _, status = event.type.partition(".")
        if channel not in CHANNELS or not status or status == "inbound":
            return event
        message_id = event.properties.get("message_id")
        if message_id is None:
            message_id = self.store.latest_message(event.user_id, channel)
            if message_id is None:
                return event
            event = event.with_properties(message_id=message_id)
        self.store.set_message_status(str(message_id), status, now)
        return event

    def _keyword(self, event: Event, profile: Profile, now: datetime) -> Profile:
        """STOP / START / HELP: consent changes at once, and one reply by SMS."""
        keyword = classify_keyword(str(event.properties.get("text", "")))
        if keyword is None:
            return profile
        outcome = apply_keyword(keyword, profile.consents, now, self.policy)
        if outcome.records:
            profile = profile.with_consents(outcome.records)
            self.store.put_profile(profile)
        self._reply(profile, outcome.reply_message, outcome.reply_text, now)
        return profile

    def _reply(self, profile: Profile, message: str, text: str, now: datetime) -> None:
        encoding = sms_encoding(text)
        decision = Decision("sms", True, None)
        send = Send(self.new_id(), None, None, profile.user_id, None, message, "sms", "transactional",
                    {"text": text}, round(self.policy.cost("sms") * encoding.segments, 6), encoding.encoding,
                    encoding.segments, (decision,), now)
        self.store.apply(Outcome(None, [send, Trace(now, profile.user_id, None, None, "keyword", message)]))
