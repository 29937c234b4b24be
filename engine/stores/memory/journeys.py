"""The memory store's `Journeys` port: every version the server loaded, and each journey's state."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence
from datetime import datetime

from engine.ports import JourneyVersion
from engine.stores.memory.data import OnData


class MemoryJourneys(OnData):
    """Versions by (journey, version) and the states of the journeys not `active`, under the store's lock."""

    def save_versions(self, versions: Sequence[JourneyVersion]) -> None:
        with self.data.lock:
            for version in versions:
                self.data.versions.setdefault((version.journey_id, version.version), version)

    def journey_version(self, journey_id: str, version: str) -> JourneyVersion | None:
        return self.data.versions.get((journey_id, version))

    def journey_versions(self, journey_id: str) -> list[JourneyVersion]:
        with self.data.lock:
            mine = [v for (j, _), v in self.data.versions.items() if j == journey_id]
        return sorted(mine, key=lambda v: (v.first_loaded_at, v.version))

    def journey_ids(self) -> list[str]:
        with self.data.lock:
            return sorted({j for j, _ in self.data.versions})

    def journey_states(self) -> dict[str, str]:
        return dict(self.data.states)

    def set_journey_state(self, journey_id: str, state: str, at: datetime) -> None:
        with self.data.lock:
            if state == "active":
                self.data.states.pop(journey_id, None)
            else:
                self.data.states[journey_id] = state

    def active_counts(self, journey_id: str) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        with self.data.lock:
            instances = self.data.instances
            for ids in self.data.active.values():
                for instance_id in ids:
                    if instances[instance_id].journey_id == journey_id:
                        counts[instances[instance_id].version] += 1
        return dict(counts)

    def cancel_pending(self, journey_id: str, reason: str, at: datetime,
                       instance_ids: Collection[str] | None = None) -> int:
        with self.data.lock:
            pending = [d for d in self.data.deliveries.values()
                       if d["dispatch"] == "pending" and d["send"].journey_id == journey_id
                       and (instance_ids is None or d["send"].instance_id in instance_ids)]
            for delivery in pending:
                self.data.received(delivery, "cancelled")
                delivery.update(dispatch="cancelled", status="cancelled", status_at=at, error=reason)
        return len(pending)
