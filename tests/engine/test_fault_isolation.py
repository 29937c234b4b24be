"""One failing instance never stops the others: an instance whose evaluation raises becomes
`failed` with the reason and the rest of its batch, sweep or request goes on; a STOP is applied
before, and apart from, any journey, so a broken journey can never swallow it."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from channels import Profile, load_policy
from engine.clock import VirtualClock
from engine.compiler import load_text
from engine.errors import EvaluationError
from engine.events import Event
from engine.ports import Store
from engine.runtime import Runtime
from engine.service import Engine
from engine.state import Failure, Instance
from engine.stores.memory import MemoryStore
from engine.stores.sql import SqlStore

T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
REMIND = """
id: remind
category: transactional
trigger: {event: signed.up}
steps:
  - {id: pause, type: wait, duration: 1h}
  - {id: tip, type: send, message: tip, channels: [sms]}
messages:
  tip:
    sms: {text: "Hello {{ profile.attributes.name }}"}
"""


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    return MemoryStore() if request.param == "memory" else SqlStore(f"sqlite:///{tmp_path}/journey.db")


def people(store: Store, count: int) -> list[str]:
    users = [f"u{n}" for n in range(count)]
    with store.transaction() as tx:
        for user in users:
            tx.put_profile(Profile.from_dict({
                "user_id": user, "phone": "+14155550100", "attributes": {"name": user},
                "consents": [{"channel": "sms", "category": "transactional", "granted": True, "source": "test",
                              "at": "2026-01-01T00:00:00Z"}]}))
    return users


def engine_on(store: Store, clock: VirtualClock) -> tuple[Engine, list[Failure]]:
    engine = Engine([load_text(REMIND, "remind.yaml")], load_policy(), store, clock)
    failures: list[Failure] = []
    engine.on_failure = failures.append
    return engine, failures


def break_instance(store: Store, user_id: str, **changes: object) -> Instance:
    with store.transaction() as tx:
        [instance] = tx.active_instances(user_id)
        broken = replace(instance, **changes)  # type: ignore[arg-type]
        tx.save_instance(broken)
    return broken


def sms_users(store: Store, users: list[str]) -> set[str]:
    with store.transaction() as tx:
        return {u for u in users if tx.latest_message(u, "sms") is not None}


def test_a_sweep_of_1000_due_timers_with_one_broken_instance_fires_999(store: Store) -> None:
    clock = VirtualClock(T0)
    engine, failures = engine_on(store, clock)
    users = people(store, 1000)
    engine.ingest_many([Event("signed.up", u, T0, {}, f"e-{u}") for u in users])
    broken = break_instance(store, "u500", version="gone")  # its definition is nowhere: evaluating it raises
    clock.advance_to(T0 + timedelta(hours=1))
    assert engine.fire_due(limit=1000) == 1000
    assert sms_users(store, users) == set(users) - {"u500"}
    with store.transaction() as tx:
        failed = tx.get_instance(broken.instance_id)
    assert failed is not None and failed.status == "failed" and failed.timer is None
    assert failed.reason == "JourneyNotFoundError: journey 'remind' version gone is not loaded"
    assert [(f.journey_id, f.version, f.step, f.reason) for f in failures] == [
        ("remind", "gone", "pause", failed.reason)]
    assert store.next_due() is None


def test_an_evaluation_that_raises_fails_only_its_instance(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Any error, not only the journey language's own: here a bug in the runtime for one user."""
    clock = VirtualClock(T0)
    engine, failures = engine_on(store, clock)
    users = people(store, 3)
    engine.ingest_many([Event("signed.up", u, T0, {}, f"e-{u}") for u in users])
    on_timer = Runtime.on_timer

    def buggy(self: Runtime, instance: Instance, *args: object) -> object:
        if instance.user_id == "u1":
            raise KeyError("step")
        return on_timer(self, instance, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(Runtime, "on_timer", buggy)
    clock.advance_to(T0 + timedelta(hours=1))
    assert engine.fire_due() == 3
    assert sms_users(store, users) == {"u0", "u2"}
    assert [f.reason for f in failures] == ["KeyError: 'step'"]


def test_stop_from_a_user_whose_only_instance_fails_is_recorded_and_confirmed(store: Store) -> None:
    clock = VirtualClock(T0)
    engine, failures = engine_on(store, clock)
    people(store, 1)
    engine.ingest(Event("signed.up", "u0", T0, {}, "e1"))
    break_instance(store, "u0", version="gone")
    clock.advance_to(T0 + timedelta(minutes=5))
    engine.ingest(Event("sms.inbound", "u0", clock.now(), {"text": "STOP"}, "e2"))
    with store.transaction() as tx:
        profile = tx.get_profile("u0")
        reply = tx.latest_message("u0", "sms")
        [] = tx.active_instances("u0")
    assert profile is not None
    revoked = [(c.channel, c.granted, c.at) for c in profile.consents if c.source != "test"]
    assert ("sms", False, clock.now()) in revoked
    assert reply is not None  # the confirmation, sent although the journey could not run
    assert len(failures) == 1 and "not loaded" in failures[0].reason


def test_an_entry_that_raises_is_a_failed_instance_and_other_entries_go_on(store: Store,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    clock = VirtualClock(T0)
    engine, failures = engine_on(store, clock)
    people(store, 2)
    enter = Runtime.enter

    def buggy(self: Runtime, journey: object, event: Event, *args: object) -> object:
        if event.user_id == "u0":
            raise EvaluationError("boom")
        return enter(self, journey, event, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(Runtime, "enter", buggy)
    engine.ingest_many([Event("signed.up", u, T0, {}, f"e-{u}") for u in ("u0", "u1")])
    with store.transaction() as tx:
        assert [i.user_id for i in tx.active_instances("u1")] == ["u1"]
        assert list(tx.active_instances("u0")) == []
        history = tx.entry_history("remind", "u0", None)
    assert history is not None and history.active is False  # it entered, and failed
    assert [f.reason for f in failures] == ["EvaluationError: boom"]
