"""The CPU the engine's own work takes: what a busy machine cannot hide.

Events per second fall when other processes take the cores; the CPU seconds a turn of the
engine spends on its own thread hardly move. Each turn (a sweep run, a batch taken in or
processed) is timed with its thread's CPU clock and the times are summed over threads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


class EngineCpu:
    """Thread CPU seconds spent in the engine's turns, summed. A turn inside another on the same
    thread (a provider's failure taken in during an outbox drain) is counted once, in the outer."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._adding = threading.Lock()
        self._depth = threading.local()

    @contextmanager
    def turn(self) -> Iterator[None]:
        depth = getattr(self._depth, "n", 0)
        self._depth.n = depth + 1
        started = time.thread_time() if depth == 0 else 0.0
        try:
            yield
        finally:
            self._depth.n = depth
            if depth == 0:
                spent = time.thread_time() - started
                with self._adding:
                    self.seconds += spent
