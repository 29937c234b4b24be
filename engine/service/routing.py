"""Where an event goes: to the instances it is for (a journey's `instance_key`), and into the
journeys it triggers (the trigger's `when`, then `re_entry`)."""

from __future__ import annotations

from datetime import datetime

from channels import Profile
from engine.compiler import CompiledJourney
from engine.errors import EvaluationError, StoreError
from engine.events import Event
from engine.expressions import instant
from engine.ports import IdSource, Tx
from engine.runtime import Runtime
from engine.service.capability import RcsCheck
from engine.service.faults import failed
from engine.service.recall import Recall
from engine.state import Instance, Outcome, Trace, journey_context, profile_context


class InstanceKeys:
    """The instance key one event carries for each journey, computed once per journey."""

    def __init__(self, event: Event, profile: Profile, now: datetime) -> None:
        self.event = event
        self.profile = profile
        self.now = now
        self._keys: dict[str, str | None] = {}

    def reach(self, journey: CompiledJourney, instance: Instance) -> bool:
        """Whether the event is for this instance: it is keyed alike, or either has no key."""
        if journey.id not in self._keys:
            self._keys[journey.id] = self._key(journey)
        return instance.key is None or self._keys[journey.id] in (None, instance.key)

    def _key(self, journey: CompiledJourney) -> str | None:
        """None (reaches every instance) when the journey has no instance_key or the event lacks
        it (feedback such as `push.opened`)."""
        expression = journey.expression("instance_key")
        if expression is None:
            return None
        try:
            return str(expression({"event": self.event.context(), "profile": profile_context(self.profile),
                                   "journey": journey_context(journey), "now": instant(self.now)}))
        except EvaluationError:
            return None


class Entry:
    """Who enters a journey: the trigger's condition and key (the runtime's), then `re_entry`;
    an entry that decides on rcs may first ask whether the phone takes it (`RcsCheck`)."""

    def __init__(self, runtime: Runtime, new_id: IdSource, rcs: RcsCheck, recall: Recall) -> None:
        self.runtime = runtime
        self.new_id = new_id
        self.rcs = rcs
        self.recall = recall

    def on_trigger(self, tx: Tx, journey: CompiledJourney, event: Event, profile: Profile, now: datetime,
                   ) -> Outcome | None:
        """The outcome of an event of the journey's trigger type: an entry, a trace of a trigger
        that could not be evaluated, or None (not matched, or re-entry refused)."""
        ok, key, why = self.runtime.entry_key(journey, event, profile, now)
        if ok:
            return self.enter(tx, journey, event, profile, key, now)
        if why.startswith("trigger_error"):
            return Outcome(None, [Trace(now, event.user_id, None, None, "not_entered", why)])
        return None

    def enter(self, tx: Tx, journey: CompiledJourney, event: Event, profile: Profile, key: str | None,
              now: datetime) -> Outcome | None:
        """A new instance for `profile` (its user's state prefetched), None if re_entry refuses it.
        An entry that raises fails alone, as a failed instance."""
        if not self.runtime.may_reenter(journey, tx.entry_history(journey.id, event.user_id, key), now):
            return None
        sent = self.recall.sent(tx, event.user_id, now)
        instance_id = self.new_id()
        try:
            return self.rcs.evaluated(tx, profile, now, lambda seen: self.runtime.enter(
                journey, event, seen, key, instance_id, sent, now, tx.recent))[0]
        except StoreError:
            raise
        except Exception as exc:  # noqa: BLE001 - the entry fails alone, as a failed instance
            entered = Instance(instance_id=instance_id, journey_id=journey.id, version=journey.version,
                               user_id=event.user_id, key=key, entered_at=now, event=event.context())
            return failed(self.runtime, entered, exc, now)
