"""The messages of one claim on their way out: checked, marked `sending`, handed over, recorded.

Messages are marked `sending` a window at a time, each window checked again just before
(`channels.recheck`, through `settle`), handed to their providers' lanes (`engine.host.lanes`),
and recorded as the providers answer: about every `IN_DOUBT_WINDOW` seconds, or as soon as the
lanes have taken every message handed to them, one write records what was answered and marks
the next messages `sending` (a provider that buffers, the outbox file, is flushed first, so
nothing is recorded sent that did not leave the process). So at any moment at most a window of
messages is `sending` (what a crash leaves in doubt: the calls under way and the few queued
behind them); the rest of the claim was never handed over (`leased`) and goes out after the
lease runs out.

Every write is fenced by the claim's token (`engine.state.Fence`): once the claim is lost (its
lease ran out and the expiry took its messages back) nothing more is handed over and nothing
recorded; what was in flight is the new holder's to settle. While the flight lasts its lease
is renewed every third of a lease, so a live flight's messages are never taken back.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from engine.clock import Clock
from engine.errors import StoreError
from engine.host.attempts import result, unflushed
from engine.host.lanes import Lanes
from engine.ports import Outbox, OutboxItem
from engine.state import Fence

log = logging.getLogger("journey.dispatcher")

IN_DOUBT_WINDOW = 0.05  # seconds of answers recorded together
IN_DOUBT_MOST = 32  # messages `sending` at once at most, unless the lanes' threads alone are more

Row = dict[str, Any]
Answered = tuple[OutboxItem, Row]
Settle = Callable[[Sequence[OutboxItem], datetime], tuple[list[OutboxItem], list[Answered]]]
Send = Callable[[OutboxItem, datetime], Row]


class Flight:
    """One claim's messages (`fly`); afterwards `recorded` holds each recorded attempt with its
    message, `handed` how many went to a provider and `lost` how many the claim lost."""

    def __init__(self, store: Outbox, clock: Clock, lanes: Lanes, token: str, claimed_at: datetime, lease: timedelta,
                 settle: Settle, send: Send, window: int, users: Mapping[str, str]) -> None:
        self.store, self.clock, self.lanes = store, clock, lanes
        self.users = users  # the claim's messages' users: its writes are routed by them (`Fence.users`)
        self.token, self.lease = token, lease
        self.settle, self.send, self.window = settle, send, window
        self.waiting: deque[OutboxItem] = deque()  # leased, not yet marked `sending`
        self.flying: dict[str, OutboxItem] = {}  # marked `sending` and handed to a lane, not answered
        self.done: list[Answered] = []  # answered, or settled by the checks: not yet recorded
        self.back: list[Row] = []  # held back by a send rate: recorded with the first write, not counted
        self.recorded: list[Answered] = []
        self.handed = 0
        self.lost = 0
        self._started = 0  # of the messages handed over, those a lane's thread has taken up
        self._counting = threading.Lock()
        self._answers: queue.SimpleQueue[tuple[OutboxItem, Row | None, BaseException | None]] = queue.SimpleQueue()
        self._abandoned = threading.Event()
        self._written = time.perf_counter()
        self._renewed = claimed_at
        self._until = claimed_at + lease  # every message of the claim is held at least until then

    def fly(self, going: Sequence[OutboxItem], back: Sequence[Row]) -> None:
        """Until every message is recorded or the claim is lost. A StoreError (the database went
        away) is raised once the messages handed over have answered (`unrecorded`); anything
        else stops the flight at once, as a crash would."""
        self.waiting.extend(going)
        self.back.extend(back)
        try:
            while self.waiting or self.flying or self.done or self.back:
                if self._due_to_write():
                    self._write()
                elif self.flying:
                    self._collect(IN_DOUBT_WINDOW)
                self._renew_if_due()
        except StoreError:
            self._land()
            raise
        except BaseException:
            self._abandoned.set()
            raise

    def unrecorded(self, now: datetime) -> tuple[list[Answered], list[Row]]:
        """After a StoreError: the answers not recorded, and the messages never handed over, as
        rows back to `pending` (due now, as if never claimed)."""
        back = [result(i, "pending", "queued", i.attempts, now, None, None, None, now) for i in self.waiting]
        return self.done, self.back + back

    # --- the loop ----------------------------------------------------------------------------

    def _due_to_write(self) -> bool:
        """Record what was answered every IN_DOUBT_WINDOW (at once when nothing else flies); mark
        more once the lanes have taken up everything handed to them and a quarter of the window
        is free (not a write for every message a fast provider answers)."""
        room = self.window - len(self.flying)
        if self.back or (self.waiting and self.handed == self._started and room >= max(1, self.window // 4)):
            return True
        return bool(self.done) and (not self.flying or time.perf_counter() - self._written >= IN_DOUBT_WINDOW)

    def _write(self) -> None:
        """One fenced write: the answers so far recorded, the next messages checked and marked `sending`."""
        now = self.clock.now()
        chunk = [self.waiting[n] for n in range(min(max(0, self.window - len(self.flying)), len(self.waiting)))]
        going, settled = self.settle(chunk, now)
        answered = self._flushed(self.done, now) + settled
        rows = [row for _, row in answered] + self.back
        fence = Fence(self.token, now, now + self.lease, self.users)
        held = self.store.finish_outbox(rows, fence, [i.message_id for i in going])
        for _ in chunk:
            self.waiting.popleft()
        self.done, self.back = [], []
        self._written = time.perf_counter()
        self.recorded += [(i, row) for i, row in answered if row["message_id"] in held]
        for item in going:
            if item.message_id in held:
                self._hand(item, now)
        if len(held) < len(rows) + len(going):
            self._lose(len(rows) + len(going) - len(held))

    def _flushed(self, answered: list[Answered], now: datetime) -> list[Answered]:
        """The providers that buffer (the outbox file) hand over what they took before any of it is
        recorded `sent`; a send whose provider could not is tried again later (`unflushed`)."""
        if not any(row["dispatch"] == "sent" for _, row in answered):
            return answered
        failed = self.lanes.flush()
        if not failed:
            return answered
        return [(item, unflushed(item, row, failed[row["provider"]], now)
                 if row["dispatch"] == "sent" and row["provider"] in failed else row) for item, row in answered]

    def _hand(self, item: OutboxItem, now: datetime) -> None:
        self.flying[item.message_id] = item
        self.handed += 1
        chain = self.lanes.chain(item.channel)
        if chain:
            self.lanes.submit(chain[0], lambda: self._attempt(item, now))
        else:  # nothing to call: settled here
            self._attempt(item, now)

    def _attempt(self, item: OutboxItem, now: datetime) -> None:
        """On a lane's thread: the attempt, unless the flight was abandoned or its lease ran out meanwhile."""
        with self._counting:
            self._started += 1
        if self._abandoned.is_set() or self.clock.now() >= self._until:
            self._answers.put((item, None, None))
            return
        try:
            row = self.send(item, now)
        except BaseException as exc:  # noqa: BLE001 - handed to the flight's thread, which raises it
            if not isinstance(exc, Exception):  # the process is going down: hand nothing more over
                self._abandoned.set()
            self._answers.put((item, None, exc))
            return
        self._answers.put((item, row, None))

    def _collect(self, timeout: float) -> None:
        """The answers that came in, waiting up to `timeout` seconds for the first."""
        try:
            answer = self._answers.get(timeout=timeout)
        except queue.Empty:
            return
        while True:
            item, row, exc = answer
            self.flying.pop(item.message_id, None)
            if exc is not None:
                raise exc
            if row is not None:
                self.done.append((item, row))
            try:
                answer = self._answers.get_nowait()
            except queue.Empty:
                return

    def _renew_if_due(self) -> None:
        now = self.clock.now()
        if now - self._renewed < self.lease / 3:
            return
        held = [i.message_id for i in self.waiting] + list(self.flying) + [i.message_id for i, _ in self.done]
        kept = self.store.renew_outbox(held, Fence(self.token, now, now + self.lease, self.users))
        self._renewed = now
        if len(kept) < len(held):
            self._lose(len(held) - len(kept))
        else:
            self._until = now + self.lease

    def _lose(self, refused: int) -> None:
        """The claim is no longer this flight's: its lease ran out and the expiry took its messages
        back. Nothing more is handed over; what was in flight is left to the new holder."""
        self._abandoned.set()
        self.lost = refused + len(self.waiting) + len(self.flying) + len(self.done)
        log.warning("outbox claim lost: its lease ran out before it was renewed; %d messages left to the expiry",
                    self.lost)
        self.waiting.clear()
        self.flying.clear()
        self.done.clear()

    def _land(self) -> None:
        """Wait (up to a lease) for the answers of the messages already handed over."""
        deadline = time.monotonic() + self.lease.total_seconds()
        while self.flying and time.monotonic() < deadline:
            self._collect(min(1.0, max(0.0, deadline - time.monotonic())))
