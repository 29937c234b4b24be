"""The bench's devices open a push 0.5 s after it reached them, whatever order the engine sent
the pushes in (on Citus a shard's users at a time, not the order the carts came), and never
before: they watch the file provider's outbox, as a phone receives a push."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from channels.providers.base import OutboundMessage
from channels.providers.local import FileProvider
from engine.bench.burst import Burst, OutboxTail
from engine.bench.workload import OPEN_DELAY, opens
from engine.clock import SystemClock
from engine.events import Event

DEADLINE = 60.0  # seconds: a busy machine is slow, never this slow


def message(user: str, channel: str) -> OutboundMessage:
    return OutboundMessage(f"m-{channel}-{user}", user, channel, "marketing", {"title": "Your cart"}, "token")


def wait_until(condition: Any, what: str) -> None:
    until = time.perf_counter() + DEADLINE
    while not condition():
        assert time.perf_counter() < until, f"waited {DEADLINE} s for {what}"
        time.sleep(0.01)


def test_the_tail_reads_each_push_once_and_a_line_only_once_it_is_whole(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox.jsonl"
    with OutboxTail(outbox) as tail:
        assert tail() == []  # no file yet: nothing handed over
        provider = FileProvider(outbox)
        provider.send(message("u1", "push"))
        provider.send(message("u2", "sms"))
        provider.send(message("u3", "push"))
        provider.flush()
        assert tail() == ["u1", "u3"]
        assert tail() == []
        with outbox.open("a", encoding="utf-8") as handle:  # a line half written
            handle.write('{"message_id": "m", "user_id": "u4", "channel": "push"')
        assert tail() == []
        with outbox.open("a", encoding="utf-8") as handle:
            handle.write(', "to": "token"}\n')
        assert tail() == ["u4"]
    provider.close()


class ReorderingEngine:
    """Takes the carts, then releases them in another order than they came (the last batch's
    users first, then the first batch once the later batch's opens are in), as an engine
    processing a shard at a time does; records when. `release` is what releasing a cart does."""

    def __init__(self, users: int, batch: int) -> None:
        self.users, self.batch = users, batch
        self.carts: list[str] = []
        self.opens: dict[str, float] = {}
        self.released_at: dict[str, float] = {}
        self._lock = threading.Lock()

    def accept(self, events: list[Event]) -> None:
        with self._lock:
            for event in events:
                if event.type == "push.opened":
                    self.opens[event.user_id] = time.perf_counter()
                else:
                    self.carts.append(event.user_id)

    def release(self, users: list[str]) -> None:
        raise NotImplementedError

    def run(self) -> None:
        wait_until(lambda: len(self.carts) == self.users, "every cart")
        later, earlier = self.carts[self.batch:], self.carts[:self.batch]
        self.release(later)
        openers_later = [u for u in later if opens(int(u[1:]))]
        wait_until(lambda: all(u in self.opens for u in openers_later), "the later batch's opens")
        self.release(earlier)

    def _released(self, users: list[str]) -> None:
        at = time.perf_counter()
        self.released_at.update((user, at) for user in users)


class ShardOrderEngine(ReorderingEngine):
    """Hands the pushes over in its own order, to the file provider's outbox."""

    def __init__(self, outbox: Path, users: int, batch: int) -> None:
        super().__init__(users, batch)
        self.provider = FileProvider(outbox)

    def processed(self) -> int:
        """Carts processed in the order they came: none of the first batch until it is pushed."""
        return len(self.carts) if set(self.carts[:self.batch]) <= set(self.released_at) else 0

    def release(self, users: list[str]) -> None:
        for user in users:
            self.provider.send(message(user, "push"))
        self.provider.flush()
        self._released(users)


def test_each_opener_opens_after_its_own_push_whatever_order_the_pushes_came_in(tmp_path: Path) -> None:
    """The count of processed carts never reaches the first batch here until its opens are due
    (the engine processed the later batch first): the pushes seen in the outbox let each open go
    0.5 s after its cart, and never before its push."""
    users, batch = 40, 20
    outbox = tmp_path / "outbox.jsonl"
    engine = ShardOrderEngine(outbox, users, batch)
    with OutboxTail(outbox) as pushed:
        burst = Burst(users, batch, "u", SystemClock().now, engine.accept, processed=engine.processed, pushed=pushed)
        handing = threading.Thread(target=engine.run, daemon=True)
        handing.start()
        burst.run(lambda stage, done, total: None)
        handing.join(DEADLINE)
    engine.provider.close()

    openers = {f"u{n}" for n in range(users) if opens(n)}
    assert set(engine.opens) == openers == set(burst.opened)
    for user in openers:  # never before the push
        assert engine.opens[user] >= engine.released_at[user], user
    first_batch = [u for u in openers if int(u[1:]) < batch]
    second_batch = openers - set(first_batch)
    # the later batch, pushed first, opened before the earlier batch's pushes were even handed over
    assert max(engine.opens[u] for u in second_batch) < min(engine.released_at[u] for u in first_batch)


def test_an_open_waits_half_a_second_after_its_cart_even_when_the_push_came_sooner(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox.jsonl"
    provider = FileProvider(outbox)
    sent: list[tuple[float, Event]] = []

    def accept(events: list[Event]) -> None:  # an engine that pushes as it takes the carts
        sent.extend((time.perf_counter(), e) for e in events)
        for event in events:
            if event.type == "cart.abandoned":
                provider.send(message(event.user_id, "push"))
        provider.flush()

    with OutboxTail(outbox) as pushed:
        Burst(10, 10, "u", SystemClock().now, accept, processed=lambda: 0, pushed=pushed).run(lambda *_: None)
    provider.close()
    carts = {e.user_id: at for at, e in sent if e.type == "cart.abandoned"}
    opened = {e.user_id: at for at, e in sent if e.type == "push.opened"}
    assert set(opened) == {f"u{n}" for n in range(10) if opens(n)}
    assert all(opened[u] - carts[u] >= OPEN_DELAY.total_seconds() - 0.01 for u in opened), (opened, carts)


class InboxOrderEngine(ReorderingEngine):
    """Processes the carts in its own order, out of an inbox, and hands no push over (its
    dispatch far behind); its count of processed carts never passes a batch."""

    def unprocessed(self, users: list[str]) -> set[str]:
        with self._lock:
            return (set(self.carts) - set(self.released_at)) & set(users)

    def release(self, users: list[str]) -> None:
        with self._lock:
            self._released(users)


def test_with_the_inbox_watched_each_open_follows_its_own_cart_out_of_the_inbox(tmp_path: Path) -> None:
    """`--workers K` (and Citus, a shard at a time) take users in their own order, and a count of
    processed carts says little of any one user: the devices ask which of their users' carts
    still wait, and each opens once its own cart is out of the inbox (its push queued in the
    same transaction), no sooner, and not held back by the count nor by a slow dispatch."""
    users, batch = 40, 20
    engine = InboxOrderEngine(users, batch)
    with OutboxTail(tmp_path / "outbox.jsonl") as pushed:  # nothing is ever handed over
        burst = Burst(users, batch, "u", SystemClock().now, engine.accept, processed=lambda: 0, pushed=pushed,
                      unprocessed=engine.unprocessed)
        processing = threading.Thread(target=engine.run, daemon=True)
        processing.start()
        burst.run(lambda stage, done, total: None)
        processing.join(DEADLINE)

    openers = {f"u{n}" for n in range(users) if opens(n)}
    assert set(engine.opens) == openers == set(burst.opened)
    for user in openers:  # never before the cart was processed
        assert engine.opens[user] >= engine.released_at[user], user
    first_batch = [u for u in openers if int(u[1:]) < batch]
    second_batch = openers - set(first_batch)
    assert max(engine.opens[u] for u in second_batch) < min(engine.released_at[u] for u in first_batch)
