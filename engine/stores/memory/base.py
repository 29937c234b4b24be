"""An in-memory store: the simulator's, the in-process server's in tests, and the reference the
SQL store is tested against. It implements every port of `engine.ports` (`Tx`, `Store`,
`Outbox`, `ReadViews`).

Transactions are real: every write inside one records how to undo itself, and an exception
undoes them all in reverse, so a failed batch leaves the store as it found it (as a database
would). One transaction at a time: a lock serialises them, and the outbox calls, across threads.
"""

from __future__ import annotations

import heapq
import threading
from bisect import bisect_right
from collections import defaultdict, deque
from collections.abc import Callable, Collection, Iterator, MutableMapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from functools import partial
from typing import Any

from channels import ConsentRecord, Profile, SentRecord
from engine.audience.run import AudienceRun
from engine.events import Event
from engine.ports import JourneyVersion
from engine.runtime import EntryHistory
from engine.state import Instance, Send, Skip, TimerRef, Trace
from engine.stores.memory.recent import MemoryRecent

_MISSING = object()


class MemoryBase:
    """Everything in dicts; timers in a heap with lazy deletion; each message's delivery state
    in `deliveries` (the outbox). The transactions, the `Tx` and `Store` ports; the rest of the
    ports are added by `engine.stores.memory.host`."""

    def __init__(self, keep_trace: bool = True) -> None:
        self.keep_trace = keep_trace
        self.profiles: dict[str, Profile] = {}
        self.ledger: list[tuple[str, ConsentRecord]] = []  # every consent record, all users, in write order
        self.event_ids: set[str] = set()
        self.instances: dict[str, Instance] = {}
        self._active: dict[str, dict[str, None]] = defaultdict(dict)
        self._entries: dict[tuple[str, str, str | None], tuple[str, datetime]] = {}
        self._heap: list[tuple[datetime, int, str, str]] = []
        self._live: dict[str, datetime] = {}
        self._seq = 0
        self.messages: list[Send] = []
        self.deliveries: dict[str, dict[str, Any]] = {}
        self._latest: dict[tuple[str, str], str] = {}
        self._sends: dict[str, list[SentRecord]] = defaultdict(list)
        self.skips: list[Skip] = []
        self.traces: list[Trace] = []
        self.inbox: deque[Event] = deque()
        self.quarantined: list[tuple[Event, str]] = []
        self.suppressed: dict[str, datetime] = {}  # phone -> since its first STOP
        self.suppression_ledger: list[tuple[str, str, datetime, str]] = []  # number, keyword, at, source
        self.versions: dict[tuple[str, str], JourneyVersion] = {}
        self.states: dict[str, str] = {}
        self.runs: dict[str, AudienceRun] = {}
        self._order: list[str] | None = None  # every profile's user_id, sorted; None: to be sorted again
        self._lock = threading.RLock()
        self._undo: list[Callable[[], None]] | None = None
        self.recent = MemoryRecent(self._set, self._pop)  # the `Recent` port: look-backs and throttles

    # --- transactions and their undo log ------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[MemoryBase]:
        """The store is its own unit of work: writes apply at once, and are undone on an exception."""
        with self._lock:
            if self._undo is not None:  # already inside one: it is part of that one
                yield self
                return
            self._undo = []
            try:
                yield self
            except BaseException:
                for undo in reversed(self._undo):
                    undo()
                raise
            finally:
                self._undo = None

    def _record(self, undo: Callable[[], None]) -> None:
        if self._undo is not None:
            self._undo.append(undo)

    def _set(self, mapping: MutableMapping[Any, Any], key: Any, value: Any) -> None:
        old = mapping.get(key, _MISSING)
        mapping[key] = value
        self._record(lambda: _restore(mapping, key, old))

    def _pop(self, mapping: MutableMapping[Any, Any], key: Any) -> None:
        old = mapping.pop(key, _MISSING)
        if old is not _MISSING:
            self._record(lambda: _restore(mapping, key, old))

    def _append(self, items: list[Any], item: Any) -> None:
        items.append(item)
        self._record(items.pop)

    # --- Tx: reads ------------------------------------------------------------------------------

    def prefetch(self, user_ids: Collection[str], since: datetime) -> None:
        """Everything is in memory already."""

    def get_profile(self, user_id: str) -> Profile | None:
        return self.profiles.get(user_id)

    def active_instances(self, user_id: str) -> Sequence[Instance]:
        ids = self._active.get(user_id)
        return [self.instances[i] for i in ids] if ids else []

    def get_instance(self, instance_id: str) -> Instance | None:
        return self.instances.get(instance_id)

    def active_instances_of(self, journey_id: str, limit: int) -> Sequence[Instance]:
        found = (self.instances[i] for ids in self._active.values() for i in ids)
        return [i for i in found if i.journey_id == journey_id][:limit]

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

    def due_timer_users(self, now: datetime, limit: int) -> set[str]:
        due = sorted((when, instance_id) for when, _, timer_id, instance_id in self._heap
                     if when <= now and self._live.get(timer_id) == when)[:limit]
        return {self.instances[instance_id].user_id for _, instance_id in due if instance_id in self.instances}

    # --- Tx: the inbox and idempotency ----------------------------------------------------------

    def remember_events(self, event_ids: Sequence[str]) -> set[str]:
        new: set[str] = set()
        for event_id in event_ids:
            if event_id not in self.event_ids:
                self.event_ids.add(event_id)
                new.add(event_id)
        self._record(lambda: self.event_ids.difference_update(new))
        return new

    def queue_events(self, events: Sequence[Event]) -> None:
        self.inbox.extend(events)
        self._record(partial(_drop_last, self.inbox, len(events)))

    def claim_queued(self, limit: int) -> list[Event]:
        claimed = [self.inbox.popleft() for _ in range(min(limit, len(self.inbox)))]
        self._record(lambda: self.inbox.extendleft(reversed(claimed)))
        return claimed

    def quarantine_queued(self, error: str) -> str | None:
        if not self.inbox:
            return None
        event = self.inbox.popleft()
        self._record(lambda: self.inbox.appendleft(event))
        self._append(self.quarantined, (event, error))
        return event.user_id

    # --- Tx: writes -----------------------------------------------------------------------------

    def put_profile(self, profile: Profile) -> None:
        if profile.user_id not in self.profiles:
            self._order = None
        old = self.profiles.get(profile.user_id)
        for record in profile.consents[len(old.consents) if old else 0:]:  # the records the ledger lacks
            self._append(self.ledger, (profile.user_id, record))
        self._set(self.profiles, profile.user_id, profile)

    def suppressed_since(self, phone: str) -> datetime | None:
        return self.suppressed.get(phone)

    def record_suppression(self, phone: str, keyword: str, at: datetime, source: str) -> None:
        self._append(self.suppression_ledger, (phone, keyword, at, source))
        if keyword != "STOP":
            self._pop(self.suppressed, phone)
        elif phone not in self.suppressed:
            self._set(self.suppressed, phone, at)

    def set_message_status(self, message_id: str, status: str, at: datetime) -> None:
        delivery = self.deliveries.get(message_id)
        if delivery is not None:
            self._set(self.deliveries, message_id, {**delivery, "status": status, "status_at": at})

    def claim_due_timers(self, now: datetime, limit: int) -> Sequence[tuple[str, str]]:
        due: list[tuple[str, str]] = []
        while self._heap and self._heap[0][0] <= now and len(due) < limit:
            entry = heapq.heappop(self._heap)
            self._record(partial(heapq.heappush, self._heap, entry))
            when, _, timer_id, instance_id = entry
            if self._live.get(timer_id) == when:
                self._pop(self._live, timer_id)
                due.append((instance_id, timer_id))
        return due

    def save_instance(self, instance: Instance) -> None:
        if instance.instance_id not in self.instances:
            key = (instance.journey_id, instance.user_id, instance.key)
            self._set(self._entries, key, (instance.instance_id, instance.entered_at))
        self._set(self.instances, instance.instance_id, instance)
        if instance.active:
            self._set(self._active[instance.user_id], instance.instance_id, None)
        else:
            self._pop(self._active[instance.user_id], instance.instance_id)

    def add_message(self, send: Send) -> None:
        self._append(self.messages, send)
        self._set(self._latest, (send.user_id, send.channel), send.message_id)
        self._append(self._sends[send.user_id], SentRecord(send.channel, send.category, send.at, send.journey_id))
        self._set(self.deliveries, send.message_id, _pending(send))

    def add_timer(self, instance_id: str, timer: TimerRef) -> None:
        self._seq += 1
        self._set(self._live, timer.timer_id, timer.due)
        heapq.heappush(self._heap, (timer.due, self._seq, timer.timer_id, instance_id))

    def cancel_timer(self, timer_id: str) -> None:
        self._pop(self._live, timer_id)

    def add_skip(self, skip: Skip) -> None:
        self._append(self.skips, skip)

    def add_trace(self, trace: Trace) -> None:
        if self.keep_trace:
            self._append(self.traces, trace)

    # --- Tx: audience runs --------------------------------------------------------------------

    def profiles_after(self, user_id: str | None, limit: int) -> Sequence[Profile]:
        if self._order is None:
            self._order = sorted(self.profiles)
        start = 0 if user_id is None else bisect_right(self._order, user_id)
        found: list[Profile] = []
        for uid in self._order[start:]:
            if len(found) >= limit:
                break
            profile = self.profiles.get(uid)  # gone since (erased, or its write undone)
            if profile is not None:
                found.append(replace(profile, consents=()))
        return found

    def lock_run(self, run_id: str) -> AudienceRun | None:
        return self.runs.get(run_id)

    def save_run(self, run: AudienceRun) -> None:
        self._set(self.runs, run.run_id, run)

    # --- Store ----------------------------------------------------------------------------------

    def timers_set(self) -> int:
        """How many timers are set and not yet fired or cancelled (a dry run's progress)."""
        return len(self._live)

    def next_due(self) -> datetime | None:
        with self._lock:
            while self._heap and self._live.get(self._heap[0][2]) != self._heap[0][0]:
                heapq.heappop(self._heap)
            return self._heap[0][0] if self._heap else None

    def queued_users(self) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        for event in list(self.inbox):
            counts[event.user_id] += 1
        return dict(counts)

    def close(self) -> None:
        """Nothing to release."""

    def ping(self) -> None:
        """Always there."""


def _restore(mapping: MutableMapping[Any, Any], key: Any, old: Any) -> None:
    if old is _MISSING:
        mapping.pop(key, None)
    else:
        mapping[key] = old


def _drop_last(items: deque[Event], count: int) -> None:
    for _ in range(count):
        items.pop()


def _pending(send: Send) -> dict[str, Any]:
    return {"send": send, "dispatch": "pending", "status": "queued", "status_at": None, "attempts": 0,
            "next_attempt_at": send.at, "provider": None, "provider_id": None, "error": None}
