"""Working off the inbox: accepted events processed a batch per transaction, in the order
accepted. If a batch fails, its events go one at a time, so that the one at fault is set aside
(kept with its error, never retried) and the rest go on; a database error is not the events'
fault and is raised (the sweep tries again later).

Under `--workers K` any worker accepts any user's events, and only the user's owner takes them
out: each sweep first has the database count what waits for this worker's users (at most every
RECOUNT seconds), so that its backlog's room is that of its whole share of the inbox."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from engine.errors import StoreError
from engine.host.backlog import Backlog
from engine.host.counters import Counters
from engine.service import Engine

log = logging.getLogger("journey.server")

RECOUNT = 0.1  # seconds between two counts of the inbox's events for this worker's users (workers)


class Inbox:
    """The engine's side of the inbox."""

    def __init__(self, engine: Engine, lock: AbstractContextManager[Any], backlog: Backlog, counters: Counters,
                 batch: int) -> None:
        self.engine = engine
        self.lock = lock
        self.backlog = backlog
        self.counters = counters
        self.batch = batch
        self.count: Callable[[], int] | None = None  # workers: the database's count of this one's queued events
        self._counted = float("-inf")

    def sweep(self) -> int:
        """One batch, in the engine's turn (the inbox sweep)."""
        with self.lock:
            self._recount()
            return self.process()

    def _recount(self) -> None:
        """What waits for this worker's users, whoever accepted it, counted into the backlog
        (in the engine's turn: no batch is taken out meanwhile)."""
        if self.count is None or time.perf_counter() - self._counted < RECOUNT:
            return
        self.backlog.recount(self.count())
        self._counted = time.perf_counter()

    def process(self) -> int:
        """One batch from the inbox; returns how many events were taken out of it. The caller
        holds the engine's turn."""
        started = time.perf_counter()
        try:
            users = [e.user_id for e in self.engine.process_queued(self.batch)]
        except StoreError:
            raise
        except Exception:
            log.exception("a batch of accepted events failed; processing them one at a time")
            users = self._singly()
        seconds = time.perf_counter() - started
        self.backlog.taken(users, seconds)
        if users:
            self.counters.processing.observe(seconds)
        return len(users)

    def _singly(self) -> list[str]:
        """Returns the users of the events taken out of the inbox, processed or set aside."""
        users: list[str] = []
        for _ in range(self.batch):
            try:
                done = self.engine.process_queued(1)
                if not done:
                    break
                users.append(done[0].user_id)
            except StoreError:
                raise
            except Exception as exc:
                log.exception("an accepted event failed; it stays in the inbox with the error")
                user_id = self.engine.quarantine_queued(f"{type(exc).__name__}: {exc}")
                if user_id is None:
                    break
                users.append(user_id)
                self.counters.failed += 1
        return users
