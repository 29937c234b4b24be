"""The only module that reads the wall clock. Everything else is handed a `Clock`, so tests
move a `VirtualClock` (as the simulator does) and freeze the wall clock with freezegun where
they meet `SystemClock` itself (tests/engine/test_ids.py). Ids are made here too: production
ids sort by the time they were made."""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

IdSource = Callable[[], str]


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


def ordered_ids(clock: Clock) -> IdSource:
    """Production ids: they sort in creation order, so rows keyed by them (instances, messages,
    timers) are appended to their B-trees rather than scattered over them as random UUIDs would
    be, which costs a third of the ingest time on SQLite. The prefix is the start time and a
    random part (two workers never share it); a counter follows."""
    prefix = f"{int(clock.now().timestamp() * 1000):012x}{secrets.token_hex(4)}"
    numbers = itertools.count()
    return lambda: f"{prefix}{next(numbers):010x}"


def counter_ids(prefix: str = "") -> IdSource:
    """Deterministic ids (i1, i2, ...) for dry runs, so two runs print the same output."""
    numbers = itertools.count(1)
    return lambda: f"{prefix}{next(numbers)}"
