"""Everything a memory store holds, and the undo log that makes its transactions real.

Every write inside a transaction records how to undo itself, and an exception undoes them all
in reverse, so a failed batch leaves the store as it found it (as a database would). One
transaction at a time: `lock` serialises them, and every port's calls, across threads.
"""

from __future__ import annotations

import threading
from collections import defaultdict, deque
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from channels import ConsentRecord, Profile, SentRecord
from engine.events import Event
from engine.ports import JourneyVersion
from engine.runs import AudienceRun
from engine.state import Instance, Send, Skip, Trace
from engine.stats import Key, received
from engine.stores.memory.recent import MemoryRecent

_MISSING = object()


class MemoryData:
    """Everything in dicts; timers in a heap with lazy deletion; each message's delivery state
    in `deliveries` (the outbox), its tracked links in `links`."""

    def __init__(self, keep_trace: bool = True) -> None:
        self.keep_trace = keep_trace
        self.profiles: dict[str, Profile] = {}
        self.ledger: list[tuple[str, ConsentRecord]] = []  # every consent record, all users, in write order
        self.event_ids: set[str] = set()
        self.instances: dict[str, Instance] = {}
        self.active: dict[str, dict[str, None]] = defaultdict(dict)  # user_id -> their active instances' ids
        self.entries: dict[tuple[str, str, str | None], tuple[str, datetime]] = {}  # latest entry per journey, key
        self.heap: list[tuple[datetime, int, str, str]] = []  # (due, seq, timer_id, instance_id)
        self.live: dict[str, datetime] = {}  # timer_id -> due, for the timers not fired or cancelled
        self.seq = 0
        self.messages: list[Send] = []
        self.deliveries: dict[str, dict[str, Any]] = {}
        self.latest: dict[tuple[str, str], str] = {}  # (user_id, channel) -> their latest message
        self.links: dict[str, dict[str, Any]] = {}  # code -> a tracked link's row, as the SQL store's links table
        self.sends: dict[str, list[SentRecord]] = defaultdict(list)
        self.skips: list[Skip] = []
        self.traces: list[Trace] = []
        self.inbox: deque[Event] = deque()
        self.quarantined: list[tuple[Event, str]] = []
        self.suppressed: dict[str, datetime] = {}  # phone -> since its first STOP
        self.suppression_ledger: list[tuple[str, str, datetime, str]] = []  # number, keyword, at, source
        self.versions: dict[tuple[str, str], JourneyVersion] = {}
        self.states: dict[str, str] = {}
        self.runs: dict[str, AudienceRun] = {}
        self.erasures: list[dict[str, Any]] = []  # the proof kept: who, when, the addresses' hashes
        self.counters: dict[Key, float] = {}  # the journeys' counters (engine.stats), one writer: this process
        self.feed_states: dict[str, dict[str, datetime | None]] = {}  # message_id -> seen_at, read_at, archived_at
        self.order: list[str] | None = None  # every profile's user_id, sorted; None: to be sorted again
        self.lock = threading.RLock()
        self._undo: list[Callable[[], None]] | None = None
        self.recent = MemoryRecent(self.set, self.pop)  # each user's marks: look-backs and throttles

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Writes apply at once, and are undone on an exception; inside one already, part of that one."""
        with self.lock:
            if self._undo is not None:
                yield
                return
            self._undo = []
            try:
                yield
            except BaseException:
                for undo in reversed(self._undo):
                    undo()
                raise
            finally:
                self._undo = None

    def record(self, undo: Callable[[], None]) -> None:
        if self._undo is not None:
            self._undo.append(undo)

    def set(self, mapping: MutableMapping[Any, Any], key: Any, value: Any) -> None:
        old = mapping.get(key, _MISSING)
        mapping[key] = value
        self.record(lambda: _restore(mapping, key, old))

    def pop(self, mapping: MutableMapping[Any, Any], key: Any) -> None:
        old = mapping.pop(key, _MISSING)
        if old is not _MISSING:
            self.record(lambda: _restore(mapping, key, old))

    def append(self, items: list[Any], item: Any) -> None:
        items.append(item)
        self.record(items.pop)

    def count(self, counts: Mapping[Key, float]) -> None:
        for key, value in counts.items():
            self.set(self.counters, key, self.counters.get(key, 0.0) + value)

    def received(self, delivery: Mapping[str, Any], status: str) -> dict[str, str] | None:
        """`status` coming for a message (engine.stats.received: never backwards, each engagement
        counted once), counted; the message's new `status` and `engaged`, None when it changes nothing."""
        send = delivery["send"]
        receipt = received(send.journey_id, delivery.get("tally"), send.channel, delivery["status"],
                           delivery.get("engaged"), status)
        self.count(receipt.counts)
        return {"status": receipt.status, "engaged": receipt.engaged} if receipt.changed else None

    def reassign(self, name: str, value: Any) -> None:
        """Replace one of the collections above whole (an erasure's filtered copy)."""
        old = getattr(self, name)
        setattr(self, name, value)
        self.record(lambda: setattr(self, name, old))


class OnData:
    """A part of the memory store (a port, or a role of its transactions) over the store's data."""

    def __init__(self, data: MemoryData) -> None:
        self.data = data


def _restore(mapping: MutableMapping[Any, Any], key: Any, old: Any) -> None:
    if old is _MISSING:
        mapping.pop(key, None)
    else:
        mapping[key] = old
