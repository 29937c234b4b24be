"""The narrow interfaces between the engine and its I/O, in one place.

`Clock` lives in engine.clock. A `Store` hands out transactions (`Tx`): the engine does
all the reads and writes of one batch of events, or one sweep of timers, inside one
transaction, after one `prefetch` of the users involved, so the hot path makes no
per-event query. The memory store serves the simulator and tests; the SQL store serves
`journey serve`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Protocol

from channels import Profile, SentRecord
from engine.events import Event
from engine.runtime import EntryHistory
from engine.state import Instance, Outcome


class Tx(Protocol):
    """One unit of work. Reads see this transaction's own writes."""

    def prefetch(self, user_ids: Collection[str], since: datetime) -> None:
        """Load what the engine will read for these users (profiles, instances, recent sends)."""
        ...

    def remember_events(self, event_ids: Sequence[str]) -> set[str]:
        """Record idempotency keys; returns those that are new (not seen before, not repeated)."""
        ...

    def queue_events(self, events: Sequence[Event]) -> None:
        """Keep validated, de-duplicated events for later processing, in this order."""
        ...

    def claim_queued(self, limit: int) -> Sequence[Event]:
        """The oldest queued events (not quarantined), removed from the queue as part of this transaction."""
        ...

    def quarantine_queued(self, error: str) -> str | None:
        """Set the oldest queued event aside with `error` (kept for a person to look at, never
        retried); returns its user, None when nothing is queued."""
        ...

    def get_profile(self, user_id: str) -> Profile | None: ...

    def put_profile(self, profile: Profile) -> None:
        """Upsert a profile; consent records it has that the store lacks are appended to the ledger."""
        ...

    def active_instances(self, user_id: str) -> Sequence[Instance]: ...

    def get_instance(self, instance_id: str) -> Instance | None: ...

    def entry_history(self, journey_id: str, user_id: str, key: str | None) -> EntryHistory | None: ...

    def recent_sends(self, user_id: str, since: datetime) -> Sequence[SentRecord]: ...

    def latest_message(self, user_id: str, channel: str) -> str | None: ...

    def set_message_status(self, message_id: str, status: str, at: datetime) -> None: ...

    def due_timer_users(self, now: datetime, limit: int) -> set[str]:
        """The users of the (up to `limit`) earliest timers due by `now`; nothing is claimed."""
        ...

    def claim_due_timers(self, now: datetime, limit: int) -> Sequence[tuple[str, str]]:
        """(instance_id, timer_id) of timers due by `now`, earliest first, removed from the
        queue as part of this transaction (so a crash before commit leaves them due)."""
        ...

    def apply(self, outcome: Outcome) -> None:
        """Save the instance and carry out the state changes of its commands."""
        ...


class Store(Protocol):
    def transaction(self) -> AbstractContextManager[Tx]: ...

    def next_due(self) -> datetime | None:
        """When the earliest pending timer is due, if any."""
        ...


IdSource = Callable[[], str]
