"""The W1 burst: every cart as fast as the path allows, and each opener's open from the devices."""

from __future__ import annotations

import heapq
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from engine.bench.workload import OPEN_DELAY, cart_event, open_event, opens
from engine.events import Event

Progress = Callable[[str, int, int], None]
ASK_EVERY = 0.05  # seconds: how often the devices ask which of their users' carts still wait


class Burst:
    """Sends every cart.abandoned in batches as fast as the path allows, and on a second thread
    (the users' devices, not the bulk loader) the opens: 0.5 s after the cart was accepted, as W1
    has them, but never before the engine has queued the user's push (a push not yet queued
    cannot be opened). The devices learn it either way first: `processed` (carts processed so
    far) has passed the user's batch, or `pushed` (`OutboxTail`: the users whose pushes the
    provider has handed over since it was last asked) names the user. Without `processed`, a
    send returns once its events are processed. Where the engine takes users in another order
    than they came (`--workers K`, and on Citus a shard's users at a time), a count says little
    of any one user: `unprocessed` (which of the users still awaited have events waiting in
    the inbox, asked at most every ASK_EVERY seconds) tells each accepted cart that no longer
    waits, as processed, in place of the count. Only the sends are timed, as the time at least
    one is in flight: `prepare` (serialising a request) is the client's work, not the engine's."""

    def __init__(self, users: int, batch: int, prefix: str, now: Callable[[], datetime],
                 send: Callable[[Any], object], prepare: Callable[[list[Event]], Any] = lambda events: events,
                 processed: Callable[[], int] | None = None, send_opens: Callable[[Any], object] | None = None,
                 pushed: Callable[[], Sequence[str]] = lambda: (),
                 unprocessed: Callable[[Sequence[str]], Collection[str]] | None = None) -> None:
        self.users, self.batch, self.prefix, self.now = users, batch, prefix, now
        self.send, self.prepare, self.send_opens, self.pushed = send, prepare, send_opens or send, pushed
        self.unprocessed = unprocessed
        self._asked = float("-inf")  # when `unprocessed` was last asked
        self.events_per_s = 0.0
        self._turn = threading.Lock()
        self._waiting: deque[tuple[int, list[str]]] = deque()  # (carts sent up to this batch, its openers)
        self._accepted: dict[str, tuple[int, float]] = {}  # opener -> (n, when the cart was accepted), until due
        self._opens: list[tuple[float, int]] = []  # a heap of (when to send, the opener)
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
                accepted, openers = time.perf_counter(), [n for n in ids if opens(n)]
                with self._turn:
                    self._carts = ids.stop
                    self._accepted.update((f"{self.prefix}{n}", (n, accepted)) for n in openers)
                    if self.unprocessed is None:
                        self._waiting.append((ids.stop, [f"{self.prefix}{n}" for n in openers]))
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
            while not (self._carts_done and not self._accepted and not self._opens):
                self._learn()
                due = self._due_openers()
                if due:
                    at = self.now()
                    self.opened.update((f"{self.prefix}{n}", at) for n in due)
                    self._timed_send(self.send_opens, [open_event(n, at, self.prefix) for n in due])
                    continue
                wait = 0.005 if self._accepted or not self._carts_done else 1.0
                if self._opens:
                    wait = min(wait, self._opens[0][0] - time.perf_counter())
                time.sleep(max(0.0, wait))
        except BaseException as exc:  # raised again on the main thread
            self._failure = exc
        finally:
            self.devices_cpu = time.thread_time()

    def _learn(self) -> None:
        """Whose pushes are queued since the last look: every batch `processed` has passed (asked,
        over HTTP, only while a batch waits for it), and every user `pushed` names. Each gets
        their open's time."""
        received = list(self.pushed()) + self._out_of_the_inbox()
        processed = self.processed() if self._waiting else 0
        with self._turn:
            while self._waiting and self._waiting[0][0] <= processed:
                received.extend(self._waiting.popleft()[1])
            for user in received:
                if (accepted := self._accepted.pop(user, None)) is not None:
                    n, when = accepted
                    heapq.heappush(self._opens, (max(when + OPEN_DELAY.total_seconds(), time.perf_counter()), n))
            if not self._accepted:  # every opener known: the batches still counted wait for nothing
                self._waiting.clear()

    def _out_of_the_inbox(self) -> list[str]:
        """The awaited users whose carts, accepted before the question was asked, no longer wait
        in the inbox (`unprocessed`): processed, their push queued in the same transaction."""
        if self.unprocessed is None or time.perf_counter() - self._asked < ASK_EVERY:
            return []
        with self._turn:
            awaited = {user: accepted for user, (_, accepted) in self._accepted.items()}
        if not awaited:
            return []
        self._asked = asked = time.perf_counter()
        waiting = self.unprocessed(sorted(awaited))
        return [user for user, accepted in awaited.items() if accepted < asked and user not in waiting]

    def _due_openers(self) -> list[int]:
        """Every open now due, in one call."""
        due: list[int] = []
        while self._opens and self._opens[0][0] <= time.perf_counter():
            due.append(heapq.heappop(self._opens)[1])
        return due


class OutboxTail:
    """The pushes a file provider has handed over, read from its outbox (JSON lines) as they are
    written: what the bench's devices receive. Reads only whole lines (a line still being
    written is read the next time); any other channel's line is passed over."""

    def __init__(self, path: Path, channel: str = "push") -> None:
        self.path, self.channel = path, channel
        self._handle: BinaryIO | None = None  # opened once the provider has made the file
        self._partial = b""
        self._marker = f'"channel": "{channel}"'.encode(), f'"channel":"{channel}"'.encode()

    def __enter__(self) -> OutboxTail:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()

    def __call__(self) -> list[str]:
        if self._handle is None:
            try:
                self._handle = self.path.open("rb")  # noqa: SIM115 - closed by `close`
            except FileNotFoundError:  # nothing handed over yet
                return []
        lines = (self._partial + self._handle.read()).split(b"\n")
        self._partial = lines.pop()
        return [user for user in map(self._user, lines) if user is not None]

    def _user(self, line: bytes) -> str | None:
        if not any(marker in line for marker in self._marker):
            return None
        try:
            record = json.loads(line)
        except ValueError:
            return None
        return record.get("user_id") if record.get("channel") == self.channel else None


def busy_seconds(spans: Sequence[tuple[float, float, int]]) -> float:
    """The time at least one send was in flight (the sends of two threads overlap)."""
    busy, reach = 0.0, float("-inf")
    for start, end, _ in sorted(spans):
        if end > reach:
            busy += end - max(start, reach)
            reach = end
    return busy or 1e-9
