"""The inbox of accepted events, on every store: oldest first, each event once, a failed
claim leaves them queued, a set-aside event keeps its error; on PostgreSQL one worker at a
time takes from it, so events keep their order across workers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from engine.events import Event
from engine.ports import Store
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
        assert store.quarantined == [(event(1), "JourneyNotFoundError: journey 'w1' version 3 is not loaded")]
    else:
        assert isinstance(store, SqlStore)
        with store.engine.connect() as conn:
            rows = conn.execute(text("SELECT event_id, error FROM inbox")).all()
        assert [tuple(r) for r in rows] == [("e1", "JourneyNotFoundError: journey 'w1' version 3 is not loaded")]
        assert store.queued_count() == 0


def test_on_postgresql_one_worker_at_a_time_takes_from_the_inbox(postgres_fresh_db_url: str) -> None:
    """Two workers on one database: while the first holds a batch (uncommitted), the second gets
    nothing rather than the events behind it, which could belong to the same users."""
    first, second = SqlStore(postgres_fresh_db_url), SqlStore(postgres_fresh_db_url)
    try:
        queue(first, event(1), event(2))
        with first.transaction() as tx:
            assert tx.claim_queued(1) == [event(1)]
            assert claim(second) == []
        assert claim(second) == [event(2)]
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
