"""`Server.accept`: accepted events are durable when it returns, processed moments later by
the inbox sweep in the order accepted, kept across a restart, and never lost when one of
them cannot be processed. The W1 journey on a memory store and on a SQLite file, the sweeps
run by the test on a virtual clock; real threads (and APScheduler) only where the point is
what threads do."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from channels.providers import FileProvider
from engine.bench.runner import bench_policy
from engine.bench.workload import cart_event, open_event, w1_journey, w1_profile
from engine.clock import Clock, SystemClock, VirtualClock
from engine.compiler import CompiledJourney
from engine.events import Event
from engine.host.server import Server
from engine.ports import HostStore
from engine.stores.memory import MemoryStore
from engine.stores.sql import SqlStore
from tests.server.conftest import wait_until

WAIT = timedelta(minutes=5)  # the SMS never comes within a test: what matters is what the event did
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@pytest.fixture(params=["memory", "sqlite"])
def store_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest.fixture
def make_server(tmp_path: Path, store_kind: str) -> Iterator[Any]:
    """Servers on one store (a second call is a restart: the same MemoryStore, or the same SQLite
    file), on a virtual clock unless given one; profiles u0 to u2."""
    servers: list[Server] = []
    memory = MemoryStore()

    def make(journey: CompiledJourney | None = None, clock: Clock | None = None) -> Server:
        store: HostStore = memory if store_kind == "memory" else SqlStore(f"sqlite:///{tmp_path}/journey.db")
        with store.transaction() as tx:
            for n in range(3):
                tx.put_profile(w1_profile(n))
        server = Server(store, [journey or w1_journey(WAIT)], bench_policy(),
                        {"*": [FileProvider(tmp_path / "outbox.jsonl")]}, clock=clock or VirtualClock(T0))
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


def status(server: Server, user_id: str) -> list[str]:
    return [i.status for i in server.store.views.instances_for_user(user_id)]


def channels(server: Server, user_id: str) -> list[str]:
    return [m["channel"] for m in server.store.views.messages_for_user(user_id)]


def queued(server: Server) -> int:
    """Accepted events waiting in the inbox (not those set aside)."""
    return sum(server.store.queued_users().values())


def now_event(server: Server, maker: Any, n: int) -> Event:
    event: Event = maker(n, server.clock.now())
    return event


def test_accepted_events_are_processed_by_the_sweep_in_the_order_accepted(make_server: Any) -> None:
    server = make_server()
    results = server.accept([now_event(server, cart_event, 0), now_event(server, open_event, 0),
                             now_event(server, cart_event, 1), now_event(server, cart_event, 1)])
    assert [r.duplicate for r in results] == [False, False, False, True]
    assert status(server, "u0") == status(server, "u1") == [], "processed before the sweep"
    assert server.backlog.queued == 3 and server.backlog.dequeued == 0
    assert server.sweep_inbox() == 3
    # the open came after the cart, so it ended u0's wait; u1 is still waiting for one
    assert status(server, "u0") == ["completed"] and status(server, "u1") == ["active"]
    assert channels(server, "u0") == ["push"] and channels(server, "u1") == ["push"]
    assert server.counters.accepted == 3 and server.counters.duplicates == 1
    assert server.backlog.dequeued == server.backlog.queued == 3
    assert server.sweep_inbox() == 0
    again = server.accept([now_event(server, cart_event, 1)])
    assert again[0].duplicate, "an id accepted before is a duplicate, as with ingest"
    assert server.ingest([now_event(server, cart_event, 1)])[0].duplicate


def test_ingest_processes_events_accepted_before_it_first(make_server: Any) -> None:
    """No sweep runs: the only way the cart is processed before the open is ingest draining
    the inbox first. Otherwise the open would find no instance and the cart would start a wait."""
    server = make_server()
    server.accept([now_event(server, cart_event, 0)])
    assert status(server, "u0") == []
    server.ingest([now_event(server, open_event, 0)])
    assert status(server, "u0") == ["completed"] and channels(server, "u0") == ["push"]


def test_accepted_events_survive_a_restart_before_they_are_processed(make_server: Any) -> None:
    first = make_server()
    first.accept([now_event(first, cart_event, n) for n in range(3)])
    first.stop()  # never swept: nothing was processed
    second = make_server()
    assert queued(second) == 3
    second.resume()  # what start() does before its sweeps
    assert second.backlog.queued == 3 and second.backlog.any_of(["u0", "u1", "u2"])
    assert second.run_due() >= 3
    assert all(status(second, f"u{n}") == ["active"] for n in range(3))
    assert second.backlog.queued == second.backlog.dequeued == 3
    assert queued(second) == 0


def test_an_event_that_cannot_be_processed_is_set_aside_and_the_rest_go_on(make_server: Any, store_kind: str,
                                                                            caplog: pytest.LogCaptureFixture,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Processing u0's open fails outside any journey (a fault injected into the engine's
    feedback step: a bug, not a journey's error). It stays in the inbox with the reason; u1's
    cart, accepted in the same batch after it, is processed."""
    server = make_server()
    server.ingest([now_event(server, cart_event, 0)])
    feedback = server.engine.feedback.pin

    def broken(tx: Any, event: Event, now: datetime) -> Event:
        if event.user_id == "u0":
            raise RuntimeError("disk on fire")
        return feedback(tx, event, now)

    monkeypatch.setattr(server.engine.feedback, "pin", broken)
    server.accept([now_event(server, open_event, 0), now_event(server, cart_event, 1)])
    assert server.sweep_inbox() == 2
    assert status(server, "u1") == ["active"] and channels(server, "u1") == ["push"]
    assert server.counters.failed == 1 and queued(server) == 0
    if store_kind == "memory":
        kept = [(e.user_id, e.type, error) for e, error in server.store.data.quarantined]
    else:
        with server.store.engine.connect() as conn:
            kept = [tuple(row) for row in conn.execute(text("SELECT user_id, type, error FROM inbox"))]
    assert kept == [("u0", "push.opened", "RuntimeError: disk on fire")]
    assert "stays in the inbox" in caplog.text


