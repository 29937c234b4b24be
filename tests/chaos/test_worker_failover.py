"""Two `journey serve` workers on one PostgreSQL database split its users by partition; one is
killed with -9 while 2,000 users wait on 5-second timers, half of them its own. Its leases run
out (10 s by default) and the survivor takes its partitions: within 20 s it owns all 256, and
fires the dead worker's timers as well as its own: every user gets exactly one message.

A third worker joining later shows the other direction: the partitions are shared out again,
and each worker's /metrics shows every live worker's partitions and lease changes.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from tests.chaos.conftest import MessageRows, load_profiles, user_ids
from tests.server.conftest import (
    ServerProcess,
    StartServer,
    metric,
    post_events,
    wait_for_sweeps,
    wait_until,
)

USERS = 2_000
PARTITIONS = 256

WAIT_THEN_PUSH = """\
id: wait-then-push
category: transactional
trigger: {event: go}
re_entry: never
steps:
  - {id: pause, type: wait, duration: 5s}
  - {id: hello, type: send, message: hello, channels: [push]}
messages:
  hello:
    push: {title: "Hello", body: "After five seconds"}
"""


@pytest.fixture
def database(shared_db_url: str) -> Iterator[Engine]:
    engine = create_engine(shared_db_url)
    yield engine
    engine.dispose()


def owners(db: Engine) -> Counter[str]:
    """Live leases per worker."""
    with db.connect() as conn:
        rows = conn.execute(text("SELECT owner FROM partition_leases WHERE owner IS NOT NULL AND expires_at > now()"))
        return Counter(str(r[0]) for r in rows)


def partition_count(db: Engine) -> int:
    with db.connect() as conn:
        return int(conn.execute(text("SELECT value FROM meta WHERE key = 'partitions'")).scalar_one())


def waiting_timers(db: Engine) -> int:
    with db.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM timers")).scalar_one())


def post_all(server: ServerProcess, users: list[str]) -> None:
    for start in range(0, len(users), 200):
        batch = [{"id": f"go-{u}", "type": "go", "user_id": u} for u in users[start:start + 200]]
        reply = post_events(server, {"events": batch})
        assert reply.status_code == 202, reply.text


def test_kill_9_of_one_worker_hands_its_partitions_and_timers_to_the_survivor(
        shared_db_url: str, database: Engine, start_server: StartServer, journeys_dir: Path,
        message_rows: Callable[[str], MessageRows]) -> None:
    # on Citus (three servers on this machine's two cores) entering 2,000 users takes longer than 5 s
    wait = "5s" if "citus_" not in shared_db_url else "20s"
    (journeys_dir / "wait-then-push.yaml").write_text(WAIT_THEN_PUSH.replace("5s", wait), encoding="utf-8")
    users = user_ids(USERS, "f")
    load_profiles(shared_db_url, users)
    first = start_server(db=shared_db_url, name="worker-1")
    second = start_server(db=shared_db_url, name="worker-2")
    partitions = partition_count(database)  # 256; on Citus the 32 shards
    shared = wait_until(lambda: (lambda c: c if sorted(c.values()) == [partitions // 2] * 2 else None)(
        owners(database)), timeout=15, what="two workers with half the partitions each")
    post_all(first, users[: USERS // 2])
    post_all(second, users[USERS // 2:])
    wait_until(lambda: waiting_timers(database) == USERS, timeout=40, what="every user waiting on a timer")
    rows = message_rows(shared_db_url)
    assert rows() == []  # nobody messaged yet: the timers are 5 s long

    killed_at = time.monotonic()
    second.process.kill()
    second.process.wait(10)
    survivor = wait_until(lambda: (lambda c: c if list(c.values()) == [partitions] else None)(owners(database)),
                          timeout=20, interval=0.2, what="the survivor owning every partition")
    took = time.monotonic() - killed_at
    assert took < 20 and set(survivor) < set(shared), (took, survivor, shared)

    wait_until(lambda: len(rows()) >= USERS, timeout=30, interval=0.5, what="a message for every user")
    wait_for_sweeps("timers", "outbox", on=[first], timeout=30)  # anything sent twice would show by now
    per_user = Counter(r["user_id"] for r in rows())
    assert len(per_user) == USERS and set(per_user.values()) == {1}, per_user.most_common(3)
    assert waiting_timers(database) == 0
    wait_until(lambda: metric(first, "journey_worker_partitions", worker=next(iter(survivor))) == partitions
               and metric(first, "journey_workers_live") == 1, timeout=30,
               what="/metrics reporting the survivor alone, owning every partition (as of its heartbeat)")


@pytest.mark.parametrize("shared_db_url", ["postgresql"], indirect=True)
def test_a_worker_that_joins_gets_its_share_and_every_worker_reports_all(
        shared_db_url: str, database: Engine, start_server: StartServer, journeys_dir: Path) -> None:
    (journeys_dir / "wait-then-push.yaml").write_text(WAIT_THEN_PUSH, encoding="utf-8")
    first = start_server(db=shared_db_url, name="worker-1")
    wait_until(lambda: sum(owners(database).values()) == PARTITIONS, timeout=10, what="the first owning all")
    start_server(db=shared_db_url, name="worker-2")
    start_server(db=shared_db_url, name="worker-3")
    shares = wait_until(lambda: (lambda c: c if sorted(c.values()) == [85, 85, 86] else None)(owners(database)),
                        timeout=60, what="three even shares")

    def reported() -> bool:  # each worker's figures are as of its last heartbeat (every 2 s): wait for them
        return metric(first, "journey_workers_live") == 3 and all(
            metric(first, "journey_worker_partitions", worker=worker) == owned for worker, owned in shares.items())

    wait_until(reported, timeout=30, what="the first worker's /metrics showing every worker's share")
    assert (metric(first, "journey_worker_lease_changes_total", worker=max(shares, key=lambda w: shares[w])) or 0) > 0
