"""An in-memory store: the simulator's, and the reference the SQL store is tested against."""

from __future__ import annotations

import heapq
from collections import defaultdict, deque
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime

from channels import Profile, SentRecord
from engine.events import Event
from engine.runtime import EntryHistory
from engine.state import Cancel, Instance, Outcome, Schedule, Send, Skip, Trace


class MemoryStore:
    """Everything in dicts; timers in a heap with lazy deletion."""

    def __init__(self, keep_trace: bool = True) -> None:
        self.keep_trace = keep_trace
        self.profiles: dict[str, Profile] = {}
        self.event_ids: set[str] = set()
        self.instances: dict[str, Instance] = {}
        self._active: dict[str, dict[str, None]] = defaultdict(dict)
        self._entries: dict[tuple[str, str, str | None], tuple[str, datetime]] = {}
        self._heap: list[tuple[datetime, int, str, str]] = []
        self._live: dict[str, datetime] = {}
        self._seq = 0
        self.messages: list[Send] = []
        self.status: dict[str, tuple[str, datetime]] = {}
        self._latest: dict[tuple[str, str], str] = {}
        self._sends: dict[str, list[SentRecord]] = defaultdict(list)
        self.skips: list[Skip] = []
        self.traces: list[Trace] = []
        self.inbox: deque[Event] = deque()
        self.quarantined: list[tuple[Event, str]] = []

    def get_profile(self, user_id: str) -> Profile | None:
        return self.profiles.get(user_id)

    def put_profile(self, profile: Profile) -> None:
        self.profiles[profile.user_id] = profile

    @contextmanager
    def transaction(self) -> Iterator[MemoryStore]:
        """Memory has no transactions: the store is its own unit of work."""
        yield self

    def prefetch(self, user_ids: Collection[str], since: datetime) -> None:
        """Everything is in memory already."""

    def remember_events(self, event_ids: Sequence[str]) -> set[str]:
        new: set[str] = set()
        for event_id in event_ids:
            if event_id not in self.event_ids:
                self.event_ids.add(event_id)
                new.add(event_id)
        return new

    def queue_events(self, events: Sequence[Event]) -> None:
        self.inbox.extend(events)

    def claim_queued(self, limit: int) -> list[Event]:
        """Taken off the queue at once: memory has no rollback, and no durability to keep."""
        return [self.inbox.popleft() for _ in range(min(limit, len(self.inbox)))]

    def quarantine_queued(self, error: str) -> str | None:
        if not self.inbox:
            return None
        self.quarantined.append((self.inbox.popleft(), error))
        return self.quarantined[-1][0].user_id

    def active_instances(self, user_id: str) -> Sequence[Instance]:
        ids = self._active.get(user_id)
        return [self.instances[i] for i in ids] if ids else []

    def get_instance(self, instance_id: str) -> Instance | None:
        return self.instances.get(instance_id)

    def entry_history(self, journey_id: str, user_id: str, key: str | None) -> EntryHistory | None:
        last = self._entries.get((journey_id, user_id, key))
        if last is None:
            return None
        return EntryHistory(self.instances[last[0]].active, last[1])

    def recent_sends(self, user_id: str, since: datetime) -> Sequence[SentRecord]:
        sends = self._sends.get(user_id)
        if not sends:
            return ()
        return sends if sends[0].at >= since else [s for s in sends if s.at >= since]

    def latest_message(self, user_id: str, channel: str) -> str | None:
        return self._latest.get((user_id, channel))

    def set_message_status(self, message_id: str, status: str, at: datetime) -> None:
        self.status[message_id] = (status, at)

    def claim_due_timers(self, now: datetime, limit: int) -> Sequence[tuple[str, str]]:
        due: list[tuple[str, str]] = []
        while self._heap and self._heap[0][0] <= now and len(due) < limit:
            when, _, timer_id, instance_id = heapq.heappop(self._heap)
            if self._live.get(timer_id) == when:
                del self._live[timer_id]
                due.append((instance_id, timer_id))
        return due

    def due_timer_users(self, now: datetime, limit: int) -> set[str]:
        due = sorted((when, instance_id) for when, _, timer_id, instance_id in self._heap
                     if when <= now and self._live.get(timer_id) == when)[:limit]
        return {self.instances[instance_id].user_id for _, instance_id in due if instance_id in self.instances}

    def next_due(self) -> datetime | None:
        while self._heap and self._live.get(self._heap[0][2]) != self._heap[0][0]:
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None

    def apply(self, outcome: Outcome) -> None:
        instance = outcome.instance
        if instance is not None:
            self._save(instance)
        for command in outcome.commands:
            self._carry_out(command)

    def _save(self, instance: Instance) -> None:
        is_new = instance.instance_id not in self.instances
        self.instances[instance.instance_id] = instance
        if is_new:
            key = (instance.journey_id, instance.user_id, instance.key)
            self._entries[key] = (instance.instance_id, instance.entered_at)
        if instance.active:
            self._active[instance.user_id][instance.instance_id] = None
        else:
            self._active[instance.user_id].pop(instance.instance_id, None)

    def _carry_out(self, command: object) -> None:
        if isinstance(command, Trace):
            if self.keep_trace:
                self.traces.append(command)
        elif isinstance(command, Send):
            self.messages.append(command)
            self._latest[(command.user_id, command.channel)] = command.message_id
            self._sends[command.user_id].append(SentRecord(command.channel, command.category, command.at))
        elif isinstance(command, Schedule):
            self._seq += 1
            self._live[command.timer.timer_id] = command.timer.due
            heapq.heappush(self._heap, (command.timer.due, self._seq, command.timer.timer_id, command.instance_id))
        elif isinstance(command, Cancel):
            self._live.pop(command.timer_id, None)
        elif isinstance(command, Skip):
            self.skips.append(command)
