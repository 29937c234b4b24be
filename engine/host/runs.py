"""Audience runs in `journey serve`: created when a journey's `schedule` or `at` comes due (or by
hand: `POST /v1/journeys/{id}/runs`), then worked a chunk at a time, each chunk one turn of the
engine's lock, so events and timers take their turns between chunks and keep their usual lateness.

When is a run due: at each instant of the trigger after the journey's latest scheduled run (or,
before its first, after the current version was first loaded: an `at` already past when the file
was deployed never runs). After downtime the instants missed collapse into one run at the latest
of them, marked late with how many it stands for (`missed`). Creating a run is idempotent per
journey and instant (the store's unique occurrence), so two workers or a restart never create
two runs for one instant.

Who works a run: the worker holding its lease (renewed at each chunk). A worker that dies
leaves its lease to run out (`lease`, 30 s by default), then another takes the run over from
its cursor; a single process (SQLite, memory) gives every lease up when it starts again and
goes on at once. A run waits while its journey is paused; stopping the journey cancels it.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Any

from engine.audience.entry import run_chunk
from engine.clock import Clock, IdSource
from engine.compiler import CompiledJourney
from engine.errors import JourneyNotFoundError, RunRefusedError
from engine.events import format_time
from engine.ports import Journeys, Runs
from engine.runs import CANCELLED, PENDING, AudienceRun
from engine.schedule import due, next_after
from engine.service import Engine

log = logging.getLogger("journey.runs")


class AudienceRuns:
    def __init__(self, engine: Engine, runs: Runs, journeys: Journeys, lock: AbstractContextManager[Any],
                 clock: Clock, new_id: IdSource, chunk: int = 1000, lease: timedelta = timedelta(seconds=30),
                 single_process: bool = True) -> None:
        self.engine = engine
        self.runs = runs
        self.journeys = journeys
        self.lock = lock
        self.clock = clock
        self.new_id = new_id
        self.chunk = chunk
        self.lease = lease
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.single_process = single_process  # no other worker can hold a lease on the store's runs
        self._after: dict[tuple[str, str], datetime] = {}  # (journey, version) -> runs are due after this

    def resume(self) -> None:
        """At start-up: a single process takes its runs back at once (no other worker can hold them)."""
        if self.single_process:
            self.runs.release_runs()

    def start_now(self, journey_id: str) -> AudienceRun:
        """A run of the journey's audience, now: 202 of `POST /v1/journeys/{id}/runs`."""
        journey = self.engine.journeys.get(journey_id)
        if journey is None:
            raise JourneyNotFoundError(f"no journey '{journey_id}'")
        if journey.definition.trigger.kind == "event":
            raise RunRefusedError(f"journey '{journey_id}' is entered by events (trigger.event), not by audience "
                                  "runs: give it trigger.schedule or trigger.at with an audience")
        state = self.engine.catalog.state(journey_id)
        if state != "active":
            raise RunRefusedError(f"journey '{journey_id}' is {state}: resume it first")
        now = self.clock.now()
        run = AudienceRun(run_id=self.new_id(), journey_id=journey_id, version=journey.version, trigger="manual",
                          scheduled_at=now, created_at=now)
        self.runs.add_run(run)
        log.info("audience run %s of %s started by hand", run.run_id, journey_id)
        return run

    def work(self) -> int:
        """Create the runs that are due, then enter one chunk of the oldest run this worker may
        take, in one turn of the lock; returns how many profiles it looked at."""
        self.create_due()
        with self.lock:
            claimed = self.runs.claim_run(self.owner, self._active(), self.clock.now(), self.lease)
            done = run_chunk(self.engine, claimed.run_id, self.chunk, self.owner) if claimed is not None else None
        if claimed is None or done is None:
            return 0
        if not done.working:
            log.info("audience run %s of %s %s: %d profiles, %d matched, %d entered, skipped %s", done.run_id,
                     done.journey_id, done.status, done.profiles, done.matched, done.entered, dict(done.skipped))
        return done.profiles - claimed.profiles

    def create_due(self) -> int:
        """A run for each audience journey whose next instant has come; returns how many were made."""
        now, made = self.clock.now(), 0
        for journey in self._audience():
            found = due(journey.definition.trigger, self._zone(), self._anchor(journey), now)
            if found is not None:
                made += self._create(journey, *found, now)
        return made

    def next_wake(self) -> datetime | None:
        """The next instant a run comes due, of any journey (runs already made are worked at once)."""
        upcoming = [next_after(j.definition.trigger, self._zone(), self._anchor(j)) for j in self._audience()]
        return min((at for at in upcoming if at is not None), default=None)

    def _create(self, journey: CompiledJourney, at: datetime, count: int, now: datetime) -> int:
        state = self.engine.catalog.state(journey.id)
        run = AudienceRun(run_id=self.new_id(), journey_id=journey.id, version=journey.version,
                          trigger=journey.definition.trigger.kind, scheduled_at=at, created_at=now,
                          missed=count - 1, status=PENDING if state == "active" else CANCELLED,
                          error=None if state == "active" else f"journey {state}",
                          finished_at=None if state == "active" else now)
        self._after[(journey.id, journey.version)] = at
        if not self.runs.add_run(run):
            return 0  # another worker made it
        if run.late:
            log.warning("audience run %s of %s is late: due %s, %.0f s ago, standing for %d occurrences",
                        run.run_id, journey.id, format_time(at), run.late_seconds, count)
        log.info("audience run %s of %s due at %s: %s", run.run_id, journey.id, format_time(at), run.status)
        return 1

    def _anchor(self, journey: CompiledJourney) -> datetime:
        """Runs are due after the journey's latest scheduled run, else after its version's first load."""
        key = (journey.id, journey.version)
        if key not in self._after:
            latest = self.runs.latest_scheduled_run(journey.id)
            versions = self.journeys.journey_versions(journey.id)
            loaded = [v.first_loaded_at for v in versions if v.version == journey.version]
            self._after[key] = latest.scheduled_at if latest is not None else min(loaded, default=self.clock.now())
        return self._after[key]

    def _audience(self) -> list[CompiledJourney]:
        return [j for j in self.engine.journeys.values() if j.definition.trigger.kind != "event"]

    def _active(self) -> set[str]:
        return {j.id for j in self._audience() if self.engine.catalog.state(j.id) == "active"}

    def _zone(self) -> str:
        return self.engine.policy.default_timezone
