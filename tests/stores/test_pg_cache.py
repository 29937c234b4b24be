"""The PostgreSQL store keeps each user's state in memory between transactions, as SQLite's does,
but other workers write the same database: these prove a worker never acts on a state another
worker (or another path of its own) has changed since it was read. Two `SqlStore`s on one real
PostgreSQL database are two workers; each test fails if the cached state were trusted."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from channels import ConsentRecord, load_policy
from engine.bench.workload import cart_event, open_event, w1_journey, w1_profile
from engine.clock import VirtualClock
from engine.events import Event
from engine.service import Engine
from engine.stores.sql import MESSAGES, SqlStore

START = datetime(2026, 1, 5, 12, tzinfo=UTC)
TIMEOUT = timedelta(seconds=2)


@pytest.fixture
def workers(postgres_fresh_db_url: str) -> Iterator[tuple[SqlStore, SqlStore]]:
    first, second = SqlStore(postgres_fresh_db_url), SqlStore(postgres_fresh_db_url)
    yield first, second
    first.close()
    second.close()


def _engine(store: SqlStore, clock: VirtualClock) -> Engine:
    return Engine([w1_journey(TIMEOUT)], load_policy(), store, clock)


def _second_cart() -> Event:
    return Event("cart.abandoned", "u1", START + timedelta(seconds=5), {"cart": 2}, "cart-again")


def _sent(store: SqlStore, user_id: str) -> list[str]:
    query = MESSAGES.select().with_only_columns(MESSAGES.c.channel).where(MESSAGES.c.user_id == user_id)
    with store.engine.connect() as conn:
        return sorted(r[0] for r in conn.execute(query.order_by(MESSAGES.c.at)))


def test_a_consent_withdrawn_through_another_worker_stops_the_sms(workers: tuple[SqlStore, SqlStore]) -> None:
    """Worker one enters u1 (push now, SMS after the timeout) and keeps u1's state; worker two takes
    the withdrawal of SMS consent (an API call routed to it); worker one then fires the timer and
    sends no SMS. Its dispatcher's last check reads the withdrawal too."""
    one, two = workers
    clock = VirtualClock(START)
    with one.transaction() as tx:
        tx.put_profile(w1_profile(1))
    first = _engine(one, clock)
    first.process_many([cart_event(1, START)])
    with two.transaction() as tx:
        profile = tx.get_profile("u1")
        assert profile is not None
        tx.put_profile(profile.with_consents([ConsentRecord("sms", "marketing", False, "api", START)]))
    recipient = one.outbox.recipients(["u1"])["u1"]  # what worker one's dispatcher checks last
    assert recipient.consents[-1].granted is False
    clock.advance_to(START + timedelta(seconds=3))
    while first.fire_due(10):
        pass
    assert _sent(one, "u1") == ["push"]


def test_a_handover_does_not_serve_the_old_owners_instance(workers: tuple[SqlStore, SqlStore]) -> None:
    """Worker one owns every partition and enters u1; it stops, and worker two takes over and applies
    u1's open (the instance completes); worker one comes back and owns them again: a new cart
    enters u1 again (`re_entry: always` once none is active), which the old owner's cached instance,
    still active in its memory, would refuse."""
    one, two = workers
    assert one.partitions is not None and two.partitions is not None
    one.partitions.worker, two.partitions.worker = "one", "two"
    clock = VirtualClock(START)
    first, second = _engine(one, clock), _engine(two, clock)
    one.partitions.heartbeat(timedelta(seconds=10), lambda lease: {})
    with one.transaction() as tx:
        tx.put_profile(w1_profile(1))
    first.process_many([cart_event(1, START)])
    assert one.cache is not None and "u1" in one.cache.users
    one.partitions.release({})
    assert "u1" not in one.cache.users  # a handover forgets the partitions' users
    two.partitions.heartbeat(timedelta(seconds=10), lambda lease: {})
    second.process_many([open_event(1, START + timedelta(seconds=1))])
    two.partitions.release({})
    one.partitions.heartbeat(timedelta(seconds=10), lambda lease: {})
    clock.advance_to(START + timedelta(seconds=5))
    first.process_many([_second_cart()])
    assert _sent(one, "u1") == ["push", "push"]


def test_a_stale_state_is_read_again_even_while_the_lease_is_held(workers: tuple[SqlStore, SqlStore]) -> None:
    """No lease moved (worker one still believes it owns u1, as a worker stalled past its lease
    would): worker two ends u1's instance by its open; worker one, whose memory still holds the
    instance active, enters u1 again on a new cart. The versions of the rows say the cached
    state is old, whatever the leases say."""
    one, two = workers
    clock = VirtualClock(START)
    first, second = _engine(one, clock), _engine(two, clock)
    with one.transaction() as tx:
        tx.put_profile(w1_profile(1))
    first.process_many([cart_event(1, START)])
    second.process_many([open_event(1, START + timedelta(seconds=1))])
    clock.advance_to(START + timedelta(seconds=5))
    first.process_many([_second_cart()])
    assert _sent(one, "u1") == ["push", "push"]


def test_an_erasure_by_another_worker_leaves_no_profile_to_send_to(workers: tuple[SqlStore, SqlStore]) -> None:
    """Worker one has u1's profile in memory; worker two erases u1; a new cart for u1 on worker one
    sends nothing: the person's token and phone are gone."""
    one, two = workers
    clock = VirtualClock(START)
    first = _engine(one, clock)
    with one.transaction() as tx:
        tx.put_profile(w1_profile(1))
    with one.transaction() as tx:
        tx.prefetch(["u1"], START)  # u1's state now in worker one's memory
    assert one.cache is not None and one.cache.users["u1"].profile is not None
    assert two.privacy.erase_user("u1", START, lambda tx: None) is not None
    first.process_many([cart_event(1, START)])
    assert _sent(one, "u1") == []
