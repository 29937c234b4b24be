"""The database's availability as the server sees it: one log line when it goes away, one when it
is back, rather than a traceback for every request and every sweep while it is down."""

from __future__ import annotations

import logging
import threading
from datetime import datetime

from engine.clock import Clock

log = logging.getLogger("journey.database")


class Outage:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.since: datetime | None = None
        self.count = 0  # outages seen since start-up

    @property
    def down(self) -> bool:
        return self.since is not None

    def failed(self, exc: BaseException) -> None:
        with self._lock:
            if self.since is not None:
                return
            self.since = self._clock.now()
            self.count += 1
        log.error("the database is unavailable; requests answer 503 and sweeps back off until it is back: %s", exc)

    def recovered(self) -> None:
        with self._lock:
            if self.since is None:
                return
            seconds = (self._clock.now() - self.since).total_seconds()
            self.since = None
        log.warning("the database is back after %.1f s", seconds)
