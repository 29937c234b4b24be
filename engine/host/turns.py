"""The engine's lock, handed over in the order it was asked for."""

from __future__ import annotations

import threading
from collections import deque


class TurnLock:
    """A re-entrant lock handed over in the order it was asked for. The sweeps (inbox, timers)
    each loop batch after batch; with a plain lock the thread that just released it takes it
    straight back, and a backlog of events would hold timers up for seconds. Here a waiting
    sweep goes next, so a timer waits for at most one batch of events."""

    def __init__(self) -> None:
        self._turns = threading.Condition(threading.Lock())
        self._owner: int | None = None
        self._depth = 0
        self._waiting: deque[int] = deque()

    @property
    def waiting(self) -> int:
        """Threads queued for the lock (not counting its holder)."""
        with self._turns:
            return len(self._waiting)

    def __enter__(self) -> TurnLock:
        me = threading.get_ident()
        with self._turns:
            if self._owner != me:
                self._waiting.append(me)
                while self._owner is not None or self._waiting[0] != me:
                    self._turns.wait()
                self._waiting.popleft()
                self._owner = me
            self._depth += 1
        return self

    def __exit__(self, *_: object) -> None:
        with self._turns:
            self._depth -= 1
            if self._depth == 0:
                self._owner = None
                self._turns.notify_all()
