"""The server's in-memory account of its inbox: who has events waiting, and whether there is room.

The inbox table is the truth; this is what the hot path consults instead of querying it.
`accept` runs outside the engine lock, so every method here is thread-safe. Tests and
`journey bench` read `queued` and `dequeued`; the metrics show their difference.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence

MEASURED = 100  # events a measure of the rate spans at least: fewer say little about it


class Backlog:
    """Events accepted but not yet processed, per user, and the admission of new ones.

    The inbox may hold about `delay` seconds of work at the rate the engine has been taking
    events out (`rate`, measured as it goes), and never fewer than `floor` events; callers
    that find it full wait, first come first in, so a queued event is processed within about
    `delay` rather than behind an ever longer queue. Until a batch has been measured (`rate`
    None) it holds `floor`: a guessed rate above the engine's let a burst's first seconds queue
    several seconds of work, and a small batch arriving then (an open that should stop an SMS
    due in two seconds) waited behind all of it.

    While events wait the whole time, the rate is what left the inbox per second of `timer`
    (elapsed time), not per second spent processing: the engine's turn also fires timers, and
    on a machine whose cores are all busy a batch waits for one. Measured by its own work, a
    burst's inbox held three seconds of it where it meant one, and an event accepted then was
    processed three seconds later."""

    def __init__(self, delay: float, floor: int, rate: float | None = None,
                 timer: Callable[[], float] = time.perf_counter) -> None:
        self.delay = delay
        self.floor = floor
        self.rate = rate
        self.timer = timer
        self.queued = 0  # put in (and found there at start)
        self.dequeued = 0  # taken out: processed, or set aside as failed
        self.seconds = 0.0  # spent processing what was taken out
        self._users: Counter[str] = Counter()
        self._changed = threading.Condition()
        self._admitting: deque[object] = deque()
        self._window: tuple[float, int] | None = None  # since when events have waited, and how many left since
        self._unnamed = 0  # events counted in by `recount`, whose users are not known here

    def __bool__(self) -> bool:
        return bool(self._users)

    @property
    def waiting(self) -> int:
        """How many callers of `admit` are waiting for room."""
        return len(self._admitting)

    def any_of(self, user_ids: Iterable[str]) -> bool:
        """Whether any of these users has events waiting."""
        return bool(self._users) and not self._users.keys().isdisjoint(user_ids)

    def admit(self, users: Mapping[str, int], wait: bool = True) -> None:
        """Count events in before they are committed (the sweep may take them at once); with
        `wait`, first wait for room. A batch that adds nothing (its users are other workers')
        takes no room, so it waits for none."""
        count = sum(users.values())
        with self._changed:
            if wait and count:
                self._wait_for_room(count)
            self._users.update(users)
            self.queued += count

    def recount(self, waiting: int) -> None:
        """The database counted `waiting` events of this worker's users in the inbox. Under
        `--workers K` any worker accepts any user's events, and only the owner takes them out:
        what the others accepted is counted in here, so that the room is the whole inbox's.
        Never counts out: events admitted but not yet committed are not in the database's count."""
        with self._changed:
            extra = self.dequeued + waiting - self.queued
            if extra > 0:
                self.queued += extra
                self._unnamed += extra
                if self._window is None:
                    self._window = (self.timer(), 0)

    def withdraw(self, users: Sequence[str]) -> None:
        """Events counted in that never went in: duplicates, or an accept that failed."""
        with self._changed:
            self._forget(users)
            self.queued -= len(users)
            if self.queued <= self.dequeued:
                self._window = None  # nothing waits: the time until the next events is no one's

    def taken(self, users: Sequence[str], seconds: float) -> None:
        """Events taken out of the inbox in `seconds` of work. The rate is updated from every
        MEASURED events taken out while others waited (per elapsed second), or else from a
        full-size batch (per second of its work)."""
        with self._changed:
            self._count_in(self._forget(users))
            self.dequeued += len(users)
            self.seconds += seconds
            if self._window is not None:
                self._measure_waited(*self._window, len(users))
            elif len(users) >= MEASURED:
                self._update(len(users) / max(seconds, 1e-6))
            if self._window is None and self.queued > self.dequeued:
                self._window = (self.timer(), 0)

    def _measure_waited(self, since: float, taken: int, count: int) -> None:
        """Events have waited since the window opened: once it spans MEASURED, its events per
        elapsed second update the rate and a new window opens (or none, the inbox now empty)."""
        taken += count
        now = self.timer()
        if taken >= MEASURED or self.queued <= self.dequeued:
            if taken >= MEASURED:
                self._update(taken / max(now - since, 1e-6))
            self._window = (now, 0) if self.queued > self.dequeued else None
        else:
            self._window = (since, taken)

    def _count_in(self, uncounted: int) -> None:
        """Events taken out that no admit counted in: another worker accepted them, and either a
        recount had counted them in already or they are counted in now."""
        recounted = min(uncounted, self._unnamed)
        self._unnamed -= recounted
        self.queued += uncounted - recounted

    def _update(self, measured: float) -> None:
        self.rate = measured if self.rate is None else 0.8 * self.rate + 0.2 * measured

    def hand_over(self, gone: Callable[[str], bool]) -> None:
        """Stop counting the users for whom `gone` is true: another worker owns them now."""
        with self._changed:
            for user_id in [u for u in self._users if gone(u)]:
                self.queued -= self._users.pop(user_id)
            self.queued -= self._unnamed  # whose they were is not known: the next recount says
            self._unnamed = 0
            self._window = None  # what was measured included the users now gone
            self._changed.notify_all()

    def _wait_for_room(self, count: int) -> None:
        ticket = object()
        self._admitting.append(ticket)
        try:
            while self._admitting[0] is not ticket or self.queued - self.dequeued + count > self._room(count):
                self._changed.wait(1.0)
        finally:
            self._admitting.remove(ticket)
            self._changed.notify_all()

    def _room(self, count: int) -> int:
        """The events the inbox may hold once a caller's `count` are in."""
        return max(self.floor, count, int((self.rate or 0.0) * self.delay))

    def _forget(self, users: Sequence[str]) -> int:
        """Counts these events out of their users'; returns how many had none counted."""
        uncounted = 0
        for user_id in users:
            left = self._users.get(user_id, 0) - 1
            if left > 0:
                self._users[user_id] = left
            else:
                uncounted += left < 0
                self._users.pop(user_id, None)
        self._changed.notify_all()
        return uncounted
