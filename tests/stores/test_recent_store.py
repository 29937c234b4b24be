"""The `Recent` port (engine/ports.py) on every backend: each user's marks (events a `wait_for`
look-back may take, passes of throttles) seen by the transaction that adds them and by later ones,
gone with a rollback or an erasure, and deleted from the SQL table once they expire."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import cast

import pytest
from sqlalchemy import create_engine, text

from engine.ports import HostStore, Store
from engine.state import EVENT_MARK, PASS_MARK, Digest, Instance, Mark, Outcome
from engine.stores.sql import SqlStore
from engine.stores.sql.recent import PRUNE_AT_LEAST
from tests.stores.test_store_contract import commit, instance, read

T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
PAID = {"id": "e9", "type": "order.paid", "user_id": "u1", "timestamp": "2026-01-05T10:00:00Z",
        "properties": {"order": "A-1", "total": 19.5}}


def mark(user_id: str = "u1", kind: str = EVENT_MARK, name: str = "order.paid", minutes: float = 0,
         keep: timedelta = timedelta(hours=1)) -> Mark:
    at = T0 + timedelta(minutes=minutes)
    return Mark(user_id, kind, name, at, at + keep, PAID if kind == EVENT_MARK else None)


def names(store: Store, user_id: str, kind: str, since: datetime) -> list[tuple[str, datetime]]:
    return read(store, lambda tx: [(m.name, m.at) for m in tx.recent.marks(user_id, kind, since)])


def test_marks_are_seen_in_their_transaction_and_after_it(store: Store) -> None:
    with store.transaction() as tx:
        tx.recent.prefetch({"u1", "u2"}, T0)
        tx.recent.add(mark(minutes=5))
        tx.recent.add(mark(kind=PASS_MARK, name='["j","s",null]', minutes=6, keep=timedelta(days=1)))
        tx.recent.add(mark("u2", minutes=7))
        assert [(m.name, m.data) for m in tx.recent.marks("u1", EVENT_MARK, T0)] == [("order.paid", PAID)]
    assert names(store, "u1", EVENT_MARK, T0) == [("order.paid", T0 + timedelta(minutes=5))]
    assert names(store, "u1", PASS_MARK, T0) == [('["j","s",null]', T0 + timedelta(minutes=6))]
    assert names(store, "u2", EVENT_MARK, T0) == [("order.paid", T0 + timedelta(minutes=7))]
    assert names(store, "u1", EVENT_MARK, T0 + timedelta(minutes=6)) == []  # made before `since`
    event = read(store, lambda tx: tx.recent.marks("u1", EVENT_MARK, T0)[0])
    assert event.data == PAID and event.at.tzinfo is not None and event.until == event.at + timedelta(hours=1)


def test_a_rolled_back_transaction_keeps_no_mark(store: Store) -> None:
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.recent.add(mark())
        raise RuntimeError("boom")
    assert names(store, "u1", EVENT_MARK, T0 - timedelta(days=1)) == []


def test_an_erasure_forgets_the_users_marks(store: Store) -> None:
    commit(store, Outcome(instance()))
    with store.transaction() as tx:
        tx.recent.add(mark())
        tx.recent.add(mark("u2"))
    assert cast(HostStore, store).privacy.erase_user("u1", T0, lambda tx: None) is not None
    assert names(store, "u1", EVENT_MARK, T0 - timedelta(days=1)) == []
    assert names(store, "u2", EVENT_MARK, T0 - timedelta(days=1)) == [("order.paid", T0)]


def test_an_open_digest_survives_a_restart_with_its_events(reopen: Callable[[], Store]) -> None:
    """The instance keeps what its digest collected: a new store on the same database reads it back."""
    first, second = ({**PAID, "id": "e1"}, {**PAID, "id": "e2", "properties": {"order": "A-1", "total": 5}})
    digest = Digest.open("gather", None, first, T0).add(second)
    waiting = Instance(instance_id="i1", journey_id="updates", version="v1", user_id="u1", key=None, entered_at=T0,
                       event=first, step="gather", path=("gather",), digest=digest)
    commit(reopen(), Outcome(waiting))
    again = read(reopen(), lambda tx: tx.get_instance("i1"))
    assert again is not None and again.digest == digest
    assert again.digest.context()["count"] == 2 and again.digest.context()["last"]["id"] == "e2"


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_expired_marks_are_deleted_as_new_ones_are_written(backend: str, request: pytest.FixtureRequest,
                                                           tmp_path: object) -> None:
    """Kept for their look-back and no longer: once 2 hours have passed, writing one new mark deletes
    every expired row (up to PRUNE_AT_LEAST a write), oldest first."""
    url = f"sqlite:///{tmp_path}/journey.db" if backend == "sqlite" else str(request.getfixturevalue(
        "postgres_fresh_db_url"))
    store = SqlStore(url)
    try:
        with store.transaction() as tx:
            for n in range(PRUNE_AT_LEAST + 20):
                tx.recent.add(mark(f"u{n}", minutes=n / 100))
        assert _rows(url) == PRUNE_AT_LEAST + 20
        with store.transaction() as tx:
            tx.recent.add(mark("late", minutes=120))
        assert _rows(url) == 20 + 1  # the oldest PRUNE_AT_LEAST went; one write deletes at most that many
        with store.transaction() as tx:
            tx.recent.add(mark("later", minutes=121))
        assert _rows(url) == 2
        assert names(store, "u3", EVENT_MARK, T0 - timedelta(days=1)) == []
    finally:
        store.close()


def _rows(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM recent")).scalar_one())
    finally:
        engine.dispose()
