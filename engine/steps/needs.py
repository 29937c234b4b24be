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
    goal_events: frozenset[str] = frozenset()  # goals with `within`: counted after their instance ended
    keep_goals: timedelta = timedelta(0)  # the longest such `within`


NOTHING = Needs()


def needs_of(journeys: Iterable[CompiledJourney]) -> Needs:
    types: set[str] = set()
    keep, window, reads = timedelta(0), CAP_WINDOW, False
    goals: set[str] = set()
    keep_goals = timedelta(0)
    for journey in journeys:
        goal = journey.definition.goal
        if goal is not None and goal.within is not None:
            goals.add(goal.event)
            keep_goals, reads = max(keep_goals, goal.within), True
        limits = journey.definition.limits
        if limits is not None:
            window = max(window, limits.per)
        for step in journey.definition.steps:
            if isinstance(step, WaitForStep) and step.lookback is not None:
                types.update(step.event_types())
                keep, reads = max(keep, step.lookback), True
            elif isinstance(step, ThrottleStep):
                reads = True
    return Needs(frozenset(types), keep, reads, window, frozenset(goals), keep_goals)
