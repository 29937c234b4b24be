"""Production wiring: SQL store + Engine + dispatcher + APScheduler sweeps, behind one lock.

`Server` is what `journey serve` runs and what the HTTP API talks to. The engine is not
thread-safe, so request handlers and sweeps take turns through `lock`; each turn is one
database transaction over a whole batch, which is what keeps the lock cheap.
"""

from __future__ import annotations

import gc
import logging
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sqlalchemy.exc import DBAPIError

from channels import Policy
from channels.providers import FileProvider, Provider
from channels.selection import ADDRESS_FIELD
from engine.clock import Clock, SystemClock
from engine.compiler import CompiledJourney
from engine.dispatcher import Dispatcher
from engine.errors import EventError
from engine.events import Event, parse_event
from engine.service import Committed, Engine, Ingested, ordered_ids
from engine.stores.sql import SqlStore
from engine.timers import Sweeps

log = logging.getLogger("journey.server")


@dataclass(slots=True)
class Counters:
    """Totals for /metrics, kept here so the API layer only reads them."""

    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    timers_fired: int = 0
    timer_seconds: float = 0.0
    queued: int = 0  # put in the inbox by `accept` (and found there at start)
    dequeued: int = 0  # taken out of it: processed, or set aside as failed
    failed: int = 0
    queue_seconds: float = 0.0


def tune_runtime() -> None:
    """A long-running engine keeps many long-lived objects (cached users, instances); the
    default collector thresholds rescan them constantly. Freeze what exists at start-up and
    collect less often. Threads (ingest, sweeps, dispatcher) also hand the interpreter over
    every 50 ms rather than every 5 ms, so a batch in flight is not cut into slices: measured
    +8% on HTTP ingest. Called by the CLI (`serve`, `bench`), never by library code."""
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    sys.setswitchinterval(0.05)


class TurnLock:
    """A re-entrant lock handed over in the order it was asked for. The sweeps (inbox, timers)
    each loop batch after batch; with a plain lock the thread that just released it takes it
    straight back, and a backlog of events would hold timers up for seconds. Here a waiting
    sweep goes next, so a timer waits for at most one batch of events."""

    def __init__(self) -> None:
        self._turns = threading.Condition(threading.Lock())
        self._owner: int | None = None
        self._depth = 0
        self._waiting: deque[int] = deque()

    def __enter__(self) -> TurnLock:
        me = threading.get_ident()
        with self._turns:
            if self._owner != me:
                self._waiting.append(me)
                while self._owner is not None or self._waiting[0] != me:
                    self._turns.wait()
                self._waiting.popleft()
                self._owner = me
            self._depth += 1
        return self

    def __exit__(self, *_: object) -> None:
        with self._turns:
            self._depth -= 1
            if self._depth == 0:
                self._owner = None
                self._turns.notify_all()


def default_providers(outbox: str | Path = "outbox.jsonl") -> dict[str, Sequence[Provider]]:
    """No providers file: every channel goes to the local outbox log."""
    return {"*": [FileProvider(outbox)]}


