"""The only module that reads the wall clock. Everything else is handed a `Clock`,
so tests freeze time (freezegun) and the simulator drives it virtually."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, aware and in UTC."""
        ...


class SystemClock:
    """Real time, for `journey serve`."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def seconds(self) -> float:
        """Seconds since the epoch: what providers sign and date messages with."""
        return self.now().timestamp()


class VirtualClock:
    """Time that only moves when told to: the simulator's clock."""

    def __init__(self, start: datetime) -> None:
        self._now = start

    def now(self) -> datetime:
        return self._now

    def advance_to(self, instant: datetime) -> None:
        """Move forward (never back: a late stimulus is processed 'now')."""
        if instant > self._now:
            self._now = instant
