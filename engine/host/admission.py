"""Taking events in: which this worker processes itself and which it queues for their owners,
each user's events in the order they came, and room in the inbox.

Alone on its database a worker owns every user. On a shared one (PostgreSQL) it applies only
its own users' events (`Ownership`) and queues the others' in the inbox, where their owners
find them. Either way an event accepted earlier for a user goes before a later one: `ingest`
first processes what waits in the inbox for the users of its batch.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

from engine.events import Event
from engine.host.backlog import Backlog
from engine.host.counters import Tally
from engine.host.inbox import Inbox
from engine.host.partitions import Ownership
from engine.service import Engine
from engine.state import Ingested


class Admission:
    """`ingest` and `accept` for the server; `started()`: whether its sweeps run (`wake` them)."""

    def __init__(self, engine: Engine, lock: AbstractContextManager[Any], backlog: Backlog, inbox: Inbox,
                 tally: Tally, ownership: Ownership | None, started: Callable[[], bool],
                 wake: Callable[[str], None]) -> None:
        self.engine = engine
        self.lock = lock
        self.backlog = backlog
        self.inbox = inbox
        self.tally = tally
        self.ownership = ownership
        self.started = started
        self.wake = wake

    def ingest(self, events: Sequence[Event], rejected: int = 0) -> list[Ingested]:
        """Process validated events in one transaction; durable and processed when this returns.
        Events accepted earlier for the same users go first, so each user's events keep their
        order; other users' queued events do not hold this batch up. `rejected`: how many of the
        caller's batch were invalid (for the log)."""
        counters = self.tally.counters
        with self.lock, counters.cpu.turn():
            owned = [self.mine(e.user_id) for e in events]
            mine = [e for e, m in zip(events, owned, strict=True) if m] if self.ownership else events
            while self.waiting([e.user_id for e in mine]) and self.inbox.process():
                pass
            started = time.perf_counter()
            results = self.engine.process_many(mine)
            if mine:
                seconds = time.perf_counter() - started
                counters.processing.observe(seconds)
                counters.ingested += len(mine)
                counters.ingest_seconds += seconds
        self.tally.batch(results, "ingest", rejected)
        if all(owned):
            return results
        queued = iter(self.accept([e for e, m in zip(events, owned, strict=True) if not m]))  # for their owners
        processed = iter(results)
        return [next(processed) if m else next(queued) for m in owned]

    def accept(self, events: Sequence[Event], rejected: int = 0) -> list[Ingested]:
        """Queue validated events in one transaction: durable and de-duplicated when this returns,
        processed moments later by the inbox sweep, in the order accepted. For producers that
        need no more than "accepted" (bulk loads, event streams); `ingest` processes before it
        returns. Does not wait for `lock`, so it is not held up by a batch in progress.

        When the inbox is full (`Backlog`), accept first waits for the engine to catch up."""
        users = Counter(e.user_id for e in events if self.mine(e.user_id))  # others: their owners' backlog
        self.backlog.admit(users, wait=self.started())
        try:
            with self.tally.counters.cpu.turn():
                results = self.engine.accept_many(events)
        except BaseException:
            self.backlog.withdraw(list(users.elements()))
            raise
        self.backlog.withdraw([r.event.user_id for r in results if r.duplicate and self.mine(r.event.user_id)])
        self.tally.batch(results, "accept", rejected)
        self.wake("inbox")
        return results

    def mine(self, user_id: str) -> bool:
        """Whether this worker changes the user's state (always, alone on its database)."""
        return self.ownership is None or self.ownership.owns(user_id)

    def waiting(self, user_ids: list[str]) -> bool:
        """Whether events accepted earlier for any of these users wait in the inbox: they go first.
        Alone on its database the server knows its inbox; on a shared one, another worker may
        have queued events for its users, so it asks the database (one query, by partition)."""
        if self.ownership is None:
            return bool(self.backlog) and self.backlog.any_of(user_ids)
        parts = self.ownership.parts_of(user_ids) & self.ownership.owned
        return bool(parts) and self.ownership.leases.queued_in(parts)
