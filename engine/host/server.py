"""Production wiring: SQL store + Engine + dispatcher + APScheduler sweeps, behind one lock.

`Server` is what `journey serve` runs and what the HTTP API talks to. The engine is not
thread-safe, so request handlers and sweeps take turns through `lock`; each turn is one
database transaction over a whole batch, which is what keeps the lock cheap. The server wires
the parts and runs their lifecycle; each part is a class beside it: taking events in
(`admission`), working off the inbox (`inbox`), firing timers (`timers`), this worker's
partitions (`partitions`), the totals (`counters`), deploys (`journeys`), audience runs
(`runs`), the outbox (`dispatcher`), provider failures (`failures`), hits on tracked links
(`tracking`).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from channels import Policy
from channels.providers import FileProvider, Provider
from engine.clock import Clock, SystemClock, ordered_ids
from engine.compiler import CompiledJourney
from engine.errors import StoreError
from engine.events import Event
from engine.host.admission import Admission
from engine.host.backlog import Backlog
from engine.host.capability import ProviderCapability
from engine.host.counters import Counters, Tally
from engine.host.dispatcher import RATE_LIMITED, Dispatcher
from engine.host.failures import ProviderFailures
from engine.host.inbox import Inbox
from engine.host.journeys import Deploys, ReloadReport
from engine.host.logs import decisions_log, log_decisions
from engine.host.outage import Outage
from engine.host.partitions import DEFAULT_TTL, Membership, Ownership, default_worker_id
from engine.host.runs import AudienceRuns
from engine.host.sweeps import Sweeps
from engine.host.timers import TimerSweep
from engine.host.tracking import Tracking
from engine.host.turns import TurnLock
from engine.ports import HostStore
from engine.runs import AudienceRun
from engine.service import Engine
from engine.state import Committed, Ingested

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
    """One worker: the engine over a `HostStore`, the sweeps that drive it (timers, the inbox,
    the outbox, audience runs, and on a shared database the partitions' heartbeat), the
    dispatcher and the providers. `start()` takes over from the last run and runs the sweeps
    in the background; `stop()` ends them and gives this worker's partitions up. A host that
    drives its own clock calls `resume()` once, then `run_due()` whenever the clock moves.

    `ingest` and `accept` take events in (`Admission`); everything that changes the engine's
    state takes `lock` first (`TurnLock`), one turn a batch."""

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
        self.started = False
        self.outage = Outage(self.clock)
        self.counters = Counters()
        self.tally = Tally(self.counters, self.outage)
        self.engine = Engine(journeys, policy, store, self.clock, new_id=ordered_ids(self.clock), trace=False,
                             versions=lambda journey_id, version: self.deploys.compile_stored(journey_id, version))
        self.engine.on_commit = self._committed
        self.engine.on_failure = self.tally.instance_failed
        self.engine.keep_outcomes = decisions_log.isEnabledFor(logging.INFO)
        self.deploys = Deploys(self.engine, store.journeys, store.runs, self.lock, self.clock, journeys_dir)
        self.deploys.register(journeys)
        self.failures = ProviderFailures(store, self.lock, self.clock, self.ingest)
        self.dispatcher = Dispatcher(store.outbox, providers or default_providers(), self.clock, self.failures,
                                     policy, lease=outbox_lease, turn=self.counters.cpu.turn)
        self.engine.capabilities = ProviderCapability.of(self.dispatcher.providers)
        self.runs = AudienceRuns(self.engine, store.runs, store.journeys, self.lock, self.clock, self.engine.new_id,
                                 chunk=batch, single_process=store.partitions is None)
        self.backlog = Backlog(queue_delay, batch)
        self.inbox = Inbox(self.engine, self.lock, self.backlog, self.counters, batch)
        self.ownership = Ownership(store.partitions, worker_id or default_worker_id(), partition_ttl) \
            if store.partitions is not None else None  # a database shared by several workers
        if self.ownership is not None:  # what waits for its users, whoever accepted it
            self.inbox.count = partial(_queued_for, self.ownership)
        self.membership = Membership(self.ownership, self.lock, self.backlog, self.dispatcher.rates, self.clock,
                                     self.worker_stats, self._repace, self._wake) if self.ownership else None
        self.admission = Admission(self.engine, self.lock, self.backlog, self.inbox, self.tally, self.ownership,
                                   lambda: self.started, self._wake)
        self.timers = TimerSweep(self.engine, self.lock, self.admission, self.inbox, self.counters, batch)
        self.tracking = Tracking(store.links, self.clock, self.accept)  # tracked links' and pixels' hits
        self.sweeps = Sweeps(self.clock, self._jobs(timer_interval), batch,
                             next_due={"timers": store.next_due, "outbox": store.outbox.outbox_next_due,
                                       "runs": self.runs.next_wake})

    def _jobs(self, timer_interval: float) -> dict[str, tuple[Callable[[], int], float]]:
        """The sweeps and their intervals (seconds)."""
        jobs = {"timers": (self.sweep_timers, timer_interval), "outbox": (self.drain_outbox, 0.5),
                "inbox": (self.sweep_inbox, 1.0), "runs": (self.sweep_runs, 1.0)}
        if self.ownership is not None:
            jobs["partitions"] = (self.heartbeat, self.ownership.interval)
            jobs["inbox"] = (self.sweep_inbox, 0.25)  # other workers queue events for this one's users
        return jobs

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
        self.dispatcher.in_doubt += self.store.outbox.expire_interrupted(self.clock.now(),
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

    def ingest(self, events: Sequence[Event], rejected: int = 0) -> list[Ingested]:
        """Process validated events now, in one transaction (`Admission.ingest`)."""
        return self.admission.ingest(events, rejected)

    def accept(self, events: Sequence[Event], rejected: int = 0) -> list[Ingested]:
        """Queue validated events for the inbox sweep, durable when this returns (`Admission.accept`)."""
        return self.admission.accept(events, rejected)

    def heartbeat(self) -> int:
        """Renew this worker's partition leases and move toward an even share (sweep job)."""
        return self.tally.sweep("partitions", self.membership.beat if self.membership is not None else _idle)

    def sweep_inbox(self) -> int:
        return self.tally.sweep("inbox", self.inbox.sweep)

    def sweep_timers(self) -> int:
        """Events accepted for a user before their timer came due go first (`TimerSweep`)."""
        return self.tally.sweep("timers", self.timers.sweep)

    def drain_outbox(self) -> int:
        return self.tally.sweep("outbox", self.dispatcher.drain)

    def sweep_runs(self) -> int:
        """Audience runs: the ones due are made, then one chunk of one run (engine/host/runs.py)."""
        return self.tally.sweep("runs", self.runs.work)

    def start_run(self, journey_id: str) -> AudienceRun:
        """An audience run of the journey now (`POST /v1/journeys/{id}/runs`), worked by the runs sweep."""
        run = self.runs.start_now(journey_id)
        self._wake("runs")
        return run

    def reload(self) -> ReloadReport:
        """Load the journeys folder again (SIGHUP, `POST /v1/journeys/reload`); raises
        JourneyDefinitionError with every problem, changing nothing, if any file is bad."""
        return self.deploys.reload()

    def forget_address(self, user_id: str, channel: str, address: str | None) -> bool:
        """A provider said `address` is never deliverable: clear it (`ProviderFailures`)."""
        return self.failures.forget_address(user_id, channel, address)

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
        due = [d for d in (self.store.next_due(), self.store.outbox.outbox_next_due(), self.runs.next_wake())
               if d is not None]
        return min(due, default=None)

    def worker_stats(self) -> dict[str, Any]:
        """What this worker reports with its heartbeat, for every worker's /metrics."""
        c, backlog = self.counters, self.backlog
        return {"events_processed": backlog.dequeued + c.ingested, "events_seconds": backlog.seconds + c.ingest_seconds,
                "timers_fired": c.timers_fired, "timer_seconds": c.timer_seconds, "cpu_seconds": c.cpu.seconds}

    def _repace(self) -> None:
        """Messages held back for a send rate, due now in their order, are booked again at the rates in force."""
        if held := self.store.outbox.release_held(RATE_LIMITED, self.clock.now()):
            log.info("%d messages waiting for a send rate's turn are paced again at the rates in force", held)

    def _committed(self, summary: Committed) -> None:
        self.counters.committed(summary)
        if summary.outcomes:
            log_decisions(summary.outcomes)
        if summary.earliest_timer is not None:
            self._wake("timers", summary.earliest_timer)
        if summary.sends:
            self._wake("outbox")

    def _wake(self, sweep: str, at: datetime | None = None) -> None:
        """Run a sweep now (or at `at`), once the sweeps run: a host driving its own clock calls `run_due`."""
        if self.started:
            self.sweeps.wake(sweep, at)


def _idle() -> int:
    """The heartbeat of a worker alone on its store: nothing to renew."""
    return 0


def _queued_for(ownership: Ownership) -> int:
    """The events waiting in the inbox for the users of this worker's partitions, whoever accepted them."""
    return ownership.leases.queued_count(ownership.owned)
