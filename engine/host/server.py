"""Production wiring: SQL store + Engine + dispatcher + APScheduler sweeps, behind one lock.

`Server` is what `journey serve` runs and what the HTTP API talks to. The engine is not
thread-safe, so request handlers and sweeps take turns through `lock`; each turn is one
database transaction over a whole batch, which is what keeps the lock cheap.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from channels import Policy
from channels.providers import FileProvider, Provider
from channels.selection import ADDRESS_FIELD
from engine.audience.run import AudienceRun
from engine.clock import Clock, SystemClock, ordered_ids
from engine.compiler import CompiledJourney
from engine.errors import EventError, StoreError, TemporaryStoreError
from engine.events import Event, parse_event
from engine.host.backlog import Backlog
from engine.host.counters import Counters
from engine.host.dispatcher import RATE_LIMITED, Dispatcher
from engine.host.journeys import Deploys, ReloadReport
from engine.host.logs import decisions_log, fields, log_batch, log_decisions, log_sweep
from engine.host.outage import Outage
from engine.host.partitions import DEFAULT_TTL, Ownership, default_worker_id
from engine.host.runs import AudienceRuns
from engine.host.sweeps import Sweeps
from engine.host.turns import TurnLock
from engine.ports import HostStore
from engine.service import Engine
from engine.state import Committed, Failure, Ingested

log = logging.getLogger("journey.server")
STUCK_TURN = timedelta(seconds=10)


def tune_runtime() -> None:
    """A long-running engine keeps many long-lived objects (cached users, instances); the
    default collector thresholds rescan them constantly. Freeze what exists at start-up and
    collect less often. Threads (ingest, sweeps, dispatcher) also hand the interpreter over
    every 50 ms rather than every 5 ms, so a batch in flight is not cut into slices: measured
    +8% on HTTP ingest. Called by the CLI (`serve`, `bench`), never by library code."""
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    sys.setswitchinterval(0.05)


def default_providers(outbox: str | Path = "outbox.jsonl") -> dict[str, Sequence[Provider]]:
    """No providers file: every channel goes to the local outbox log."""
    return {"*": [FileProvider(outbox)]}


class Server:
    def __init__(self, store: HostStore, journeys: Sequence[CompiledJourney], policy: Policy,
                 providers: Mapping[str, Sequence[Provider]] | None = None, clock: Clock | None = None,
                 batch: int = 1000, timer_interval: float = 1.0, queue_delay: float = 1.0,
                 journeys_dir: Path | None = None, outbox_lease: timedelta = timedelta(seconds=60),
                 worker_id: str | None = None, partition_ttl: timedelta = DEFAULT_TTL,
                 stuck_turn: timedelta = STUCK_TURN) -> None:
        self.store = store
        self.clock = clock or SystemClock()
        self.lock = TurnLock(self.clock.now)
        self.stuck_turn = stuck_turn  # a turn of the engine longer than this: /healthz answers 503
        self.batch = batch
        self.backlog = Backlog(queue_delay, batch)
        self.counters = Counters()
        self.counted: Callable[[], None] = lambda: None  # the totals changed (the metrics layer mirrors them)
        self.outage = Outage(self.clock)
        self.engine = Engine(journeys, policy, store, self.clock, new_id=ordered_ids(self.clock), trace=False,
                             versions=lambda journey_id, version: self.deploys.compile_stored(journey_id, version))
        self.engine.on_commit = self._committed
        self.engine.on_failure = self._instance_failed
        self.engine.keep_outcomes = decisions_log.isEnabledFor(logging.INFO)
        self.deploys = Deploys(self.engine, store, self.lock, self.clock, journeys_dir)
        self.deploys.register(journeys)
        self.dispatcher = Dispatcher(store, providers or default_providers(), self.clock, self._provider_failures,
                                     policy, lease=outbox_lease, turn=self.counters.cpu.turn)
        self._counting = threading.Lock()  # `accept` runs outside `lock`
        self.runs = AudienceRuns(self.engine, store, self.lock, self.clock, self.engine.new_id, chunk=batch)
        jobs = {"timers": (self.sweep_timers, timer_interval), "outbox": (self.drain_outbox, 0.5),
                "inbox": (self.sweep_inbox, 1.0), "runs": (self.sweep_runs, 1.0)}
        leases = getattr(store, "partitions", None)  # a database shared by several workers
        self.ownership = Ownership(leases, worker_id or default_worker_id(), partition_ttl) if leases else None
        if self.ownership is not None:
            jobs["partitions"] = (self.heartbeat, self.ownership.interval)
            jobs["inbox"] = (self.sweep_inbox, 0.25)  # other workers queue events for this one's users
        self.sweeps = Sweeps(self.clock, jobs, batch, next_due={"timers": store.next_due,
                                                                "outbox": store.outbox_next_due,
                                                                "runs": self.runs.next_wake})
        self.started = False

    def start(self) -> None:
        """Take over from the last run (`resume`), then run the sweeps (overdue timers fire at once)."""
        self.resume()
        self.engine.keep_outcomes = decisions_log.isEnabledFor(logging.INFO)  # logging configured since?
        self.sweeps.start()
        self.started = True

    def resume(self) -> None:
        """Take over from the last run on this store: expire the sends it left interrupted and count
        the events it accepted but did not process into the backlog. `start` does this; a host
        that drives its own clock with `run_due` instead calls it once before the first."""
        self.dispatcher.in_doubt += self.store.expire_interrupted(self.clock.now(),
                                                                  self.dispatcher.idempotent_channels)
        self._repace()  # the rates may have changed since the messages held back were booked
        if self.ownership is not None:
            self.heartbeat()  # its partitions first: it counts their queued events in
        else:
            self.backlog.admit(self.store.queued_users(), wait=False)
        self.runs.resume()

    def stop(self) -> None:
        if self.started:
            self.sweeps.shutdown()
            self.started = False
        self.dispatcher.close()
        if self.ownership is not None:
            with contextlib.suppress(StoreError):  # a database that is gone lets the leases run out
                self.ownership.leave(self.worker_stats())
        self.store.close()

    def heartbeat(self) -> int:
        """Renew this worker's partition leases and move toward an even share (sweep job)."""
        return self._tracked("partitions", self._heartbeat)

    def _heartbeat(self) -> int:
        ownership = self.ownership
        if ownership is None:
            return 0
        lease = ownership.beat(self.worker_stats())  # not in turn: a long batch must not cost the leases
        if self.dispatcher.rates.share(lease.workers, self.clock.now()):  # the send rates are the cluster's
            self._repace()
        if lease.gained:
            self.backlog.admit(ownership.leases.queued_users(lease.gained), wait=False)
            if self.started:
                self.sweeps.wake("inbox")
                self.sweeps.wake("timers")
        if lease.surplus:
            with self.lock:  # no batch in flight: a partition given up is not being worked on
                ownership.give_up(lease.surplus)
                self.backlog.hand_over(lambda user_id: not ownership.owns(user_id))
        return 0

    def _repace(self) -> None:
        """Messages held back for a send rate, due now in their order, are booked again at the rates in force."""
        if held := self.store.release_held(RATE_LIMITED, self.clock.now()):
            log.info("%d messages waiting for a send rate's turn are paced again at the rates in force", held)

    def worker_stats(self) -> dict[str, Any]:
        """What this worker reports with its heartbeat, for every worker's /metrics."""
        c, backlog = self.counters, self.backlog
        return {"events_processed": backlog.dequeued + c.ingested, "events_seconds": backlog.seconds + c.ingest_seconds,
                "timers_fired": c.timers_fired, "timer_seconds": c.timer_seconds, "cpu_seconds": c.cpu.seconds}

    def ingest(self, events: Sequence[Event], rejected: int = 0) -> list[Ingested]:
        """Process validated events in one transaction; durable and processed when this returns.
        Events accepted earlier for the same users go first, so each user's events keep their
        order; other users' queued events do not hold this batch up. `rejected`: how many of the
        caller's batch were invalid (for the log)."""
        with self.lock, self.counters.cpu.turn():
            owned = [self._mine(e.user_id) for e in events]
            mine = [e for e, m in zip(events, owned, strict=True) if m] if self.ownership else events
            while self._waiting([e.user_id for e in mine]) and self._process_queued():
                pass
            started = time.perf_counter()
            results = self.engine.process_many(mine)
            if mine:
                seconds = time.perf_counter() - started
                self.counters.processing.observe(seconds)
                self.counters.ingested += len(mine)
                self.counters.ingest_seconds += seconds
        self._count(results, "ingest", rejected)
        if all(owned):
            return results
        queued = iter(self.accept([e for e, m in zip(events, owned, strict=True) if not m]))  # for their owners
        processed = iter(results)
        return [next(processed) if m else next(queued) for m in owned]

    def _mine(self, user_id: str) -> bool:
        """Whether this worker changes the user's state (always, alone on its database)."""
        return self.ownership is None or self.ownership.owns(user_id)

    def _waiting(self, user_ids: list[str]) -> bool:
        """Whether events accepted earlier for any of these users wait in the inbox: they go first.
        Alone on its database the server knows its inbox; on a shared one, another worker may
        have queued events for its users, so it asks the database (one query, by partition)."""
        if self.ownership is None:
            return bool(self.backlog) and self.backlog.any_of(user_ids)
        parts = self.ownership.parts_of(user_ids) & self.ownership.owned
        return bool(parts) and self.ownership.leases.queued_in(parts)

    def accept(self, events: Sequence[Event], rejected: int = 0) -> list[Ingested]:
        """Queue validated events in one transaction: durable and de-duplicated when this returns,
        processed moments later by the inbox sweep, in the order accepted. For producers that
        need no more than "accepted" (bulk loads, event streams); `ingest` processes before it
        returns. Does not wait for `lock`, so it is not held up by a batch in progress.

        When the inbox is full (`Backlog`), accept first waits for the engine to catch up."""
        users = Counter(e.user_id for e in events if self._mine(e.user_id))  # others: their owners' backlog
        self.backlog.admit(users, wait=self.started)
        try:
            with self.counters.cpu.turn():
                results = self.engine.accept_many(events)
        except BaseException:
            self.backlog.withdraw(list(users.elements()))
            raise
        self.backlog.withdraw([r.event.user_id for r in results if r.duplicate and self._mine(r.event.user_id)])
        self._count(results, "accept", rejected)
        if self.started:
            self.sweeps.wake("inbox")
        return results

    def _count(self, results: Sequence[Ingested], via: str, rejected: int) -> None:
        duplicates = sum(1 for r in results if r.duplicate)
        with self._counting:
            self.counters.accepted += len(results) - duplicates
            self.counters.duplicates += duplicates
        log_batch(via, len(results), duplicates, rejected)
        self.counted()

    def sweep_inbox(self) -> int:
        return self._tracked("inbox", self._sweep_inbox)

    def _sweep_inbox(self) -> int:
        with self.lock:
            return self._process_queued()

    def _tracked(self, sweep: str, work: Callable[[], int]) -> int:
        """Run one sweep, counting it; one that keeps failing shows in /metrics (`journey_sweep_failing`)."""
        started = time.perf_counter()
        try:
            with self.counters.cpu.turn():
                done = work()
        except TemporaryStoreError as exc:  # an outage; a value the database refused is not one
            self.outage.failed(exc)
            self._count_failure(sweep, exc)
            raise
        except Exception as exc:
            self._count_failure(sweep, exc)
            raise
        self.outage.recovered()
        with self._counting:
            self.counters.sweeps[sweep] += 1
            self.counters.failing_runs.pop(sweep, None)
            self.counters.failing.pop(sweep, None)
        self.counted()
        log_sweep(sweep, done, time.perf_counter() - started)
        return done

    def _count_failure(self, sweep: str, exc: Exception) -> None:
        with self._counting:
            self.counters.sweep_failures[sweep] += 1
            self.counters.failing_runs[sweep] += 1
            self.counters.failing[sweep] = f"{type(exc).__name__}: {exc}"
        self.counted()

    def _instance_failed(self, failure: Failure) -> None:
        """One instance failed on its own (an error raised, or the runtime's verdict: a `wait until`
        that cannot be read); the rest of its batch went on. Told once its transaction committed."""
        self.counters.instance_failures[(failure.journey_id, failure.step or "")] += 1
        log.warning("instance failed", extra=fields(user=failure.user_id, journey=failure.journey_id,
                                                     version=failure.version, step=failure.step,
                                                     instance=failure.instance_id, reason=failure.reason))

    def _process_queued(self) -> int:
        """One batch from the inbox. If it fails, one event at a time, so that the one at fault is
        set aside and the rest go on; a database error is not the events' fault and is raised
        (the sweep tries again later)."""
        started = time.perf_counter()
        try:
            users = [e.user_id for e in self.engine.process_queued(self.batch)]
        except StoreError:
            raise
        except Exception:
            log.exception("a batch of accepted events failed; processing them one at a time")
            users = self._process_singly()
        seconds = time.perf_counter() - started
        self.backlog.taken(users, seconds)
        if users:
            self.counters.processing.observe(seconds)
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
            except StoreError:
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
        return self._tracked("timers", self._sweep_timers)

    def _sweep_timers(self) -> int:
        with self.lock:
            now = self.clock.now()  # one instant: a timer due while the events are processed waits its turn
            # processing them may cancel timers and bring others into the batch: look again until none wait
            while self._waiting(list(self.engine.due_timer_users(self.batch, now))):
                if not self._process_queued():
                    break
            started = time.perf_counter()  # the sweep's own work: not the wait for its turn, not the events
            fired = self.engine.fire_due(self.batch, now)
            if fired:
                self.counters.timer_seconds += time.perf_counter() - started
        self.counters.timers_fired += fired
        return fired

    def drain_outbox(self) -> int:
        return self._tracked("outbox", self.dispatcher.drain)

    def sweep_runs(self) -> int:
        """Audience runs: the ones due are made, then one chunk of one run (engine/host/runs.py)."""
        return self._tracked("runs", self.runs.work)

    def start_run(self, journey_id: str) -> AudienceRun:
        """An audience run of the journey now (`POST /v1/journeys/{id}/runs`), worked by the runs sweep."""
        run = self.runs.start_now(journey_id)
        if self.started:
            self.sweeps.wake("runs")
        return run

    def reload(self) -> ReloadReport:
        """Load the journeys folder again (SIGHUP, `POST /v1/journeys/reload`); raises
        JourneyDefinitionError with every problem, changing nothing, if any file is bad."""
        return self.deploys.reload()

    def run_due(self) -> int:
        """Do now, in the caller's thread, what the sweeps would do at the clock's current time:
        the inbox, then due timers, then the outbox, until none of them finds work. For a host
        that drives its own clock (tests on a `VirtualClock`, replays): `resume()`, then this
        instead of `start()`. Returns how many items were handled."""
        total = self.heartbeat()
        while done := self.sweep_inbox() + self.sweep_timers() + self.drain_outbox() + self.sweep_runs():
            total += done
        return total

    def next_wake(self) -> datetime | None:
        """The earliest time a timer, an outbox retry or an audience run is due: when `run_due` has work next."""
        due = [d for d in (self.store.next_due(), self.store.outbox_next_due(), self.runs.next_wake()) if d is not None]
        return min(due, default=None)

    def _committed(self, summary: Committed) -> None:
        self.counters.committed(summary)
        if summary.outcomes:
            log_decisions(summary.outcomes)
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

