"""Production ids sort in creation order (so SQL inserts append) and never collide between workers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from engine.clock import VirtualClock, ordered_ids


def test_ids_sort_in_the_order_they_were_made_even_past_a_counter_digit() -> None:
    new_id = ordered_ids(VirtualClock(datetime(2026, 1, 5, tzinfo=UTC)))
    ids = [new_id() for _ in range(5000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == 5000


def test_two_workers_started_at_the_same_instant_make_different_ids() -> None:
    clock = VirtualClock(datetime(2026, 1, 5, tzinfo=UTC))
    first, second = ordered_ids(clock), ordered_ids(clock)
    assert {first() for _ in range(100)}.isdisjoint({second() for _ in range(100)})


def test_a_worker_started_later_sorts_after_an_earlier_one() -> None:
    clock = VirtualClock(datetime(2026, 1, 5, tzinfo=UTC))
    earlier = ordered_ids(clock)
    before = [earlier() for _ in range(10)]
    clock.advance_to(clock.now() + timedelta(milliseconds=1))
    later = ordered_ids(clock)
    assert later() > max(before)
