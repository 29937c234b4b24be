"""One audience run as the stores keep it: which journey version, when it was due, how far it got
(`cursor`: the last user_id done, in user_id order) and what it did (matched, entered, skipped
by reason), and who works on it (`lease_owner` until `lease_until`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from engine.events import Event, format_time

RUN_EVENT = "journey.run"
"""The type of the entry event of an audience run (`event` in its journey's templates)."""
PENDING, RUNNING, FINISHED, FAILED, CANCELLED = "pending", "running", "finished", "failed", "cancelled"
WORKING = (PENDING, RUNNING)
LATE_AFTER = timedelta(seconds=30)  # a run created this long after its time (or for missed ones) is late


@dataclass(frozen=True, slots=True, kw_only=True)
class AudienceRun:
    run_id: str
    journey_id: str
    version: str
    trigger: str  # schedule, at or manual
    scheduled_at: datetime
    created_at: datetime
    status: str = PENDING
    started_at: datetime | None = None
    finished_at: datetime | None = None
    missed: int = 0  # earlier occurrences collapsed into this run (downtime)
    profiles: int = 0  # profiles looked at so far
    matched: int = 0
    entered: int = 0
    skipped: Mapping[str, int] = field(default_factory=dict)
    cursor: str | None = None
    lease_owner: str | None = None
    lease_until: datetime | None = None
    error: str | None = None

    @property
    def occurrence(self) -> str:
        """What makes a run unique for its journey: one run per scheduled instant, any number by hand."""
        return f"manual:{self.run_id}" if self.trigger == "manual" else \
            f"{self.trigger}:{format_time(self.scheduled_at)}"

    @property
    def late_seconds(self) -> float:
        return max(0.0, (self.created_at - self.scheduled_at).total_seconds())

    @property
    def late(self) -> bool:
        return self.missed > 0 or self.late_seconds > LATE_AFTER.total_seconds()

    @property
    def working(self) -> bool:
        return self.status in WORKING

    def entry_event(self, user_id: str) -> Event:
        """The event that enters `user_id`: its id is unique per run and user."""
        properties = {"run_id": self.run_id, "journey": self.journey_id, "trigger": self.trigger,
                      "scheduled_at": format_time(self.scheduled_at), "late": self.late}
        return Event(RUN_EVENT, user_id, self.scheduled_at, properties, f"{self.run_id}:{user_id}")

    def advanced(self, cursor: str | None, profiles: int, matched: int, entered: int, skipped: Mapping[str, int],
                 done: bool, now: datetime) -> AudienceRun:
        """After one chunk: the counts added up, the cursor moved on; `done` finishes the run."""
        total = dict(self.skipped)
        for reason, count in skipped.items():
            total[reason] = total.get(reason, 0) + count
        return replace(self, cursor=cursor, profiles=self.profiles + profiles, matched=self.matched + matched,
                       entered=self.entered + entered, skipped=total, status=FINISHED if done else RUNNING,
                       started_at=self.started_at or now, finished_at=now if done else None,
                       lease_owner=None if done else self.lease_owner, lease_until=None if done else self.lease_until)

    def ended(self, status: str, error: str, now: datetime) -> AudienceRun:
        return replace(self, status=status, error=error, finished_at=now, lease_owner=None, lease_until=None)

    def view(self) -> dict[str, Any]:
        """What the API shows of a run."""
        return {"run_id": self.run_id, "journey_id": self.journey_id, "version": self.version,
                "trigger": self.trigger, "status": self.status, "scheduled_at": format_time(self.scheduled_at),
                "created_at": format_time(self.created_at), "started_at": _time(self.started_at),
                "finished_at": _time(self.finished_at), "late": self.late, "late_seconds": round(self.late_seconds, 3),
                "missed": self.missed, "profiles": self.profiles, "matched": self.matched, "entered": self.entered,
                "skipped": dict(self.skipped), "error": self.error}


def _time(at: datetime | None) -> str | None:
    return format_time(at) if at is not None else None
