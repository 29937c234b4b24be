"""`Backlog`: the server's count of queued events per user, its room, and its measured rate."""

from __future__ import annotations

import threading
from collections import Counter

from engine.host.backlog import Backlog


def test_it_knows_whose_events_wait_until_they_are_taken_or_withdrawn() -> None:
    backlog = Backlog(delay=1.0, floor=10)
    backlog.admit(Counter(["u1", "u1", "u2"]))
    assert backlog and backlog.any_of(["u2", "u9"]) and not backlog.any_of(["u9"])
    backlog.withdraw(["u2"])  # a duplicate: it never went in
    backlog.taken(["u1"], 0.01)
    assert backlog.any_of(["u1"]) and not backlog.any_of(["u2"])
    backlog.taken(["u1"], 0.01)
    assert not backlog and (backlog.queued, backlog.dequeued) == (2, 2)


def test_the_rate_follows_full_batches_and_sets_the_room() -> None:
    backlog = Backlog(delay=0.5, floor=10, rate=1000.0)
    backlog.taken([f"u{n}" for n in range(200)], 0.01)  # 20,000/s, not counted in: nothing queued
    assert backlog.rate == 0.8 * 1000 + 0.2 * 20_000
    backlog.taken(["u1"] * 5, 10.0)  # small batches say little about the rate
    assert backlog.rate == 0.8 * 1000 + 0.2 * 20_000


def test_before_any_batch_is_measured_it_holds_one_batch_and_the_first_measure_sets_the_rate() -> None:
    """No guessed rate: a burst's first seconds would otherwise queue far more than `delay` of
    work on an engine slower than the guess, and a small batch sent then waited behind it."""
    backlog = Backlog(delay=1.0, floor=100)
    backlog.admit(Counter(f"c{n}" for n in range(100)))
    late = threading.Thread(target=backlog.admit, args=(Counter(["opener"]),), daemon=True)
    late.start()
    late.join(0.2)
    assert late.is_alive(), "admitted more than one batch before the engine's rate was known"
    backlog.taken([f"c{n}" for n in range(100)], 0.5)  # 200 events/s
    late.join(5)
    assert not late.is_alive() and backlog.rate == 200.0
    backlog.admit(Counter(f"d{n}" for n in range(199)))  # a second's work at 200/s: room for 200 in all
    assert backlog.queued - backlog.dequeued == 200


def test_a_full_backlog_admits_callers_in_the_order_they_came() -> None:
    backlog = Backlog(delay=0.0, floor=2)
    backlog.admit(Counter(["a", "b"]))
    order: list[str] = []

    def admit(user: str) -> None:
        backlog.admit(Counter([user]))
        order.append(user)

    first = threading.Thread(target=admit, args=("c",), daemon=True)
    first.start()
    first.join(0.2)
    second = threading.Thread(target=admit, args=("d",), daemon=True)
    second.start()
    second.join(0.2)
    assert order == [], "admitted past a full backlog"
    backlog.taken(["a"], 0.001)
    first.join(5)
    assert order == ["c"]
    backlog.taken(["b"], 0.001)
    second.join(5)
    assert order == ["c", "d"]


def test_a_batch_of_none_of_its_users_passes_a_full_backlog() -> None:
    """Under `--workers K` a worker counts only its own users' events: a batch all of whose
    users another worker owns adds nothing to its inbox's work, and waits for nothing."""
    backlog = Backlog(delay=0.0, floor=1)
    backlog.admit(Counter(["mine"]))
    others = threading.Thread(target=backlog.admit, args=(Counter(),), daemon=True)
    others.start()
    others.join(5)
    assert not others.is_alive() and backlog.queued == 1


class Ticks:
    """A stand-in for `time.perf_counter` that a test moves."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_while_events_wait_the_rate_is_per_elapsed_second_not_per_second_of_work() -> None:
    """The engine's turn also fires timers, and on a busy machine a batch waits for a core: 100
    events taken out every 0.3 s in 0.1 s of work each drain 333 a second, not 1,000, and a
    second's room holds 333 of them."""
    ticks = Ticks()
    backlog = Backlog(delay=1.0, floor=10, timer=ticks)
    backlog.admit(Counter(f"u{n}" for n in range(3000)), wait=False)
    for start in range(0, 3000, 100):
        ticks.now += 0.3
        backlog.taken([f"u{n}" for n in range(start, start + 100)], 0.1)
    assert backlog.rate is not None and 330 < backlog.rate < 340, backlog.rate
    assert backlog._room(1) == int(backlog.rate)


def test_the_time_the_inbox_stood_empty_is_not_counted_against_the_rate() -> None:
    ticks = Ticks()
    backlog = Backlog(delay=1.0, floor=10, rate=1000.0, timer=ticks)
    backlog.admit(Counter(f"u{n}" for n in range(100)), wait=False)
    ticks.now += 0.1
    backlog.taken([f"u{n}" for n in range(100)], 0.1)  # 1,000/s: the inbox is now empty
    ticks.now += 60.0  # nothing comes in for a minute
    backlog.admit(Counter(f"v{n}" for n in range(100)), wait=False)
    ticks.now += 0.1
    backlog.taken([f"v{n}" for n in range(100)], 0.1)
    assert backlog.rate == 1000.0


def test_events_another_worker_accepted_take_room_once_counted_and_never_show_as_fewer_than_none() -> None:
    """Under `--workers K` any worker accepts any user's events; only the owner takes them out.
    Uncounted, they made its backlog negative (the metrics showed -13,000 events queued after a
    burst) and its inbox never full, whatever the others had queued for it."""
    backlog = Backlog(delay=0.0, floor=100)
    backlog.admit(Counter(f"mine{n}" for n in range(50)))
    backlog.taken([f"theirs{n}" for n in range(30)], 0.01)  # accepted by another worker: taken before counted
    assert backlog.queued - backlog.dequeued == 50
    backlog.recount(50 + 60)  # the database: 60 more wait for this worker's users
    assert backlog.queued - backlog.dequeued == 110
    late = threading.Thread(target=backlog.admit, args=(Counter(["mine-late"] * 10),), daemon=True)
    late.start()
    late.join(0.2)
    assert late.is_alive(), "admitted past an inbox the other workers had filled"
    backlog.taken([f"theirs{n}" for n in range(60)], 0.01)
    late.join(5)
    assert not late.is_alive()
    backlog.recount(0)  # not yet committed: what was admitted is never counted out
    assert backlog.queued - backlog.dequeued == 60
