"""The only module that imports APScheduler.

APScheduler runs the server's interval jobs: the timer sweep, the outbox drain and the
inbox of accepted events. It is not the source of truth: the tables are. A job that finds
a full batch runs again at once; `wake` pulls a job forward when something nearer than its
next run appears, so a 2-second wait fires after 2 seconds, not at the next sweep.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from engine.clock import Clock
from engine.errors import TemporaryStoreError

log = logging.getLogger("journey.timers")
# A sweep that outlasts its interval makes APScheduler log a warning per skipped run; that is
# expected here (the sweep loops until it is done), so only errors are worth showing.
logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)


class Sweeps:
    """`jobs` maps a name to (job, interval in seconds); a job returns how many items it handled
    (a full batch: go on)."""

    def __init__(self, clock: Clock, jobs: Mapping[str, tuple[Callable[[], int], float]], batch: int,
                 next_due: Mapping[str, Callable[[], datetime | None]] | None = None) -> None:
        self._clock = clock
        self._jobs = {name: job for name, (job, _) in jobs.items()}
        self._intervals = {name: interval for name, (_, interval) in jobs.items()}
        self._next_due = dict(next_due or {})
        self._running: set[str] = set()
        self._failures: dict[str, int] = {}
        self._again: set[str] = set()
        self._batch = batch
        self._stopping = False
        self._scheduler = BackgroundScheduler(timezone=UTC, executors={"default": ThreadPoolExecutor(len(jobs))},
                                              job_defaults={"coalesce": True, "max_instances": 1,
                                                            "misfire_grace_time": None})

    def start(self) -> None:
        for name, interval in self._intervals.items():
            self._scheduler.add_job(self._run, "interval", args=[name], seconds=interval, id=name,
                                    next_run_time=self._clock.now())
        self._scheduler.start()

    def shutdown(self, within: float = 60.0) -> None:
        """Stop: no job starts again, a job under way stops after its current batch (waited for up to
        `within` seconds). APScheduler's own wait would hold its job-store lock meanwhile, which a
        finishing job needs to reschedule itself: it is told not to wait, and this waits instead."""
        self._stopping = True
        self._scheduler.shutdown(wait=False)
        deadline = time.monotonic() + within
        while self._running and time.monotonic() < deadline:
            time.sleep(0.01)

    def wake(self, name: str, at: datetime | None = None) -> None:
        """Run job `name` at `at` (default: now) if that is sooner than its next run."""
        if self._stopping:
            return
        if name in self._running:
            self._again.add(name)  # it will look again before it sleeps
            return
        job = self._scheduler.get_job(name)
        if job is None or job.next_run_time is None:
            return
        now = self._clock.now()
        when = max(at or now, now)
        if when < job.next_run_time:
            job.modify(next_run_time=when)

    def _run(self, name: str) -> None:
        if self._stopping:
            return
        self._running.add(name)
        try:
            while (self._jobs[name]() >= self._batch or name in self._again) and not self._stopping:
                self._again.discard(name)
            self._running.discard(name)
            upcoming = self._next_due.get(name)
            due = upcoming() if upcoming is not None else None
            if due is not None:
                self.wake(name, due)
            self._failures.pop(name, None)
        except TemporaryStoreError:  # the server logs an outage once; back off until the database is back
            self._back_off(name)
        except Exception:  # a failed sweep is logged and retried, later each time it fails again
            log.exception("%s sweep failed", name)
            self._back_off(name)
        finally:
            self._running.discard(name)

    def _back_off(self, name: str) -> None:
        """The next run of a failing sweep: 0.5 s after the first failure, doubling to at most 5 s."""
        failures = self._failures[name] = self._failures.get(name, 0) + 1
        job = None if self._stopping else self._scheduler.get_job(name)
        if job is not None:
            job.modify(next_run_time=self._clock.now() + timedelta(seconds=min(5.0, 0.5 * 2 ** (failures - 1))))
