"""`TurnLock`: the server's engine lock goes to whoever asked first, so a sweep that loops
batch after batch cannot keep another sweep (timers behind a backlog of events) waiting."""

from __future__ import annotations

import threading

from engine.host.turns import TurnLock
from tests.server.conftest import wait_until


def test_a_waiting_thread_goes_before_the_holder_takes_the_lock_again() -> None:
    lock, order = TurnLock(), []
    asked = threading.Event()

    def other() -> None:
        asked.set()
        with lock:
            order.append("other")

    with lock:
        thread = threading.Thread(target=other, daemon=True)
        thread.start()
        asked.wait(5)
        wait_until(lambda: lock.waiting == 1, timeout=30, interval=0.001, what="`other` queued for the lock")
    with lock:  # the holder asks again at once, as a looping sweep does
        order.append("holder")
    thread.join(5)
    assert order == ["other", "holder"]


def test_the_holder_may_take_it_again_inside() -> None:
    lock = TurnLock()
    with lock, lock:
        pass
    taken = threading.Event()
    thread = threading.Thread(target=lambda: (lock.__enter__(), taken.set(), lock.__exit__()), daemon=True)
    thread.start()
    assert taken.wait(5), "the lock was not free after the nested release"
