"""The inbox of accepted events, on every store: oldest first, each event once, a failed
claim leaves them queued, a set-aside event keeps its error; on PostgreSQL each worker takes
only the events of the partitions it owns, so a user's events keep their order across workers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from engine.events import Event
from engine.ports import Store
from engine.state import partition_of
from engine.stores.memory import MemoryStore
from engine.stores.sql import SqlStore

AT = datetime(2026, 1, 5, 9, 30, 0, 123456, tzinfo=UTC)


def event(n: int, user: str = "u1") -> Event:
    return Event("cart.abandoned", user, AT + timedelta(seconds=n), {"cart": n, "items": ["a", "é"]}, f"e{n}")


def queue(store: Store, *events: Event) -> None:
    with store.transaction() as tx:
        tx.queue_events(list(events))


def claim(store: Store, limit: int = 100) -> list[Event]:
    with store.transaction() as tx:
        return list(tx.claim_queued(limit))


def test_queued_events_come_out_oldest_first_each_once_as_they_went_in(store: Store) -> None:
    queue(store, event(1), event(2, "u2"))
    queue(store, event(3))
    shards = getattr(store, "partitioning", None)
    if shards is not None and shards.shards:  # Citus: a claim takes the oldest event's shard's events
        assert shards.of("u1") != shards.of("u2")
        assert claim(store, 2) == [event(1), event(3)]
        assert claim(store) == [event(2, "u2")]
        assert claim(store) == []
        return
    first = claim(store, 2)
    assert first == [event(1), event(2, "u2")]  # type, user, time to the microsecond, properties, id
    assert first[0].timestamp.tzinfo is not None
    assert claim(store) == [event(3)]
    assert claim(store) == []


def test_an_event_without_an_id_is_queued_too(store: Store) -> None:
    anonymous = Event("push.opened", "u1", AT, {}, None)
    queue(store, anonymous)
    assert claim(store) == [anonymous]


def test_a_claim_that_fails_leaves_the_events_queued(store: Store) -> None:
    queue(store, event(1), event(2))
    with pytest.raises(RuntimeError), store.transaction() as tx:
        assert len(tx.claim_queued(10)) == 2
        raise RuntimeError("processing failed")
    assert claim(store) == [event(1), event(2)]


def test_a_set_aside_event_keeps_its_error_and_is_not_claimed_again(store: Store) -> None:
    queue(store, event(1), event(2))
    with store.transaction() as tx:
        assert tx.quarantine_queued("JourneyNotFoundError: journey 'w1' version 3 is not loaded")
    assert claim(store) == [event(2)]
    with store.transaction() as tx:
        assert not tx.quarantine_queued("nothing left to set aside")
    if isinstance(store, MemoryStore):
        assert store.data.quarantined == [(event(1), "JourneyNotFoundError: journey 'w1' version 3 is not loaded")]
    else:
        assert isinstance(store, SqlStore)
        with store.engine.connect() as conn:
            rows = conn.execute(text("SELECT event_id, error FROM inbox")).all()
        assert [tuple(r) for r in rows] == [("e1", "JourneyNotFoundError: journey 'w1' version 3 is not loaded")]
        assert store.queued_count() == 0


def test_on_postgresql_each_worker_takes_only_the_events_of_the_partitions_it_owns(postgres_fresh_db_url: str) -> None:
    """Two workers on one database share the partitions after two heartbeats each; each takes
    from the inbox only its own users' events (so a user's events are applied by one worker, in
    order), even while the other holds a batch uncommitted; together they take every event."""
    first, second = SqlStore(postgres_fresh_db_url), SqlStore(postgres_fresh_db_url)
    try:
        assert first.partitions is not None and second.partitions is not None
        first.partitions.worker, second.partitions.worker = "worker-a", "worker-b"
        ttl = timedelta(seconds=10)
        assert len(first.partitions.heartbeat(ttl, lambda lease: {}).owned) == 256  # alone: every partition
        joined = second.partitions.heartbeat(ttl, lambda lease: {})
        assert joined.owned == frozenset() and joined.workers == 2  # the first still holds them all
        assert first.partitions.heartbeat(ttl, lambda lease: {}).surplus == 128  # told its share is smaller
        assert len(first.partitions.give_up(128)) == 128
        owned_b = second.partitions.heartbeat(ttl, lambda lease: {}).owned
        assert len(owned_b) == 128
        users = [f"user-{n}" for n in range(40)]
        queue(first, *(event(n, user) for n, user in enumerate(users)))
        with first.transaction() as tx:
            taken_a = list(tx.claim_queued(100))
            taken_b = claim(second)
        assert {partition_of(e.user_id) for e in taken_b} <= owned_b
        assert not {partition_of(e.user_id) for e in taken_a} & owned_b
        assert sorted(e.id for e in taken_a + taken_b) == sorted(f"e{n}" for n in range(40))
        assert taken_a and taken_b
    finally:
        first.close()
        second.close()


def test_sqlite_inbox_rows_are_appended_in_order(tmp_path: Path) -> None:
    """seq is SQLite's rowid: a new row always sorts after every row still queued."""
    store = SqlStore(f"sqlite:///{tmp_path}/journey.db")
    try:
        queue(store, *(event(n) for n in range(5)))
        assert [e.id for e in claim(store, 3)] == ["e0", "e1", "e2"]
        queue(store, event(9))
        assert [e.id for e in claim(store)] == ["e3", "e4", "e9"]
    finally:
        store.close()


def test_the_bench_learns_whose_events_still_wait_and_a_processed_or_set_aside_one_does_not(sql_store: Any) -> None:
    """`journey bench --workers K` asks which of its users' carts still wait: once taken out (or
    set aside with an error), a user's events no longer wait, whatever order they were taken in."""
    queue(sql_store, event(1, "u1"), event(2, "u2"), event(3, "u3"))
    assert sql_store.waiting_of(["u1", "u2", "u3", "u9"]) == {"u1", "u2", "u3"}
    taken = claim(sql_store, 1)
    assert sql_store.waiting_of(["u1", "u2", "u3"]) == {"u1", "u2", "u3"} - {e.user_id for e in taken}
    with sql_store.transaction() as tx:
        assert tx.quarantine_queued("a broken event")
    assert len(sql_store.waiting_of(["u1", "u2", "u3"])) == 1
    assert sql_store.waiting_of([]) == set()