def test_after_a_restart_on_a_changed_journey_an_instance_goes_on_on_its_version(make_server: Any) -> None:
    """u0 entered version 1; the server restarts with only version 2 loaded: u0's queued open is
    processed on version 1, compiled from the store (nothing set aside, nothing failed)."""
    first = make_server()
    first.ingest([now_event(first, cart_event, 0)])
    first.stop()
    second = make_server(w1_journey(WAIT + timedelta(minutes=1)))
    second.accept([now_event(second, open_event, 0), now_event(second, cart_event, 1)])
    assert second.sweep_inbox() == 2
    assert status(second, "u0") == ["completed"] and channels(second, "u0") == ["push"]
    assert status(second, "u1") == ["active"]
    assert second.counters.failed == 0 and not second.counters.instance_failures
    versions = {i.user_id: i.version for u in ("u0", "u1") for i in second.store.views.instances_for_user(u)}
    assert versions["u0"] != versions["u1"]


def test_accept_is_not_held_up_by_the_engine_lock(make_server: Any) -> None:
    """A host thread holding the engine (a long batch) does not stop events being accepted."""
    server = make_server()
    accepted = threading.Event()
    with server.lock:
        worker = threading.Thread(target=lambda: (server.accept([now_event(server, cart_event, 2)]),
                                                  accepted.set()), daemon=True)
        worker.start()
        assert accepted.wait(5), "accept waited for the engine lock"
    worker.join(5)
    assert queued(server) == 1


def test_ingest_does_not_wait_for_other_users_queued_events(make_server: Any) -> None:
    server = make_server()
    server.accept([now_event(server, cart_event, 0)])
    server.ingest([now_event(server, cart_event, 1)])
    assert status(server, "u1") == ["active"]
    assert status(server, "u0") == [], "u0's queued cart was processed although u1's batch did not need it"
    assert queued(server) == 1


def test_a_full_inbox_makes_accept_wait_for_the_engine(make_server: Any) -> None:
    """Room for two events: a third waits until the engine (held here) has taken some out.
    Real time and the real sweeps: accept only waits for room on a started server."""
    server = make_server(clock=SystemClock())
    server.backlog.floor, server.backlog.delay = 2, 0.0
    server.start()
    done = threading.Event()
    with server.lock:
        server.accept([now_event(server, cart_event, 0), now_event(server, cart_event, 1)])
        worker = threading.Thread(target=lambda: (server.accept([now_event(server, cart_event, 2)]), done.set()),
                                  daemon=True)
        worker.start()
        wait_until(lambda: server.backlog.waiting == 1, timeout=30, interval=0.01, what="accept to wait for room")
        assert not done.is_set(), "accept went past a full inbox"
        assert queued(server) == 2
    assert done.wait(5), "accept did not go on once the engine caught up"
    wait_until(lambda: all(status(server, f"u{n}") == ["active"] for n in range(3)), timeout=30, interval=0.01,
               what="all three carts processed")
    assert server.backlog.waiting == 0


def test_a_timer_sweep_first_processes_queued_events_of_the_users_it_would_fire_for(make_server: Any) -> None:
    """u0 opened the push (the open is still in the inbox) before the 5-minute wait ran out:
    the sweep processes the open first, so no SMS. u1 did not open: the SMS goes out."""
    clock = VirtualClock(T0)
    server = make_server(clock=clock)
    server.ingest([now_event(server, cart_event, 0), now_event(server, cart_event, 1)])
    clock.advance_to(clock.now() + timedelta(minutes=1))
    server.accept([now_event(server, open_event, 0)])
    clock.advance_to(clock.now() + WAIT)
    assert server.sweep_timers() == 1
    assert channels(server, "u0") == ["push"] and status(server, "u0") == ["completed"]
    assert sorted(channels(server, "u1")) == ["push", "sms"]
    assert queued(server) == 0


class _Ticking(VirtualClock):
    """A virtual clock on which every read takes `step`: time passes while the host works."""

    def __init__(self, start: datetime, step: timedelta) -> None:
        super().__init__(start)
        self.step = step

    def now(self) -> datetime:
        read = super().now()
        self.advance_to(read + self.step)
        return read


def test_a_timer_that_comes_due_while_the_sweep_looks_ahead_waits_for_its_users_queued_events(
        make_server: Any) -> None:
    """u0's timer is due; u1's comes due a second later, while the sweep is at work, and u1's
    open waits in the inbox. The sweep fires the timers due when it looked for queued events,
    never one that came due after: u1's open is processed before u1's timer, so no SMS."""
    clock = VirtualClock(T0)
    server = make_server(clock=clock)
    server.ingest([now_event(server, cart_event, 0)])
    clock.advance_to(T0 + timedelta(seconds=1))
    server.ingest([now_event(server, cart_event, 1)])
    server.accept([now_event(server, open_event, 1)])
    server.clock = server.engine.clock = _Ticking(T0 + WAIT, timedelta(seconds=2))
    while server.sweep_timers():
        pass
    assert sorted(channels(server, "u0")) == ["push", "sms"]
    assert channels(server, "u1") == ["push"] and status(server, "u1") == ["completed"]
