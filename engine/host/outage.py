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
        self.unanswered = 0  # requests answered 503 during the current outage, not logged one by one

    @property
    def down(self) -> bool:
        return self.since is not None

    def failed(self, exc: BaseException) -> None:
        with self._lock:
            if self.since is not None:
                return
            self.since = self._clock.now()
        log.error("the database is unavailable; requests answer 503 and sweeps back off until it is back: %s", exc)

    def recovered(self) -> None:
        with self._lock:
            if self.since is None:
                return
            seconds = (self._clock.now() - self.since).total_seconds()
            self.since = None
            refused, self.unanswered = self.unanswered, 0
        log.warning("the database is back after %.1f s; %d requests were answered 503 meanwhile", seconds, refused)

    def filter(self, record: logging.LogRecord) -> bool:
        """For the access log: a 503 during an outage is counted, not written (the outage's own two
        lines say it); everything else is written as usual."""
        args = record.args
        if self.since is not None and isinstance(args, tuple) and len(args) == 5 and args[4] == 503:
            with self._lock:
                self.unanswered += 1
            return False
        return True
