"""The engine's lock, handed over in the order it was asked for, and how long its turn has lasted."""

from __future__ import annotations

import logging
import sys
import threading
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

log = logging.getLogger("journey.server")


@dataclass(frozen=True, slots=True)
class Overdue:
    """A turn that has held the engine longer than it should: what `/healthz` answers 503 with."""

    thread: str
    held_seconds: float
    limit_seconds: float

    def __str__(self) -> str:
        return (f"an engine turn has held the engine for {self.held_seconds:.1f} s (thread {self.thread}), over "
                f"the limit of {self.limit_seconds:g} s: events, timers and sends wait behind it")

    def to_dict(self) -> dict[str, Any]:
        return {"thread": self.thread, "held_seconds": round(self.held_seconds, 1), "limit_seconds": self.limit_seconds}


class TurnLock:
    """A re-entrant lock handed over in the order it was asked for. The sweeps (inbox, timers)
    each loop batch after batch; with a plain lock the thread that just released it takes it
    straight back, and a backlog of events would hold timers up for seconds. Here a waiting
    sweep goes next, so a timer waits for at most one batch of events.

    It also knows since when its holder has had it (`now`: the server's clock), so a turn that
    never ends (a render, a query or a bug that will not return) shows in `/healthz`: the one
    state of the process that a restart mends."""

    def __init__(self, now: Callable[[], datetime] | None = None) -> None:
        self._turns = threading.Condition(threading.Lock())
        self._owner: int | None = None
        self._depth = 0
        self._waiting: deque[int] = deque()
        self._now = now
        self._since: datetime | None = None
        self._reported: tuple[int, datetime] | None = None

    @property
    def waiting(self) -> int:
        """Threads queued for the lock (not counting its holder)."""
        with self._turns:
            return len(self._waiting)

    def overdue(self, limit: timedelta) -> Overdue | None:
        """The turn under way, if it has lasted longer than `limit`; logged once per turn, with
        where its thread is, for whoever restarts the process to read."""
        with self._turns:
            owner, since = self._owner, self._since
        if owner is None or since is None or self._now is None:
            return None
        held = self._now() - since
        if held <= limit:
            return None
        found = Overdue(_thread_name(owner), held.total_seconds(), limit.total_seconds())
        if self._reported != (owner, since):
            self._reported = (owner, since)
            frame = sys._current_frames().get(owner)
            where = "".join(traceback.format_stack(frame)) if frame is not None else "(no stack)"
            log.error("%s; where it is:\n%s", found, where)
        return found

    def __enter__(self) -> TurnLock:
        me = threading.get_ident()
        with self._turns:
            if self._owner != me:
                self._waiting.append(me)
                while self._owner is not None or self._waiting[0] != me:
                    self._turns.wait()
                self._waiting.popleft()
                self._owner = me
                self._since = self._now() if self._now is not None else None
            self._depth += 1
        return self

    def __exit__(self, *_: object) -> None:
        with self._turns:
            self._depth -= 1
            if self._depth == 0:
                self._owner = None
                self._since = None
                self._turns.notify_all()


def _thread_name(ident: int) -> str:
    return next((t.name for t in threading.enumerate() if t.ident == ident), str(ident))
