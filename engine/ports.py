"""The narrow interfaces between the engine and its I/O, in one place.

`Clock` lives in engine.clock; the store is below. The memory store serves the
simulator and tests; the SQL store serves `journey serve`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol

from channels import Profile, SentRecord
from engine.runtime import EntryHistory
from engine.state import Instance, Outcome


class Store(Protocol):
    """Durable (or not) state of profiles, instances, timers and messages."""

    def get_profile(self, user_id: str) -> Profile | None: ...

    def put_profile(self, profile: Profile) -> None: ...

    def remember_event(self, event_id: str) -> bool:
        """Record an idempotency key; False when it was already there."""
        ...

    def active_instances(self, user_id: str) -> Sequence[Instance]: ...

    def get_instance(self, instance_id: str) -> Instance | None: ...

    def entry_history(self, journey_id: str, user_id: str, key: str | None) -> EntryHistory | None: ...

    def recent_sends(self, user_id: str, since: datetime) -> Sequence[SentRecord]: ...

    def latest_message(self, user_id: str, channel: str) -> str | None: ...

    def set_message_status(self, message_id: str, status: str, at: datetime) -> None: ...

    def due_timers(self, now: datetime, limit: int) -> Sequence[tuple[str, str]]:
        """(instance_id, timer_id) of timers due at `now`, earliest first."""
        ...

    def next_due(self) -> datetime | None: ...

    def apply(self, outcome: Outcome) -> None:
        """Save the instance and carry out its commands' state changes, all at once."""
        ...


IdSource = Callable[[], str]
