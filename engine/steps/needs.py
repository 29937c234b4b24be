"""What the loaded journeys need the engine to keep about each user, worked out once per load:
the event types a look-back may take and for how long to keep them (the longest look-back any
journey asks for, and no longer), whether any step reads the user's marks (a throttle or a
look-back: then they are loaded with the batch), and how far back the user's sends are read (a
week for the policy's caps, longer when a journey's `limits` count over a longer period).

With no journey asking, nothing is kept and nothing is read: the hot path stays as it was.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from engine.compiler import CompiledJourney
from engine.model import ThrottleStep, WaitForStep

CAP_WINDOW = timedelta(days=7)  # the policy's caps count a week at most


@dataclass(frozen=True, slots=True)
class Needs:
    lookback_types: frozenset[str] = frozenset()
    keep_events: timedelta = timedelta(0)
    reads_marks: bool = False
    sends_window: timedelta = CAP_WINDOW


NOTHING = Needs()


def needs_of(journeys: Iterable[CompiledJourney]) -> Needs:
    types: set[str] = set()
    keep, window, reads = timedelta(0), CAP_WINDOW, False
    for journey in journeys:
        limits = journey.definition.limits
        if limits is not None:
            window = max(window, limits.per)
        for step in journey.definition.steps:
            if isinstance(step, WaitForStep) and step.lookback is not None:
                types.update(step.event_types())
                keep, reads = max(keep, step.lookback), True
            elif isinstance(step, ThrottleStep):
                reads = True
    return Needs(frozenset(types), keep, reads, window)
