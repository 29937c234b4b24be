"""The SQLite store keeps committed user state in memory; these prove the cache changes no outcome:
W1 runs the same with a cache that holds 3 users as with one that holds everyone, and a failed
transaction leaves nothing behind in it."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from channels import ConsentRecord, Profile, load_policy
from engine.bench.workload import check_w1, w1_events, w1_journey, w1_profile
from engine.clock import VirtualClock
from engine.service import Engine
from engine.stores.sql import MESSAGES, SqlStore

START = datetime(2026, 1, 5, 12, tzinfo=UTC)


def _run_w1(store: SqlStore, users: int) -> list[tuple[str, str]]:
    clock = VirtualClock(START)
    engine = Engine([w1_journey(timedelta(seconds=2))], load_policy(), store, clock)
    with store.transaction() as tx:
        for n in range(users):
            tx.put_profile(w1_profile(n))
    events = list(w1_events(users, START))
    for at in sorted({e.timestamp for e in events}):
        clock.advance_to(at)
        for n in range(0, users, 7):  # small batches, so users pass in and out of a small cache
            engine.process_many([e for e in events if e.timestamp == at][n:n + 7])
    clock.advance_to(START + timedelta(seconds=3))
    while engine.fire_due(5):
        pass
    with store.engine.connect() as conn:
        return sorted((r[0], r[1]) for r in conn.execute(MESSAGES.select().with_only_columns(
            MESSAGES.c.user_id, MESSAGES.c.channel)))


@pytest.mark.parametrize("limit", [3, 1_000_000])
def test_w1_is_correct_whatever_the_cache_holds(tmp_path: Path, limit: int) -> None:
    store = SqlStore(f"sqlite:///{tmp_path}/cache.db")
    assert store.cache is not None
    store.cache.limit = limit
    sends = _run_w1(store, 40)
    assert check_w1(40, sends) == []
    assert len(store.cache.users) <= max(limit, 3) + 7


def test_without_cache_gives_the_same_messages(tmp_path: Path) -> None:
    cached = _run_w1(SqlStore(f"sqlite:///{tmp_path}/a.db"), 30)
    uncached = _run_w1(SqlStore(f"sqlite:///{tmp_path}/b.db", cache=False), 30)
    assert cached == uncached


def test_a_failed_transaction_leaves_nothing_in_the_cache(tmp_path: Path) -> None:
    store = SqlStore(f"sqlite:///{tmp_path}/c.db")
    with store.transaction() as tx:
        tx.put_profile(w1_profile(1))
    with pytest.raises(RuntimeError), store.transaction() as tx:
        profile = tx.get_profile("u1")
        assert profile is not None
        tx.put_profile(Profile("u1", "Europe/Paris"))
        raise RuntimeError("boom")
    with store.transaction() as tx:
        again = tx.get_profile("u1")
    assert again is not None and again.timezone == "UTC"


def test_the_dispatchers_recheck_reads_the_cache_only_as_committed(tmp_path: Path) -> None:
    """The dispatcher's last check reads the cached profile and suppression list rather than the
    database, but never a transaction's writes before they commit: a STOP being processed (the
    consent revoked, the number suppressed) whose transaction then fails must not be seen, nor
    seen half-way while it runs."""
    store = SqlStore(f"sqlite:///{tmp_path}/d.db")
    with store.transaction() as tx:
        tx.put_profile(w1_profile(1))
        tx.prefetch(["u1"], START)
    phone = w1_profile(1).phone
    assert phone is not None and store.cache is not None and "u1" in store.cache.users
    seen: list[tuple[bool, bool]] = []
    writing = threading.Event()

    def recheck() -> None:
        writing.wait(30)
        profile = store.outbox.recipients(["u1"])["u1"]
        seen.append((all(c.granted for c in profile.consents), phone in store.outbox.suppressions([phone])))

    reader = threading.Thread(target=recheck)
    reader.start()
    with pytest.raises(RuntimeError), store.transaction() as tx:
        revoked = ConsentRecord("sms", "marketing", False, "STOP", START)
        tx.put_profile(w1_profile(1).with_consents([revoked]))
        tx.record_suppression(phone, "STOP", START, "test")
        writing.set()
        deadline = time.monotonic() + 30  # until the reader has looked, or waits for the transaction
        while not seen and not store.database.writer.waiting and time.monotonic() < deadline:  # type: ignore[union-attr]
            time.sleep(0.01)
        raise RuntimeError("the transaction fails")
    reader.join(30)
    assert seen == [(True, False)]