class Server:
    def __init__(self, store: SqlStore, journeys: Sequence[CompiledJourney], policy: Policy,
                 providers: Mapping[str, Sequence[Provider]] | None = None, clock: Clock | None = None,
                 batch: int = 1000, timer_interval: float = 1.0, queue_delay: float = 1.0) -> None:
        self.store = store
        self.clock = clock or SystemClock()
        self.lock = TurnLock()
        self.batch = batch
        self.queue_delay = queue_delay  # seconds of work the inbox may hold
        self.min_queued = batch  # ... but never fewer events than this
        self._rate = 10_000.0  # events/s the engine takes out of the inbox; measured as it goes
        self._admitting: deque[object] = deque()  # `accept` calls waiting for room, first come first in
        self.counters = Counters()
        self.engine = Engine(journeys, policy, store, self.clock, new_id=ordered_ids(self.clock), trace=False)
        self.engine.on_commit = self._committed
        self.dispatcher = Dispatcher(store, providers or default_providers(), self.clock, self._provider_failures)
        self._counting = threading.Condition()  # `accept` runs outside `lock`
        self._queued_users: Counter[str] = Counter()  # users with events in the inbox, and how many
        jobs = {"timers": (self.sweep_timers, timer_interval), "outbox": (self.drain_outbox, 0.5),
                "inbox": (self.sweep_inbox, 1.0)}
        self.sweeps = Sweeps(self.clock, jobs, batch, next_due={"timers": store.next_due,
                                                                "outbox": store.outbox_next_due})
        self.started = False

    def start(self) -> None:
        """Expire interrupted sends, then run the sweeps (overdue timers fire at once)."""
        self.store.expire_interrupted(self.clock.now())
        with self._counting:
            backlog = self.store.queued_users()
            self._note_queued(backlog, sum(backlog.values()))
        self.sweeps.start()
        self.started = True

    def stop(self) -> None:
        if self.started:
            self.sweeps.shutdown()
            self.started = False
        self.store.close()

    def ingest(self, events: Sequence[Event]) -> list[Ingested]:
        """Process validated events in one transaction; durable and processed when this returns.
        Events accepted earlier for the same users go first, so each user's events keep their
        order; other users' queued events do not hold this batch up."""
        with self.lock:
            while self._queued_users and not self._queued_users.keys().isdisjoint(e.user_id for e in events) \
                    and self._process_queued():
                pass
            results = self.engine.process_many(events)
        self._count(results)
        return results

    def accept(self, events: Sequence[Event]) -> list[Ingested]:
        """Queue validated events in one transaction: durable and de-duplicated when this returns,
        processed moments later by the inbox sweep, in the order accepted. For producers that
        need no more than "accepted" (bulk loads, event streams); `ingest` processes before it
        returns. Does not wait for `lock`, so it is not held up by a batch in progress.

        The inbox holds about `queue_delay` seconds of work (at the rate the engine has been
        taking events out): beyond that, accept waits for the engine to catch up, callers in
        the order they came, so an accepted event is processed within about that long rather
        than behind an ever longer queue."""
        users = Counter(e.user_id for e in events)
        with self._counting:
            self._wait_for_room(len(events))
            self._note_queued(users, len(events))  # before the commit: the sweep may take them at once
        try:
            results = self.engine.accept_many(events)
        except BaseException:
            with self._counting:
                self._note_dequeued(list(users.elements()), queued=False)
            raise
        with self._counting:
            self._note_dequeued([r.event.user_id for r in results if r.duplicate], queued=False)
        self._count(results)
        if self.started:
            self.sweeps.wake("inbox")
        return results

    def _wait_for_room(self, count: int) -> None:
        """Called holding `_counting`."""
        ticket = object()
        self._admitting.append(ticket)
        try:
            while self.started and (self._admitting[0] is not ticket or self.counters.queued - self.counters.dequeued
                                    + count > max(self.min_queued, count, int(self._rate * self.queue_delay))):
                self._counting.wait(1.0)
        finally:
            self._admitting.remove(ticket)
            self._counting.notify_all()

    def _note_queued(self, users: Mapping[str, int], count: int) -> None:
        self._queued_users.update(users)
        self.counters.queued += count

    def _note_dequeued(self, users: Sequence[str], queued: bool = True) -> None:
        """Events taken out of the inbox; `queued` False: they never went in (duplicates, a failed accept)."""
        for user_id in users:
            left = self._queued_users[user_id] - 1
            if left > 0:
                self._queued_users[user_id] = left
            else:
                self._queued_users.pop(user_id, None)
        if queued:
            self.counters.dequeued += len(users)
        else:
            self.counters.queued -= len(users)
        self._counting.notify_all()

    def _count(self, results: Sequence[Ingested]) -> None:
        duplicates = sum(1 for r in results if r.duplicate)
        with self._counting:
            self.counters.accepted += len(results) - duplicates
            self.counters.duplicates += duplicates

    def sweep_inbox(self) -> int:
        with self.lock:
            return self._process_queued()

    def _process_queued(self) -> int:
        """One batch from the inbox. If it fails, one event at a time, so that the one at fault is
        set aside and the rest go on; a database error is not the events' fault and is raised
        (the sweep tries again later)."""
        started = time.perf_counter()
        try:
            users = [e.user_id for e in self.engine.process_queued(self.batch)]
        except DBAPIError:
            raise
        except Exception:
            log.exception("a batch of accepted events failed; processing them one at a time")
            users = self._process_singly()
        elapsed = time.perf_counter() - started
        with self._counting:
            self._note_dequeued(users)
            self.counters.queue_seconds += elapsed
            if len(users) >= 100:
                self._rate = 0.8 * self._rate + 0.2 * len(users) / max(elapsed, 1e-6)
        return len(users)

    def _process_singly(self) -> list[str]:
        """Returns the users of the events taken out of the inbox, processed or set aside."""
        users: list[str] = []
        for _ in range(self.batch):
            try:
                done = self.engine.process_queued(1)
                if not done:
                    break
                users.append(done[0].user_id)
            except DBAPIError:
                raise
            except Exception as exc:
                log.exception("an accepted event failed; it stays in the inbox with the error")
                user_id = self.engine.quarantine_queued(f"{type(exc).__name__}: {exc}")
                if user_id is None:
                    break
                users.append(user_id)
                self.counters.failed += 1
        return users

    def sweep_timers(self) -> int:
        """Events accepted for a user before their timer came due go first: a `push.opened`
        still in the inbox must stop the SMS its timer would send."""
        with self.lock:
            # processing them may cancel timers and bring others into the batch: look again until none wait
            while self._queued_users and self.engine.due_timer_users(self.batch) & self._queued_users.keys():
                if not self._process_queued():
                    break
            started = time.perf_counter()  # the sweep's own work: not the wait for its turn, not the events
            fired = self.engine.fire_due(self.batch)
            if fired:
                self.counters.timer_seconds += time.perf_counter() - started
        self.counters.timers_fired += fired
        return fired

    def drain_outbox(self) -> int:
        return self.dispatcher.drain()

    def _committed(self, summary: Committed) -> None:
        if not self.started:
            return
        if summary.earliest_timer is not None:
            self.sweeps.wake("timers", summary.earliest_timer)
        if summary.sends:
            self.sweeps.wake("outbox")

    def forget_address(self, user_id: str, channel: str, address: str | None) -> bool:
        """A provider said `address` is never deliverable: clear it from the profile (the
        `<channel>.failed` event keeps the reason). Only if the profile still has that address."""
        field = ADDRESS_FIELD.get(channel)
        with self.lock, self.store.transaction() as tx:
            profile = tx.get_profile(user_id)
            if field is None or profile is None or getattr(profile, field) in (None, "") or \
                    (address is not None and getattr(profile, field) != address):
                return False
            cleared: dict[str, Any] = {field: None}
            tx.put_profile(replace(profile, **cleared))
        log.warning("cleared the %s of user %s: the provider reports it undeliverable", field, user_id)
        return True

    def _provider_failures(self, events: list[dict[str, Any]]) -> None:
        """Permanent provider failures come back in as `<channel>.failed` events."""
        now = self.clock.now()
        parsed = []
        for data in events:
            if data["properties"].get("unusable_address"):
                self.forget_address(data["user_id"], data["type"].partition(".")[0], data["properties"].get("address"))
            try:
                parsed.append(parse_event(data, now))
            except EventError:
                log.exception("could not turn a provider failure into an event: %s", data)
        if parsed:
            self.ingest(parsed)
