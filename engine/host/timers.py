"""The timer sweep: due timers fired a batch per transaction, in the engine's turn, after the
events accepted for their users before they came due (a `push.opened` still in the inbox must
stop the SMS its timer would send)."""

from __future__ import annotations

import time
from contextlib import AbstractContextManager
from typing import Any

from engine.host.admission import Admission
from engine.host.counters import Counters
from engine.host.inbox import Inbox
from engine.service import Engine


class TimerSweep:
    """One run of the timers sweep: `sweep()` returns how many timers fired."""

    def __init__(self, engine: Engine, lock: AbstractContextManager[Any], admission: Admission, inbox: Inbox,
                 counters: Counters, batch: int) -> None:
        self.engine = engine
        self.lock = lock
        self.admission = admission
        self.inbox = inbox
        self.counters = counters
        self.batch = batch

    def sweep(self) -> int:
        with self.lock:
            now = self.engine.clock.now()  # one instant: a timer due while the events are processed waits its turn
            # processing them may cancel timers and bring others into the batch: look again until none wait
            while self.admission.waiting(list(self.engine.due_timer_users(self.batch, now))):
                if not self.inbox.process():
                    break
            started = time.perf_counter()  # the sweep's own work: not the wait for its turn, not the events
            fired = claimed = self.engine.fire_due(self.batch, now)
            while claimed > 0 and fired < self.batch:  # a claim takes one shard's on Citus: the next shard's
                claimed = self.engine.fire_due(self.batch - fired, now)
                fired += claimed
            if fired:
                self.counters.timer_seconds += time.perf_counter() - started
        self.counters.timers_fired += fired
        return fired
