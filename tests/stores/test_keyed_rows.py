"""Rows found by a composite key ((user, message), (user, timer)) cost work in proportion to the
rows, not to their square. Named as a list of users beside a list of ids, SQLite's planner, which
has no statistics, looked up every user with every id: a claim of 500 messages was 250,000 index
lookups. Counted here in SQLite's virtual-machine steps, which no machine's load moves."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event

from channels import load_policy
from engine.bench.workload import cart_event, w1_journey, w1_profile
from engine.clock import VirtualClock
from engine.service import Engine
from engine.state import Fence
from engine.stores.sql import SqlStore

T0 = datetime(2026, 1, 5, 10, tzinfo=UTC)
LEASE = timedelta(seconds=60)
STEP = 100  # SQLite calls the handler every this many virtual-machine instructions


class Steps:
    """SQLite's virtual-machine steps on every connection of a store's pool, while counting."""

    def __init__(self, store: SqlStore) -> None:
        self.counting = False
        self.count = 0
        event.listen(store.engine, "checkout", self._watch)

    def _watch(self, dbapi: Any, *_: Any) -> None:
        dbapi.set_progress_handler(self._tick, STEP)

    def _tick(self) -> int:
        self.count += self.counting
        return 0  # go on

    def of(self, work: Callable[[], object]) -> int:
        self.counting, self.count = True, 0
        work()
        self.counting = False
        return self.count * STEP


def _w1(tmp_path: Path, users: int) -> Iterator[tuple[str, int]]:
    """W1 for `users` people on a fresh SQLite file: the steps of each phase that names many rows by
    their keys (timers fired and deleted, the pushes claimed, marked, recorded, then opened)."""
    store = SqlStore(f"sqlite:///{tmp_path}/w1-{users}.db")
    with store.transaction() as tx:
        for n in range(users):
            tx.put_profile(w1_profile(n))
    clock = VirtualClock(T0)
    engine = Engine([w1_journey(timedelta(seconds=2))], load_policy(), store, clock)
    engine.accept_many([cart_event(n, T0) for n in range(users)])
    while engine.process_queued(1000):
        pass
    steps = Steps(store)
    claimed = []
    yield "claim", steps.of(lambda: claimed.extend(store.outbox.claim_outbox(T0, users, LEASE, "a")))
    assert len(claimed) == users
    held = Fence("a", T0, T0 + LEASE, {i.message_id: i.user_id for i in claimed})
    ids = sorted(held.users)
    yield "mark sending", steps.of(lambda: store.outbox.finish_outbox([], held, sending=ids))
    sent = [{"message_id": m, "dispatch": "sent", "status": "sent", "attempts": 1, "next_attempt_at": None,
             "provider": "fcm", "provider_id": f"p-{m}", "error": None, "at": T0} for m in ids]
    yield "record", steps.of(lambda: store.outbox.finish_outbox(sent, held))

    def open_all() -> None:
        with store.transaction() as tx:
            for item in claimed:
                tx.set_message_status(item.user_id, item.message_id, "opened", T0 + timedelta(seconds=1))
    yield "feedback", steps.of(open_all)
    clock.advance_to(T0 + timedelta(seconds=3))  # the pushes' timers are due: fired, and their rows deleted
    yield "timers", steps.of(lambda: engine.fire_due(users))
    store.close()


def test_keyed_writes_and_reads_grow_with_the_rows_not_with_their_square(tmp_path: Path) -> None:
    small, large = dict(_w1(tmp_path, 200)), dict(_w1(tmp_path, 800))
    assert small.keys() == large.keys() == {"claim", "mark sending", "record", "feedback", "timers"}
    for phase, steps in small.items():
        # four times the rows: about four times the steps (before: about sixteen for the claim,
        # the feedback and the timers)
        assert large[phase] <= 6 * steps, (phase, small, large)
