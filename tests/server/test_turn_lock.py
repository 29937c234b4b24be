"""`TurnLock`: the server's engine lock goes to whoever asked first, so a sweep that loops
batch after batch cannot keep another sweep (timers behind a backlog of events) waiting; and a
turn that never ends is what `/healthz` reports (liveness: the one state a restart mends)."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

import pytest

from engine.host.turns import TurnLock
from tests.server.conftest import LocalServer, wait_until


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


def test_healthz_answers_503_while_one_turn_holds_the_engine_past_the_limit(local: LocalServer,
                                                                            caplog: pytest.LogCaptureFixture) -> None:
    """A thread takes the engine and does not give it back (a render or a query that will not
    return): /healthz says 200 until the turn has lasted 10 s on the server's clock, then 503
    naming the thread and logs where it is, once; 200 again as soon as the turn ends."""
    release, taken = threading.Event(), threading.Event()

    def stuck() -> None:
        with local.server.lock:
            taken.set()
            release.wait(30)

    thread = threading.Thread(target=stuck, daemon=True, name="stuck-turn")
    thread.start()
    assert taken.wait(5)
    try:
        local.clock.advance_to(local.clock.now() + timedelta(seconds=9))
        assert local.client.get("/healthz").status_code == 200
        local.clock.advance_to(local.clock.now() + timedelta(seconds=3))
        with caplog.at_level(logging.ERROR, logger="journey.server"):
            answers = [local.client.get("/healthz") for _ in range(2)]
        assert [a.status_code for a in answers] == [503, 503]
        body = answers[0].json()
        assert answers[0].headers["content-type"] == "application/problem+json"
        assert body["turn"] == {"thread": "stuck-turn", "held_seconds": 12.0, "limit_seconds": 10.0}
        assert body["detail"].startswith("an engine turn has held the engine for 12.0 s (thread stuck-turn)")
        [logged] = [r for r in caplog.records if "has held the engine" in r.getMessage()]
        assert "release.wait(30)" in logged.getMessage()  # where the thread is
    finally:
        release.set()
        thread.join(5)
    assert local.client.get("/healthz").json() == {"status": "ok"}
