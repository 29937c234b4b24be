"""Rows found by a composite key ((user, message), (user, timer)) cost work in proportion to the
rows, not to their square. Named as a list of users beside a list of ids, SQLite's planner, which
has no statistics, looked up every user with every id: a claim of 500 messages was 250,000 index
lookups. Counted here in SQLite's virtual-machine steps, which no machine's load moves."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event

from channels import load_policy
from engine.bench.workload import cart_event, w1_journey, w1_profile
from engine.clock import VirtualClock
from engine.service import Engine
from engine.state import Fence
from engine.stores.sql import SqlStore
from engine.stores.sql.claims import Owner, due_timer_users, due_timers
from engine.stores.sql.driver import Driver
from engine.stores.sql.writes import delete_timers
from tests.stores.conftest import rows_scanned

T0 = datetime(2026, 1, 5, 10, tzinfo=UTC)
LEASE = timedelta(seconds=60)
STEP = 100  # SQLite calls the handler every this many virtual-machine instructions


class Steps:
    """SQLite's virtual-machine steps on every connection of a store's pool, while counting."""

    def __init__(self, store: SqlStore) -> None:
        self.counting = False
        self.count = 0
        event.listen(store.engine, "checkout", self._watch)

    def _watch(self, dbapi: Any, *_: Any) -> None:
        dbapi.set_progress_handler(self._tick, STEP)

    def _tick(self) -> int:
        self.count += self.counting
        return 0  # go on

    def of(self, work: Callable[[], object]) -> int:
        self.counting, self.count = True, 0
        work()
        self.counting = False
        return self.count * STEP


def _w1(tmp_path: Path, users: int) -> Iterator[tuple[str, int]]:
    """W1 for `users` people on a fresh SQLite file: the steps of each phase that names many rows by
    their keys (timers fired and deleted, the pushes claimed, marked, recorded, then opened)."""
    store = SqlStore(f"sqlite:///{tmp_path}/w1-{users}.db")
    with store.transaction() as tx:
        for n in range(users):
            tx.put_profile(w1_profile(n))
    clock = VirtualClock(T0)
    engine = Engine([w1_journey(timedelta(seconds=2))], load_policy(), store, clock)
    engine.accept_many([cart_event(n, T0) for n in range(users)])
    while engine.process_queued(1000):
        pass
    steps = Steps(store)
    claimed = []
    yield "claim", steps.of(lambda: claimed.extend(store.outbox.claim_outbox(T0, users, LEASE, "a")))
    assert len(claimed) == users
    held = Fence("a", T0, T0 + LEASE, {i.message_id: i.user_id for i in claimed})
    ids = sorted(held.users)
    yield "mark sending", steps.of(lambda: store.outbox.finish_outbox([], held, sending=ids))
    sent = [{"message_id": m, "dispatch": "sent", "status": "sent", "attempts": 1, "next_attempt_at": None,
             "provider": "fcm", "provider_id": f"p-{m}", "error": None, "at": T0} for m in ids]
    yield "record", steps.of(lambda: store.outbox.finish_outbox(sent, held))

    def open_all() -> None:
        with store.transaction() as tx:
            for item in claimed:
                tx.set_message_status(item.user_id, item.message_id, "opened", T0 + timedelta(seconds=1))
    yield "feedback", steps.of(open_all)
    clock.advance_to(T0 + timedelta(seconds=3))  # the pushes' timers are due: fired, and their rows deleted
    yield "timers", steps.of(lambda: engine.fire_due(users))
    store.close()


def test_keyed_writes_and_reads_grow_with_the_rows_not_with_their_square(tmp_path: Path) -> None:
    small, large = dict(_w1(tmp_path, 200)), dict(_w1(tmp_path, 800))
    assert small.keys() == large.keys() == {"claim", "mark sending", "record", "feedback", "timers"}
    for phase, steps in small.items():
        # four times the rows: about four times the steps (before: about sixteen for the claim,
        # the feedback and the timers)
        assert large[phase] <= 6 * steps, (phase, small, large)


def test_deleting_a_sweeps_timers_reads_only_them_though_the_statistics_say_the_table_is_empty(
        postgres_fresh_db_url: str) -> None:
    """Named as a list of users beside a list of ids, a hundred timers were deleted by a scan of
    every timer whenever the statistics said the table was small (9 ms at 70,000 timers)."""
    store = SqlStore(postgres_fresh_db_url)
    with store.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE timers SET (autovacuum_enabled = off)")
        conn.exec_driver_sql("ANALYZE timers")  # empty, as far as the planner knows from now on
        conn.exec_driver_sql("INSERT INTO timers (timer_id, instance_id, due, user_id, part) SELECT 't' || n, "
                             "'i' || n, now(), 'u' || n, 0 FROM generate_series(1, 100000) AS n")
    deleting: list[tuple[str, Any]] = []
    event.listen(store.engine, "before_cursor_execute", lambda conn, cursor, sql, params, *_: deleting.append(
        (sql, params)) if sql.startswith("DELETE") else None)
    with store.engine.connect() as conn, conn.begin() as undone:
        delete_timers(Driver(conn, "postgresql"), [(f"t{n}", f"u{n}") for n in range(1, 100000, 1000)])
        assert conn.exec_driver_sql("SELECT count(*) FROM timers").scalar_one() == 99900
        (sql, params), = deleting
        (plan,) = conn.exec_driver_sql("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params).scalar_one()
        undone.rollback()
    store.close()
    assert rows_scanned(plan["Plan"], "timers") <= 300, json.dumps(plan, indent=1)


def test_a_timer_claim_reads_the_timers_it_takes_though_the_statistics_predate_the_backlog(
        postgres_fresh_db_url: str) -> None:
    """The owned partitions are a parameter whose share of the timers the planner cannot know; with
    statistics taken before a backlog of due timers built up, it read every due timer by a bitmap
    scan and sorted them for a claim of a thousand (50,000 read, 30 ms, at N = 100,000), and the
    sweep's look ahead did the same. Each now reads along the due index and stops at its limit."""
    store = SqlStore(postgres_fresh_db_url)
    with store.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE timers SET (autovacuum_enabled = off)")
        conn.exec_driver_sql("INSERT INTO partition_leases (part, owner, expires_at) SELECT p, 'w1', "
                             "now() + interval '1 hour' FROM generate_series(0, 255) AS p ON CONFLICT (part) DO UPDATE "
                             "SET owner = excluded.owner, expires_at = excluded.expires_at")
        conn.exec_driver_sql("INSERT INTO timers (timer_id, instance_id, due, user_id, part) SELECT 't' || n, "
                             "'i' || n, now() + interval '1 day', 'u' || n, n %% 256 "
                             "FROM generate_series(1, 2000) AS n")
        conn.exec_driver_sql("ANALYZE timers")  # every timer in the future, as far as the planner knows
        conn.exec_driver_sql("INSERT INTO timers (timer_id, instance_id, due, user_id, part) SELECT 'd' || n, "
                             "'j' || n, now() - interval '1 second' * n, 'v' || n, n %% 256 "
                             "FROM generate_series(1, 100000) AS n")
    read = "SELECT coalesce(idx_tup_fetch, 0) + seq_tup_read FROM pg_stat_xact_user_tables WHERE relname = 'timers'"
    with store.engine.connect() as conn, conn.begin() as undone:
        db = Driver(conn, "postgresql")
        before = conn.exec_driver_sql(read).scalar_one()
        users, _ = due_timer_users(db, Owner("w1"), T0.replace(year=2100), 1000)
        claimed = due_timers(db, Owner("w1"), T0.replace(year=2100), 1000, lock=True)
        fetched = conn.exec_driver_sql(read).scalar_one() - before
        undone.rollback()
    store.close()
    assert len(users) == 1000 and len(claimed) == 1000
    assert claimed[0][1] == "d100000"  # the earliest first
    assert fetched <= 3 * 2000, fetched
