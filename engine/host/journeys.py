"""Safe deploys: every journey version the server loads is kept in the store with its YAML, so
an instance runs on the version it entered across restarts and redeploys; the journeys folder
is reloaded without a restart; a journey is paused, resumed or stopped, and that state outlives
a restart. A stop is final: a stopped journey is neither resumed nor paused (409); deploying a
version of it never loaded before starts it again.

A reload validates every file first: one bad file and nothing changes (the caller gets every
problem as `file:line: message`). A file that is removed stops new entries; its in-flight
instances finish on their version, compiled again from the store when needed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from engine.clock import Clock
from engine.compiler import CompiledJourney, load_paths, load_text
from engine.errors import JourneyDefinitionError, JourneyNotFoundError, JourneyStoppedError
from engine.events import format_time
from engine.host.logs import fields
from engine.partials import TemplateSource
from engine.ports import Journeys, JourneyVersion, Runs
from engine.runs import CANCELLED
from engine.service import Engine

log = logging.getLogger("journey.deploys")
STATES = {"pause": "paused", "resume": "active", "stop": "stopped"}


@dataclass(slots=True)
class ReloadReport:
    """Journey ids by what a reload did to them."""

    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, list[str]]:
        return {"added": self.added, "changed": self.changed, "unchanged": self.unchanged, "removed": self.removed}


class Deploys:
    """The server's journeys over time. Changes take the engine's lock, between batches."""

    def __init__(self, engine: Engine, journeys: Journeys, runs: Runs, lock: AbstractContextManager[Any],
                 clock: Clock, folder: Path | None = None) -> None:
        self.engine = engine
        self.journeys = journeys
        self.runs = runs
        self.lock = lock
        self.clock = clock
        self.folder = folder

    def register(self, journeys: Sequence[CompiledJourney]) -> None:
        """At start-up: keep the loaded versions, and take back each journey's state (a stopped
        journey deployed in a version never loaded before starts again)."""
        deployed = self._keep(journeys)
        for journey_id, state in self.journeys.journey_states().items():
            self.engine.catalog.set_state(journey_id, state)
        self._restart_stopped(deployed)

    def compile_stored(self, journey_id: str, version: str) -> CompiledJourney | None:
        """A version that is not loaded, compiled from the source kept when it was first loaded."""
        stored = self.journeys.journey_version(journey_id, version)
        if stored is None:
            return None
        compiled = load_text(stored.source, stored.file, TemplateSource(kept=stored.templates))
        if compiled.id != journey_id:
            return None
        log.info("compiled journey %s version %s from the store", journey_id, version)
        return replace(compiled, version=version)  # kept under the id it had (an older release hashed the text)

    def reload(self, folder: Path | None = None) -> ReloadReport:
        """Load the journeys folder again; raises JourneyDefinitionError (every problem of every
        file) and changes nothing if any file is bad."""
        where = folder or self.folder
        if where is None:
            raise JourneyNotFoundError("this server was not started with a journeys folder to reload")
        try:
            loaded = load_paths([where])
        except JourneyDefinitionError as exc:
            log.error("reload refused, nothing changed", extra=fields(folder=str(where), problems=len(exc.problems),
                                                                      first=str(exc.problems[0])))
            raise
        report = ReloadReport()
        with self.lock:
            current = dict(self.engine.catalog.current)
            deployed = self._keep(loaded)
            for journey in loaded:
                before = current.pop(journey.id, None)
                kind = report.added if before is None else \
                    report.unchanged if before.version == journey.version else report.changed
                kind.append(journey.id)
                self.engine.load(journey)
            for journey_id in sorted(current):
                self.engine.catalog.unload(journey_id)
                report.removed.append(journey_id)
            self._restart_stopped(deployed)
        log.info("reloaded journeys", extra=fields(folder=str(where), **{k: " ".join(v) or None
                                                                         for k, v in report.to_dict().items()}))
        return report

    def change_state(self, journey_id: str, action: str) -> dict[str, Any]:
        """pause (no new entries), resume, stop (no new entries, and every in-flight instance ends
        as `exited`, reason `journey_stopped`, its timers cancelled and its unsent messages kept back)."""
        self.known(journey_id)
        state = STATES[action]
        now = self.clock.now()
        if self.engine.catalog.state(journey_id) == "stopped" and state != "stopped":
            raise JourneyStoppedError(f"journey '{journey_id}' is stopped, and a stop is final: deploy a new "
                                      "version of it (edit its file, then reload) to start it again")
        with self.lock:
            self.journeys.set_journey_state(journey_id, state, now)
            self.engine.catalog.set_state(journey_id, state)
            ended = self.engine.stop_journey(journey_id) if state == "stopped" else 0
        held = self.journeys.cancel_pending(journey_id, "journey_stopped", now) if state == "stopped" else 0
        if state == "stopped":
            self.runs.end_runs(journey_id, CANCELLED, "journey stopped", now)
        log.info("journey %s %s (%d instances ended, %d unsent messages kept back)", journey_id, state, ended, held)
        return {**self.view(journey_id), "instances_ended": ended, "messages_cancelled": held}

    def view(self, journey_id: str) -> dict[str, Any]:
        """The journey's state and its versions, each with its count of active instances."""
        self.known(journey_id)
        current = self.engine.catalog.current.get(journey_id)
        counts = self.journeys.active_counts(journey_id)
        state = self.engine.catalog.state(journey_id) if current is not None else "removed"
        versions = [_version_view(v, counts, current) for v in self.journeys.journey_versions(journey_id)]
        return {"id": journey_id, "state": state, "version": current.version if current else None,
                "active_instances": sum(counts.values()), "versions": versions}

    def removed_in_flight(self) -> list[str]:
        """Journeys no longer in the folder whose instances still run on a stored version."""
        current = self.engine.catalog.current
        return [j for j in self.journeys.journey_ids() if j not in current and self.journeys.active_counts(j)]

    def latest(self, journey_id: str) -> CompiledJourney:
        """The loaded version, or for a removed journey the last version it had."""
        current = self.engine.catalog.current.get(journey_id)
        if current is not None:
            return current
        versions = self.journeys.journey_versions(journey_id)
        if not versions:
            raise JourneyNotFoundError(f"no journey '{journey_id}'")
        return self.engine.catalog.version(journey_id, versions[-1].version)

    def known(self, journey_id: str) -> None:
        """Raise JourneyNotFoundError unless the journey is loaded or has stored versions."""
        if journey_id not in self.engine.catalog.current and not self.journeys.journey_versions(journey_id):
            raise JourneyNotFoundError(f"no journey '{journey_id}'")

    def _keep(self, journeys: Sequence[CompiledJourney]) -> set[str]:
        """Store the versions not seen before; returns the ids of the journeys they belong to."""
        now = self.clock.now()
        new = [j for j in journeys if j.text and self.journeys.journey_version(j.id, j.version) is None]
        self.journeys.save_versions([JourneyVersion(j.id, j.version, j.source, j.text, now, j.partials) for j in new])
        return {j.id for j in new}

    def _restart_stopped(self, deployed: set[str]) -> None:
        """A stop is final for the version it stopped; a version never loaded before is a deploy."""
        for journey_id in sorted(deployed):
            if self.engine.catalog.state(journey_id) == "stopped":
                self.journeys.set_journey_state(journey_id, "active", self.clock.now())
                self.engine.catalog.set_state(journey_id, "active")
                log.info("journey deployed after a stop: active again", extra=fields(journey=journey_id))


def _version_view(version: JourneyVersion, counts: dict[str, int], current: CompiledJourney | None) -> dict[str, Any]:
    return {"version": version.version, "file": version.file, "first_loaded_at": format_time(version.first_loaded_at),
            "active_instances": counts.get(version.version, 0),
            "current": current is not None and current.version == version.version}
