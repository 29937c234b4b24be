"""The memory store: the transactions (`MemoryTx`) and one object per port the host uses, all
over one `MemoryData`."""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from engine.ports import HostStore, PartitionLeases
from engine.stores.memory.data import MemoryData
from engine.stores.memory.feed import MemoryFeed
from engine.stores.memory.journeys import MemoryJourneys
from engine.stores.memory.links import MemoryLinks
from engine.stores.memory.outbox import MemoryOutbox
from engine.stores.memory.privacy import MemoryPrivacy
from engine.stores.memory.runs import MemoryRuns
from engine.stores.memory.tx import MemoryTx
from engine.stores.memory.views import MemoryViews


class MemoryStore:
    """Implements every port of `engine.ports` in memory. `data` is everything it holds (the
    simulator reads its report there); `tx` the class of its transactions."""

    def __init__(self, keep_trace: bool = True, tx: type[MemoryTx] = MemoryTx) -> None:
        self.data = MemoryData(keep_trace)
        self.tx = tx(self.data)
        self.outbox = MemoryOutbox(self.data)
        self.views = MemoryViews(self.data)
        self.journeys = MemoryJourneys(self.data)
        self.runs = MemoryRuns(self.data)
        self.privacy = MemoryPrivacy(self.data, self.tx)
        self.feed = MemoryFeed(self.data)
        self.links = MemoryLinks(self.data)
        self.partitions: PartitionLeases | None = None  # one process: it owns every user
        self.location = "memory"

    @contextmanager
    def transaction(self) -> Iterator[MemoryTx]:
        """Writes apply at once and are undone on an exception; a transaction inside another is part of it."""
        with self.data.transaction():
            yield self.tx

    def next_due(self) -> datetime | None:
        data = self.data
        with data.lock:
            while data.heap and data.live.get(data.heap[0][2]) != data.heap[0][0]:
                heapq.heappop(data.heap)
            return data.heap[0][0] if data.heap else None

    def queued_users(self) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        for event in list(self.data.inbox):
            counts[event.user_id] += 1
        return dict(counts)

    def timers_set(self) -> int:
        """How many timers are set and not yet fired or cancelled (a dry run's progress)."""
        return len(self.data.live)

    def close(self) -> None:
        """Nothing to release."""

    def ping(self) -> None:
        """Always there."""


def _implements_every_port(store: MemoryStore) -> HostStore:
    """Never called: the type checker proves here that MemoryStore implements every port."""
    return store
