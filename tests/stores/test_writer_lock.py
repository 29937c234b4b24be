"""SQLite writers in one process queue on `WriterLock` rather than SQLite's sleeping busy handler:
one at a time, re-entrant, and the engine's transactions ahead of the dispatcher's."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from channels import Profile
from engine.stores.sql import SqlStore, WriterLock


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
            time.sleep(0.05)  # now blocked in hold()
            threads.append(thread)
        assert order == []  # nobody got in while the lock was held
    for thread in threads:
        thread.join(5)
    assert order == ["engine", "dispatcher"]


def test_the_same_thread_may_hold_it_again_and_others_wait_for_the_outermost_release() -> None:
    lock, order = WriterLock(), []
    started = threading.Event()
    with lock.hold(urgent=True):
        with lock.hold(urgent=False):
            waiter = threading.Thread(target=_holder, args=(lock, True, "other", order, started))
            waiter.start()
            started.wait(5)
        time.sleep(0.05)
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
    assert all(store.user_by_phone(f"+1415555{n:04d}") == f"u{n}" for n in range(200))
    store.close()
