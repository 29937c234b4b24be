"""`ShardedServer`: users split over worker processes, each a whole Server on its own SQLite
file. Real processes, real files: every user's state is in its own shard and only there."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from engine.bench.runner import bench_policy
from engine.bench.workload import cart_event, open_event, w1_profile, w1_yaml
from engine.clock import SystemClock
from engine.errors import ShardError
from engine.host.shards import ShardedServer, WorkerSpec, shard_of, shard_url
from engine.stores.sql import SqlStore
from tests.server.conftest import wait_until

USERS = 20


def test_users_are_spread_over_the_shards_the_same_way_every_time() -> None:
    shards = [shard_of(f"u{n}", 2) for n in range(100)]
    assert shards == [shard_of(f"u{n}", 2) for n in range(100)]
    assert 30 <= shards.count(0) <= 70
    assert shard_url("sqlite:////data/journey.db", 1, 4) == "sqlite:////data/journey.2-of-4.db"
    with pytest.raises(ShardError, match="need SQLite files"):
        shard_url("postgresql+psycopg://localhost/journey", 0, 2)


@pytest.fixture
def sharded(tmp_path: Path) -> Iterator[ShardedServer]:
    url = f"sqlite:///{tmp_path}/journey.db"
    for k in range(2):
        store = SqlStore(shard_url(url, k, 2))
        with store.transaction() as tx:
            for n in range(USERS):
                if shard_of(f"u{n}", 2) == k:
                    tx.put_profile(w1_profile(n))
        store.close()
    spec = WorkerSpec(url, (("w1.yaml", w1_yaml(timedelta(minutes=5))),), bench_policy(),
                      str(tmp_path / "outbox.jsonl"), timer_interval=0.25)
    server = ShardedServer(spec, 2)
    yield server
    server.stop()


def statuses(server: ShardedServer, k: int, user_id: str) -> list[str]:
    store = SqlStore(server.urls[k])
    try:
        return [i.status for i in store.instances_for_user(user_id)]
    finally:
        store.close()


def test_each_users_events_run_in_their_own_shard_only(sharded: ShardedServer) -> None:
    now = sharded_now()
    results = sharded.accept([cart_event(n, now) for n in range(USERS)] + [cart_event(3, now)])
    assert [r.duplicate for r in results] == [False] * USERS + [True]
    assert [r.event.user_id for r in results][:3] == ["u0", "u1", "u2"]  # the caller's order, not the shards'

    def everyone_entered() -> bool:
        return all(statuses(sharded, shard_of(f"u{n}", 2), f"u{n}") == ["active"] for n in range(USERS))

    wait_until(everyone_entered, timeout=10, what="every user's cart processed in their shard")
    for n in range(USERS):
        assert statuses(sharded, 1 - shard_of(f"u{n}", 2), f"u{n}") == [], f"u{n} has state in the other shard"
    done = sharded.ingest([open_event(0, sharded_now())])  # processed when it returns
    assert not done[0].duplicate and statuses(sharded, shard_of("u0", 2), "u0") == ["completed"]
    counters = sharded.counters()
    assert sum(c["accepted"] for c in counters) == USERS + 1 and sum(c["duplicates"] for c in counters) == 1
    assert all(c["accepted"] for c in counters), "one worker got no users"
    processes = sharded.processes
    sharded.stop()
    assert not any(p.is_alive() for p in processes)


def test_a_worker_that_cannot_start_says_why(tmp_path: Path) -> None:
    spec = WorkerSpec(f"sqlite:///{tmp_path}/journey.db", (("broken.yaml", "id: broken\nsteps: []\n"),),
                      bench_policy(), str(tmp_path / "outbox.jsonl"))
    started = time.monotonic()
    with pytest.raises(ShardError, match=r"worker 1 of 2: .*broken\.yaml"):
        ShardedServer(spec, 2)
    assert time.monotonic() - started < 60


def sharded_now() -> datetime:
    return SystemClock().now()
