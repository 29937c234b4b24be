"""Production ids sort in creation order (so SQL inserts append) and never collide between workers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from freezegun import freeze_time

from engine.clock import SystemClock, VirtualClock, ordered_ids


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


def test_the_servers_wall_clock_is_aware_utc_and_a_server_restarted_later_makes_later_ids() -> None:
    """`SystemClock` is the one reader of the wall clock: frozen here (freezegun), as every test
    that meets it must, so what it reads is known."""
    with freeze_time("2026-01-05 10:00:00"):
        clock = SystemClock()
        assert clock.now() == datetime(2026, 1, 5, 10, tzinfo=UTC) and clock.now().utcoffset() == timedelta(0)
        assert clock.seconds() == datetime(2026, 1, 5, 10, tzinfo=UTC).timestamp()
        first_run = ordered_ids(clock)
        before = [first_run() for _ in range(10)]
    with freeze_time("2026-01-05 10:00:01"):
        restarted = ordered_ids(SystemClock())
        assert restarted() > max(before)
