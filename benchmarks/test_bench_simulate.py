"""Dry-run speed on the W1 workload (docs/cli.md): issue target 100,000 users in under 10 s.

Run: python -m pytest benchmarks --benchmark-enable   (JOURNEY_BENCH_USERS to change N)
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

from pytest_benchmark.fixture import BenchmarkFixture

from channels import load_policy
from engine.bench.workload import check_w1, w1_events, w1_journey, w1_profile
from engine.simulator import simulate

USERS = int(os.environ.get("JOURNEY_BENCH_USERS", "100000"))


def test_simulate_w1(benchmark: BenchmarkFixture) -> None:
    journey = w1_journey(timedelta(seconds=2))
    events = list(w1_events(USERS, datetime(2026, 1, 5, 12, tzinfo=UTC)))
    profiles = [w1_profile(n) for n in range(USERS)]
    result = benchmark.pedantic(simulate, args=(journey, events, profiles, load_policy()),
                                kwargs={"keep_trace": False}, rounds=1, iterations=1)
    assert check_w1(USERS, [(m["user_id"], m["channel"]) for m in result["messages"]]) == []
