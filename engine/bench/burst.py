"""The W1 burst: every cart as fast as the path allows, and each batch's opens from the devices."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from engine.bench.workload import OPEN_DELAY, cart_event, open_event, opens
from engine.events import Event

Progress = Callable[[str, int, int], None]


class Burst:
    """Sends every cart.abandoned in batches as fast as the path allows, and on a second thread
    (the users' devices, not the bulk loader) each batch's opens: 0.5 s after the batch was
    accepted, as W1 has them, but never before the engine has processed it and so queued its
    pushes (a push not yet queued cannot be opened). `processed` counts carts processed so far;
    without it, a send returns once its events are processed. Only the sends are timed, as
    the time at least one is in flight: `prepare` (serialising a request) is the client's
    work, not the engine's."""

    def __init__(self, users: int, batch: int, prefix: str, now: Callable[[], datetime],
                 send: Callable[[Any], object], prepare: Callable[[list[Event]], Any] = lambda events: events,
                 processed: Callable[[], int] | None = None, send_opens: Callable[[Any], object] | None = None) -> None:
        self.users, self.batch, self.prefix, self.now = users, batch, prefix, now
        self.send, self.prepare, self.send_opens = send, prepare, send_opens or send
        self.events_per_s = 0.0
        self._turn = threading.Lock()
        self._waiting: list[tuple[int, list[int], float]] = []  # (carts sent up to this batch, its openers, when)
        self._opens: list[tuple[float, list[int]]] = []  # (when to send, the openers)
        self._carts = 0  # carts sent so far; `processed` is compared with it
        self._carts_done = False
        self.processed = processed or (lambda: self._carts)
        self.started_at = now()
        self.opened: dict[str, datetime] = {}  # user id -> when their open was sent
        self._spans: list[tuple[float, float, int]] = []  # (start, end, events) of every send
        self._failure: BaseException | None = None
        self.devices_cpu = 0.0  # the devices' thread's CPU, once it is done
        self.sends_cpu: list[float] = []  # the thread CPU of each send (via python: the engine's own work)

    @property
    def sent(self) -> int:
        """Events sent so far (carts and opens)."""
        return sum(n for _, _, n in self._spans)

    def run(self, progress: Progress) -> None:
        devices = threading.Thread(target=self._open_when_due, name="bench-devices", daemon=True)
        self.started_at = self.now()
        devices.start()
        try:
            for start in range(0, self.users, self.batch):
                ids = range(start, min(self.users, start + self.batch))
                at = self.now()
                self._timed_send(self.send, [cart_event(n, at, self.prefix) for n in ids])
                with self._turn:
                    self._carts = ids.stop
                    self._waiting.append((ids.stop, [n for n in ids if opens(n)], time.perf_counter()))
                progress("ingest", ids.stop, self.users)
        finally:
            self._carts_done = True
            devices.join()
        if self._failure is not None:
            raise self._failure
        self.events_per_s = sum(n for _, _, n in self._spans) / busy_seconds(self._spans)

    def _timed_send(self, send: Callable[[Any], object], events: list[Event]) -> None:
        request = self.prepare(events)
        before, cpu = time.perf_counter(), time.thread_time()
        send(request)
        self.sends_cpu.append(time.thread_time() - cpu)
        self._spans.append((before, time.perf_counter(), len(events)))

    def _open_when_due(self) -> None:
        try:
            while not (self._carts_done and not self._waiting and not self._opens):
                openers = self._due_openers()
                if openers:
                    at = self.now()
                    self.opened.update((f"{self.prefix}{n}", at) for n in openers)
                    self._timed_send(self.send_opens, [open_event(n, at, self.prefix) for n in openers])
                    continue
                wait = 0.005 if self._waiting or not self._carts_done else 1.0
                if self._opens:
                    wait = min(wait, self._opens[0][0] - time.perf_counter())
                time.sleep(max(0.0, wait))
        except BaseException as exc:  # raised again on the main thread
            self._failure = exc
        finally:
            self.devices_cpu = time.thread_time()

    def _due_openers(self) -> list[int]:
        """Batches seen processed since the last look get their opens' time; every open now due,
        in one call. Asks `processed` (a scrape, over HTTP) only while a batch waits for it, so
        that an open never waits for a scrape."""
        if self._waiting:
            processed = self.processed()
            with self._turn:
                while self._waiting and self._waiting[0][0] <= processed:
                    _, openers, accepted = self._waiting.pop(0)
                    self._opens.append((max(accepted + OPEN_DELAY.total_seconds(), time.perf_counter()), openers))
        due: list[int] = []
        while self._opens and self._opens[0][0] <= time.perf_counter():
            due.extend(self._opens.pop(0)[1])
        return due


def busy_seconds(spans: Sequence[tuple[float, float, int]]) -> float:
    """The time at least one send was in flight (the sends of two threads overlap)."""
    busy, reach = 0.0, float("-inf")
    for start, end, _ in sorted(spans):
        if end > reach:
            busy += end - max(start, reach)
            reach = end
    return busy or 1e-9
