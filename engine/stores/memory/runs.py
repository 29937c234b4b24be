"""The memory store's `Runs` port: audience runs created, listed, leased and ended outside the
chunks (whose side, `MemoryRunChunks`, is undone with the rest of a failed transaction)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from datetime import datetime, timedelta

from engine.runs import RUNNING, WORKING, AudienceRun
from engine.stores.memory.data import OnData


class MemoryRuns(OnData):
    """Runs in `MemoryData.runs`, under the store's lock."""

    def add_run(self, run: AudienceRun) -> bool:
        with self.data.lock:
            if any(r.journey_id == run.journey_id and r.occurrence == run.occurrence for r in self.data.runs.values()):
                return False
            self.data.runs[run.run_id] = run
            return True

    def get_run(self, run_id: str) -> AudienceRun | None:
        return self.data.runs.get(run_id)

    def runs_of(self, journey_id: str, limit: int = 100) -> list[AudienceRun]:
        with self.data.lock:
            mine = [r for r in self.data.runs.values() if r.journey_id == journey_id]
        return sorted(mine, key=lambda r: (r.scheduled_at, r.created_at, r.run_id), reverse=True)[:limit]

    def latest_scheduled_run(self, journey_id: str) -> AudienceRun | None:
        return next((r for r in self.runs_of(journey_id, len(self.data.runs)) if r.trigger != "manual"), None)

    def claim_run(self, owner: str, journey_ids: Collection[str], now: datetime, lease: timedelta,
                  ) -> AudienceRun | None:
        with self.data.lock:
            free = [r for r in self.data.runs.values() if r.status in WORKING and r.journey_id in journey_ids
                    and (r.lease_owner in (None, owner) or r.lease_until is None or r.lease_until <= now)]
            if not free:
                return None
            run = min(free, key=lambda r: (r.created_at, r.run_id))
            run = self.data.runs[run.run_id] = replace(run, status=RUNNING, started_at=run.started_at or now,
                                                  lease_owner=owner, lease_until=now + lease)
            return run

    def release_runs(self) -> None:
        with self.data.lock:
            for run in list(self.data.runs.values()):
                self.data.runs[run.run_id] = replace(run, lease_owner=None, lease_until=None)

    def end_runs(self, journey_id: str, status: str, error: str, at: datetime) -> int:
        with self.data.lock:
            ending = [r for r in self.data.runs.values() if r.journey_id == journey_id and r.status in WORKING]
            for run in ending:
                self.data.runs[run.run_id] = run.ended(status, error, at)
        return len(ending)
