"""SQLite's one writer at a time, taken in turns inside this process rather than by SQLite's
sleeping busy handler: the engine's transactions first, the dispatcher after a short wait."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


class WriterLock:
    """SQLite has one writer at a time and makes the others poll with sleeps of up to 100 ms.
    Writers in this process queue here instead and wake as soon as the writer before them is
    done. The engine's transactions (events, timers) go before the dispatcher's, but only for
    `patience` seconds: a dispatcher that has waited that long takes its turn, so a steady
    stream of events can delay sends, never stop them."""

    def __init__(self, patience: float = 0.2) -> None:
        self._free = threading.Condition()
        self._owner: int | None = None
        self._depth = 0
        self._urgent_waiting = 0
        self._overdue = 0  # dispatcher writers past their patience
        self._patience = patience
        self.waiting = 0  # threads blocked in `hold`, for tests and diagnostics

    @contextmanager
    def hold(self, urgent: bool) -> Iterator[None]:
        me = threading.get_ident()
        with self._free:
            if self._owner != me:
                self.waiting += 1
                try:
                    self._wait_turn(urgent)
                finally:
                    self.waiting -= 1
                self._owner = me
            self._depth += 1
        try:
            yield
        finally:
            with self._free:
                self._depth -= 1
                if self._depth == 0:
                    self._owner = None
                    self._free.notify_all()

    def _wait_turn(self, urgent: bool) -> None:
        """Called holding the condition; returns when this thread may take the lock."""
        if urgent:
            self._urgent_waiting += 1
            while self._owner is not None or self._overdue:
                self._free.wait()
            self._urgent_waiting -= 1
            return
        give_way_until = time.monotonic() + self._patience
        while self._owner is not None or self._urgent_waiting:
            left = give_way_until - time.monotonic()
            if left <= 0:  # waited long enough: next in, ahead of the engine
                self._overdue += 1
                try:
                    while self._owner is not None:
                        self._free.wait()
                finally:
                    self._overdue -= 1
                return
            self._free.wait(left)
