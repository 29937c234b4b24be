"""Regression benchmarks for the hot paths: ingest into the SQLite store, a timer sweep, one
channel decision. Run: python -m pytest benchmarks --benchmark-enable"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from channels import load_policy, select
from engine.bench.workload import cart_event, w1_journey, w1_profile
from engine.clock import VirtualClock
from engine.service import Engine
from engine.stores.sql import SqlStore
from tests.channels.bench_selection import auto_request, build_request

USERS = 5000
START = datetime(2026, 1, 5, 12, tzinfo=UTC)


@pytest.fixture
def loaded(tmp_path: Path) -> Iterator[tuple[Engine, VirtualClock]]:
    store = SqlStore(f"sqlite:///{tmp_path}/bench.db")
    with store.transaction() as tx:
        for n in range(USERS):
            tx.put_profile(w1_profile(n))
    clock = VirtualClock(START)
    yield Engine([w1_journey(timedelta(seconds=2))], load_policy(), store, clock, trace=False), clock
    store.close()


def _ingest(engine: Engine) -> None:
    for start in range(0, USERS, 500):
        engine.process_many([cart_event(n, START, "u") for n in range(start, start + 500)])


def test_ingest_sqlite(benchmark: BenchmarkFixture, loaded: tuple[Engine, VirtualClock]) -> None:
    engine, _ = loaded
    benchmark.pedantic(_ingest, args=(engine,), rounds=1, iterations=1)
    assert engine.store.next_due() == START + timedelta(seconds=2)


def test_accept_sqlite(benchmark: BenchmarkFixture, loaded: tuple[Engine, VirtualClock]) -> None:
    """The inbox: events made durable (and de-duplicated), not yet processed."""
    engine, _ = loaded

    def accept() -> None:
        for start in range(0, USERS, 1000):
            engine.accept_many([cart_event(n, START, "u") for n in range(start, start + 1000)])

    benchmark.pedantic(accept, rounds=1, iterations=1)
    assert engine.store.next_due() is None  # nothing processed yet


def test_process_queued_sqlite(benchmark: BenchmarkFixture, loaded: tuple[Engine, VirtualClock]) -> None:
    """The same events taken out of the inbox and through the journey, 1,000 per transaction."""
    engine, _ = loaded
    for start in range(0, USERS, 1000):
        engine.accept_many([cart_event(n, START, "u") for n in range(start, start + 1000)])

    def process() -> int:
        done = 0
        while (batch := len(engine.process_queued(1000))):
            done += batch
        return done

    assert benchmark.pedantic(process, rounds=1, iterations=1) == USERS
    assert engine.store.next_due() == START + timedelta(seconds=2)


def test_timer_sweep_sqlite(benchmark: BenchmarkFixture, loaded: tuple[Engine, VirtualClock]) -> None:
    engine, clock = loaded
    _ingest(engine)
    clock.advance_to(START + timedelta(seconds=3))

    def sweep() -> int:
        fired = 0
        while (batch := engine.fire_due(1000)):
            fired += batch
        return fired

    assert benchmark.pedantic(sweep, rounds=1, iterations=1) == USERS


def test_channel_decision(benchmark: BenchmarkFixture) -> None:
    policy, request = load_policy(), build_request()
    selection = benchmark(select, request, policy)
    assert len(selection.decisions) == 6


def test_channel_decision_auto(benchmark: BenchmarkFixture) -> None:
    """strategy auto for a person with history on every candidate: reach, cost and score for each,
    the order and its one-line reason."""
    policy, request = load_policy(), auto_request()
    selection = benchmark(select, request, policy)
    assert selection.choice is not None and len(selection.choice.order) == 5
