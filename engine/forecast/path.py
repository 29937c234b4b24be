"""One person's path through a journey in a forecast: the real `Engine` on a memory store and a
virtual clock, as `journey simulate` runs it, with the person's feedback sent back as events.

After each stimulus the engine's outcomes are read (`keep_outcomes`, as the server's decision log
reads them): each message sent gets its outcome from `choose` (engine/forecast/outcomes.py), and
the events that outcome means (`<channel>.delivered` or `.failed`, then the channel's engagement
event after its delay) are queued at their times, pinned to the message. The clock moves from
stimulus to stimulus, events first at equal times, until nothing is left to do.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from datetime import datetime
from itertools import count
from typing import NamedTuple

from channels import Policy, Profile
from channels.engagement import Engagement
from channels.links import seeded_codes
from engine.clock import VirtualClock, counter_ids
from engine.compiler import CompiledJourney
from engine.events import Event
from engine.forecast.outcomes import DELIVERED_AFTER, FAILED, Chances, chances, delay, engagement_event
from engine.service import Engine
from engine.simulator import audience_run
from engine.state import Cancel, Committed, Schedule, Send, Skip
from engine.stores.memory import MemoryStore

MOST_STIMULI = 10_000
"""A path stops after this many stimuli (a journey that loops on a timer never ends by itself)."""

Choose = Callable[[Chances, int], int]
"""Picks the outcome of the person's `n`-th message on a channel, given its chances."""


class Path(NamedTuple):
    """What one person's run came to: the messages (channel, cost), the channels engaged with,
    seconds from their first stimulus to their first engagement, the sends skipped (reasons) and
    put off by quiet hours, and how each instance ended."""

    sends: tuple[tuple[str, float], ...] = ()
    reached: tuple[str, ...] = ()
    first_engaged: float | None = None
    skipped: tuple[str, ...] = ()
    deferred: int = 0
    ended: tuple[str, ...] = ()


NOTHING = Path()
"""The path of a person the journey never enters."""


class _Stimulus(NamedTuple):
    at: datetime
    order: int
    event: Event | None  # None: an audience run


class _Walk:
    """One person's world: the engine, the queue of their events, what has happened so far."""

    def __init__(self, journey: CompiledJourney, policy: Policy, profile: Profile, choose: Choose,
                 start: datetime) -> None:
        self.store = MemoryStore(keep_trace=False)
        with self.store.transaction() as tx:
            tx.put_profile(profile)
        self.clock = VirtualClock(start)
        self.engine = Engine([journey], policy, self.store, self.clock, counter_ids("i"), trace=False,
                             codes=seeded_codes())
        self.engine.keep_outcomes = True
        self.engine.on_commit = self._committed
        self.journey, self.policy, self.choose, self.start = journey, policy, choose, start
        self.queue: list[_Stimulus] = []
        self.order = count()
        self.history: Engagement | None = profile.engagement
        self.user_id = profile.user_id
        self.ordinals: dict[str, int] = {}
        self.sends: list[tuple[str, float]] = []
        self.reached: set[str] = set()
        self.first_engaged: datetime | None = None
        self.skipped: list[str] = []
        self.deferred = 0
        self.put_off: set[str] = set()  # the timers of sends put off by quiet hours

    def add(self, at: datetime, event: Event | None) -> None:
        heapq.heappush(self.queue, _Stimulus(at, next(self.order), event))

    def run(self) -> Path:
        for _ in range(MOST_STIMULI):
            if not self._step():
                break
        ended = tuple(sorted(i.status for i in self.store.data.instances.values()))
        first = None if self.first_engaged is None else (self.first_engaged - self.start).total_seconds()
        return Path(tuple(self.sends), tuple(sorted(self.reached)), first, tuple(self.skipped), self.deferred, ended)

    def _step(self) -> bool:
        """Apply the next stimulus: the next event (or audience run) unless a timer is due before it."""
        due = self.store.next_due()
        if self.queue and (due is None or self.queue[0].at <= due):
            stimulus = heapq.heappop(self.queue)
            self.clock.advance_to(stimulus.at)
            self._remember_history()
            if stimulus.event is None:
                audience_run(self.engine, self.store, self.journey, f"r{stimulus.order}", stimulus.at)
            else:
                self.engine.process_many([stimulus.event])
            return True
        if due is None:
            return False
        self.clock.advance_to(due)
        self._remember_history()
        self.engine.fire_due()
        return True

    def _remember_history(self) -> None:
        """The person's engagement before this stimulus: what a message sent by it is weighed on."""
        stored = self.store.data.profiles.get(self.user_id)
        self.history = stored.engagement if stored is not None else None

    def _committed(self, summary: Committed) -> None:
        for outcome in summary.outcomes:
            for command in outcome.commands:
                if isinstance(command, Send):
                    self._sent(command)
                elif isinstance(command, Skip):
                    self.skipped.append(command.reason)
                elif isinstance(command, Schedule) and command.timer.kind == "defer":
                    self.deferred += 1
                    self.put_off.add(command.timer.timer_id)
                elif isinstance(command, Cancel) and command.timer_id in self.put_off:
                    self.skipped.append("cancelled")  # a send put off by quiet hours, then the journey moved on

    def _sent(self, send: Send) -> None:
        """Record the message and queue what its drawn outcome sends back."""
        channel = send.channel
        self.sends.append((channel, send.cost))
        if send.instance_id is None:  # a keyword's reply: no journey message, nobody engages with it
            return
        ordinal = self.ordinals.get(channel, 0)
        self.ordinals[channel] = ordinal + 1
        odds = chances(channel, self.history, send.at, self.policy)
        outcome = self.choose(odds, ordinal)
        pinned = {"message_id": send.message_id}
        status = "failed" if outcome == FAILED else "delivered"
        self.add(send.at + DELIVERED_AFTER, Event(f"{channel}.{status}", self.user_id, send.at + DELIVERED_AFTER,
                                                  pinned))
        engaged = engagement_event(channel, self.policy)
        if outcome in (FAILED, odds.delivered()) or engaged is None:
            return
        at = send.at + delay(channel, outcome)
        self.reached.add(channel)
        if self.first_engaged is None or at < self.first_engaged:
            self.first_engaged = at
        self.add(at, Event(engaged, self.user_id, at, pinned))


def walk(journey: CompiledJourney, policy: Policy, profile: Profile, events: Sequence[Event],
         runs: Sequence[datetime], choose: Choose) -> Path:
    """The person's path: their `events` (sorted) and the journey's audience `runs`, with the
    outcome of each message sent picked by `choose`."""
    if not events and not runs:
        return NOTHING
    start = min([*(e.timestamp for e in events[:1]), *runs[:1]])
    world = _Walk(journey, policy, profile, choose, start)
    for at in runs:
        world.add(at, None)
    for event in events:
        world.add(event.timestamp, event)
    return world.run()
