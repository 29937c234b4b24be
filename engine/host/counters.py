"""The server's running totals: what /metrics shows and the worker reports with its heartbeat.

Plain counts kept by the host (it never imports prometheus_client); the API layer reads them.
`Tally` keeps them: batches taken in, sweeps run or failed, instances that failed alone.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from engine.errors import TemporaryStoreError
from engine.host.cpu import EngineCpu
from engine.host.histogram import LATENESS_BOUNDS, PROCESSING_BOUNDS, Histogram
from engine.host.logs import fields, log_batch, log_sweep
from engine.host.outage import Outage
from engine.state import Committed, Failure, Ingested

log = logging.getLogger("journey.server")


@dataclass(slots=True)
class Counters:
    """Totals for /metrics, kept here so the API layer only reads them."""

    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    timers_fired: int = 0
    timer_seconds: float = 0.0
    failed: int = 0  # queued events set aside (the inbox's own totals are in `Backlog`)
    ingested: int = 0  # events processed as they came in (`ingest`)
    ingest_seconds: float = 0.0  # time spent on them
    sweeps: Counter[str] = field(default_factory=Counter)  # completed runs of each sweep: inbox, timers, outbox
    sweep_failures: Counter[str] = field(default_factory=Counter)  # runs of each sweep that raised
    failing: dict[str, str] = field(default_factory=dict)  # sweep -> its error, while it keeps failing
    failing_runs: Counter[str] = field(default_factory=Counter)  # consecutive failed runs of each sweep
    instance_failures: Counter[tuple[str, str]] = field(default_factory=Counter)  # failed alone: (journey, step)
    queued: Counter[str] = field(default_factory=Counter)  # messages the engine queued, by channel
    cost: Counter[str] = field(default_factory=Counter)  # their cost (the policy's prices), by channel
    skips: Counter[str] = field(default_factory=Counter)  # sends that sent nothing, by reason
    processing: Histogram = field(default_factory=lambda: Histogram(PROCESSING_BOUNDS))  # seconds per batch
    lateness: Histogram = field(default_factory=lambda: Histogram(LATENESS_BOUNDS))  # seconds per fired timer
    cpu: EngineCpu = field(default_factory=EngineCpu)  # thread CPU of the engine's turns

    def committed(self, summary: Committed) -> None:
        """Count what one committed transaction of the engine did (a few dict updates)."""
        self.queued.update(summary.queued)
        self.cost.update(summary.cost)
        self.skips.update(summary.skips)
        self.lateness.observe_all(summary.lateness)


class Tally:
    """How the totals are kept: under a lock of their own (`accept` counts outside the engine's
    turn), each run of a sweep tracked (one that keeps failing shows in /metrics as
    `journey_sweep_failing`, an outage in `outage`), and `counted` told of every change (the
    metrics layer mirrors the totals to its files)."""

    def __init__(self, counters: Counters, outage: Outage) -> None:
        self.counters = counters
        self.outage = outage
        self.counted: Callable[[], None] = lambda: None
        self._lock = threading.Lock()

    def batch(self, results: Sequence[Ingested], via: str, rejected: int) -> None:
        """A batch taken in: `ingest` (processed now) or `accept` (queued)."""
        duplicates = sum(1 for r in results if r.duplicate)
        with self._lock:
            self.counters.accepted += len(results) - duplicates
            self.counters.duplicates += duplicates
        log_batch(via, len(results), duplicates, rejected)
        self.counted()

    def sweep(self, name: str, work: Callable[[], int]) -> int:
        """Run one sweep, counting it."""
        started = time.perf_counter()
        try:
            with self.counters.cpu.turn():
                done = work()
        except TemporaryStoreError as exc:  # an outage; a value the database refused is not one
            self.outage.failed(exc)
            self._failed(name, exc)
            raise
        except Exception as exc:
            self._failed(name, exc)
            raise
        self.outage.recovered()
        with self._lock:
            self.counters.sweeps[name] += 1
            self.counters.failing_runs.pop(name, None)
            self.counters.failing.pop(name, None)
        self.counted()
        log_sweep(name, done, time.perf_counter() - started)
        return done

    def instance_failed(self, failure: Failure) -> None:
        """One instance failed on its own (an error raised, or the runtime's verdict: a `wait until`
        that cannot be read); the rest of its batch went on. Told once its transaction committed."""
        self.counters.instance_failures[(failure.journey_id, failure.step or "")] += 1
        log.warning("instance failed", extra=fields(user=failure.user_id, journey=failure.journey_id,
                                                     version=failure.version, step=failure.step,
                                                     instance=failure.instance_id, reason=failure.reason))

    def _failed(self, name: str, exc: Exception) -> None:
        with self._lock:
            self.counters.sweep_failures[name] += 1
            self.counters.failing_runs[name] += 1
            self.counters.failing[name] = f"{type(exc).__name__}: {exc}"
        self.counted()
