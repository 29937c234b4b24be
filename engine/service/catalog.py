"""The journeys an engine runs: what enters whom, and which version an instance runs on."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence

from engine.compiler import CompiledJourney
from engine.errors import JourneyNotFoundError
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
