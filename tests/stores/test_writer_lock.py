"""SQLite writers in one process queue on `WriterLock` rather than SQLite's sleeping busy handler:
one at a time, re-entrant, and the engine's transactions ahead of the dispatcher's."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from channels import Profile
from engine.stores.sql import SqlStore, WriterLock
from tests.server.conftest import wait_until


def _holder(lock: WriterLock, urgent: bool, name: str, order: list[str], started: threading.Event) -> None:
    started.set()
    with lock.hold(urgent):
        order.append(name)


def test_urgent_writers_go_before_waiting_dispatch_writers() -> None:
    lock, order = WriterLock(), []
    threads = []
    with lock.hold(urgent=True):
        for name, urgent in (("dispatcher", False), ("engine", True)):
            started = threading.Event()
            thread = threading.Thread(target=_holder, args=(lock, urgent, name, order, started))
            thread.start()
            started.wait(5)
            threads.append(thread)
            wait_until(lambda: lock.waiting == len(threads), timeout=30, interval=0.001, what="blocked in hold()")
        assert order == []  # nobody got in while the lock was held
    for thread in threads:
        thread.join(5)
    assert order == ["engine", "dispatcher"]


def test_a_steady_stream_of_engine_writers_delays_the_dispatcher_but_never_shuts_it_out() -> None:
    lock = WriterLock(patience=0.2)
    stop = threading.Event()

    def engine_writer() -> None:  # two of these keep an urgent writer waiting at every moment
        while not stop.is_set():
            with lock.hold(urgent=True):
                time.sleep(0.002)

    writers = [threading.Thread(target=engine_writer) for _ in range(2)]
    for writer in writers:
        writer.start()
    waited: list[float] = []

    def dispatcher() -> None:
        asked = time.monotonic()
        with lock.hold(urgent=False):
            waited.append(time.monotonic() - asked)

    thread = threading.Thread(target=dispatcher, daemon=True)  # a shut-out dispatcher must fail, not hang
    thread.start()
    thread.join(3)
    stop.set()
    for writer in writers:
        writer.join(5)
    assert waited, "the dispatcher never got the lock while engine writers kept coming"
    assert 0.15 <= waited[0] < 1.0


def test_the_same_thread_may_hold_it_again_and_others_wait_for_the_outermost_release() -> None:
    lock, order = WriterLock(), []
    started = threading.Event()
    with lock.hold(urgent=True):
        with lock.hold(urgent=False):
            waiter = threading.Thread(target=_holder, args=(lock, True, "other", order, started))
            waiter.start()
            started.wait(5)
            wait_until(lambda: lock.waiting == 1, timeout=30, interval=0.001, what="the other thread blocked")
        assert order == []  # still held by the outer block
    waiter.join(5)
    assert order == ["other"]


def test_a_store_writes_from_many_threads_without_losing_any(tmp_path: Path) -> None:
    store = SqlStore(f"sqlite:///{tmp_path}/journey.db")

    def write(start: int) -> None:
        for n in range(start, start + 50):
            with store.transaction() as tx:
                tx.put_profile(Profile(f"u{n}", phone=f"+1415555{n:04d}"))

    threads = [threading.Thread(target=write, args=(k * 50,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert all(store.views.users_by_phone(f"+1415555{n:04d}") == [f"u{n}"] for n in range(200))
    store.close()
