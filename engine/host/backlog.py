"""The server's in-memory account of its inbox: who has events waiting, and whether there is room.

The inbox table is the truth; this is what the hot path consults instead of querying it.
`accept` runs outside the engine lock, so every method here is thread-safe. Tests and
`journey bench` read `queued` and `dequeued`; the metrics show their difference.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence


class Backlog:
    """Events accepted but not yet processed, per user, and the admission of new ones.

    The inbox may hold about `delay` seconds of work at the rate the engine has been taking
    events out (`rate`, measured as it goes), and never fewer than `floor` events; callers
    that find it full wait, first come first in, so a queued event is processed within about
    `delay` rather than behind an ever longer queue. Until a batch has been measured (`rate`
    None) it holds `floor`: a guessed rate above the engine's let a burst's first seconds queue
    several seconds of work, and a small batch arriving then (an open that should stop an SMS
    due in two seconds) waited behind all of it."""

    def __init__(self, delay: float, floor: int, rate: float | None = None) -> None:
        self.delay = delay
        self.floor = floor
        self.rate = rate
        self.queued = 0  # put in (and found there at start)
        self.dequeued = 0  # taken out: processed, or set aside as failed
        self.seconds = 0.0  # spent processing what was taken out
        self._users: Counter[str] = Counter()
        self._changed = threading.Condition()
        self._admitting: deque[object] = deque()

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

    def withdraw(self, users: Sequence[str]) -> None:
        """Events counted in that never went in: duplicates, or an accept that failed."""
        with self._changed:
            self._forget(users)
            self.queued -= len(users)

    def taken(self, users: Sequence[str], seconds: float) -> None:
        """Events taken out of the inbox in `seconds` of work; a full-size batch updates the rate."""
        with self._changed:
            self._forget(users)
            self.dequeued += len(users)
            self.seconds += seconds
            if len(users) >= 100:
                measured = len(users) / max(seconds, 1e-6)
                self.rate = measured if self.rate is None else 0.8 * self.rate + 0.2 * measured

    def hand_over(self, gone: Callable[[str], bool]) -> None:
        """Stop counting the users for whom `gone` is true: another worker owns them now."""
        with self._changed:
            for user_id in [u for u in self._users if gone(u)]:
                self.queued -= self._users.pop(user_id)
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

    def _forget(self, users: Sequence[str]) -> None:
        for user_id in users:
            left = self._users[user_id] - 1
            if left > 0:
                self._users[user_id] = left
            else:
                self._users.pop(user_id, None)
        self._changed.notify_all()
