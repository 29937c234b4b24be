"""Safe deploys, in-process on a virtual clock: an instance finishes on the journey version it
entered across a restart, a reload and a removed file; new users get the new version; another
journey's timers fire on time throughout; pause, resume and stop over HTTP, kept across a
restart."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.server.conftest import JOURNEYS, T0, LocalServer, StartLocal, post_events, put_profile

V2_TEXT = "Version two: three tips to get started"


def sms_texts(local: LocalServer, user_id: str) -> list[str]:
    return [m["content"]["text"] for m in local.messages(user_id) if m["channel"] == "sms"]


def sms_at(local: LocalServer, user_id: str) -> list[float]:
    """When each SMS was sent, in seconds after T0."""
    return [(_at(m) - T0).total_seconds() for m in local.messages(user_id) if m["channel"] == "sms"]


def _at(message: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(message["at"].replace("Z", "+00:00"))


def edit_welcome(journeys_dir: Path) -> None:
    path = journeys_dir / "welcome.yaml"
    path.write_text(JOURNEYS["welcome.yaml"].replace("Three tips to get started: reply HELP", V2_TEXT),
                    encoding="utf-8")


def start_everyone(local: LocalServer) -> None:
    """A signs up (welcome: push, a 3 s wait, an SMS) and C orders (order-updates: push, 2 s, SMS)."""
    for user in ("A", "B", "C"):
        put_profile(local, user, "sms:transactional")
    assert post_events(local, {"type": "account.created", "user_id": "A"}).status_code == 202
    assert post_events(local, {"type": "order.placed", "user_id": "C", "properties": {"order_id": "C1"}}
                       ).status_code == 202
    local.advance(1)


def finish(local: LocalServer, new_entry: bool) -> None:
    """B signs up at 1 s (after the change); then C's SMS at 2 s, A's at 3 s and B's at 4 s."""
    reply = post_events(local, {"type": "account.created", "user_id": "B"})
    assert reply.status_code == 202 and reply.json()["accepted"] == 1
    local.advance(1)
    assert sms_at(local, "C") == [2.0], "the other journey's timer did not fire on time"
    local.advance(2)
    assert sms_texts(local, "A") == ["Three tips to get started: reply HELP"]
    assert sms_at(local, "A") == [3.0]
    assert sms_texts(local, "B") == ([V2_TEXT] if new_entry else [])
    assert sms_at(local, "B") == ([4.0] if new_entry else [])
    instance = local.client.get("/v1/users/A/instances").json()["instances"][0]
    assert instance["status"] == "completed" and instance["path"] == ["hello", "pause", "tips"]


Change = Callable[[LocalServer, StartLocal, Path, str], LocalServer]


def restart(local: LocalServer, start_local: StartLocal, journeys_dir: Path, db: str) -> LocalServer:
    local.stop()
    return start_local(db=db, clock=local.clock)


def reload_over_http(local: LocalServer, start_local: StartLocal, journeys_dir: Path, db: str) -> LocalServer:
    return local


@pytest.mark.parametrize("how", [restart, reload_over_http], ids=["restart", "reload"])
def test_a_changed_journey_keeps_in_flight_users_on_their_version(durable_db: str, start_local: StartLocal,
                                                                  journeys_dir: Path, how: Change) -> None:
    local = start_local(db=durable_db)
    start_everyone(local)
    v1 = local.client.get("/v1/journeys/welcome").json()["version"]
    edit_welcome(journeys_dir)
    local = how(local, start_local, journeys_dir, durable_db)
    if how is reload_over_http:
        reply = local.client.post("/v1/journeys/reload")
        assert reply.status_code == 200, reply.text
        assert reply.json() == {"added": [], "changed": ["welcome"], "unchanged": ["order-updates",
                                                                                  "review-request"], "removed": []}
    journey = local.client.get("/v1/journeys/welcome").json()
    assert journey["version"] != v1 and journey["state"] == "active"
    counts = {v["version"]: (v["active_instances"], v["current"]) for v in journey["versions"]}
    assert counts == {v1: (1, False), journey["version"]: (0, True)}
    finish(local, new_entry=True)
    final = local.client.get("/v1/journeys/welcome").json()
    assert [v["active_instances"] for v in final["versions"]] == [0, 0]


@pytest.mark.parametrize("how", [restart, reload_over_http], ids=["restart", "reload"])
def test_a_removed_journey_stops_new_entries_and_lets_in_flight_users_finish(
        durable_db: str, start_local: StartLocal, journeys_dir: Path, how: Change) -> None:
    local = start_local(db=durable_db)
    start_everyone(local)
    (journeys_dir / "welcome.yaml").unlink()
    local = how(local, start_local, journeys_dir, durable_db)
    if how is reload_over_http:
        reply = local.client.post("/v1/journeys/reload")
        assert reply.json()["removed"] == ["welcome"], reply.text
    [listed] = [j for j in local.client.get("/v1/journeys").json()["journeys"] if j["id"] == "welcome"]
    assert (listed["state"], listed["version"], listed["active_instances"], listed["name"]) == \
        ("removed", None, 1, "Welcome")  # still running: listed, marked removed
    removed = local.client.get("/v1/journeys/welcome").json()
    assert removed["state"] == "removed" and removed["active_instances"] == 1
    finish(local, new_entry=False)
    assert local.client.get("/v1/users/B/instances").json()["instances"] == []
    assert "welcome" not in [j["id"] for j in local.client.get("/v1/journeys").json()["journeys"]]


def test_a_reload_with_a_bad_file_changes_nothing_and_lists_every_problem(local: LocalServer,
                                                                          journeys_dir: Path) -> None:
    before = local.client.get("/v1/journeys").json()
    edit_welcome(journeys_dir)
    (journeys_dir / "broken.yaml").write_text("id: broken\nsteps:\n  - {id: a, type: send, nxt: b}\n",
                                              encoding="utf-8")
    reply = local.client.post("/v1/journeys/reload")
    assert reply.status_code == 422
    problems = reply.json()["problems"]
    assert problems and all(p.startswith(str(journeys_dir / "broken.yaml") + ":") for p in problems)
    assert any(":3:" in p for p in problems), problems
    assert local.client.get("/v1/journeys").json() == before  # welcome did not change either


def test_a_reload_with_a_deeply_nested_file_answers_422_naming_it(local: LocalServer, journeys_dir: Path) -> None:
    """1,500 nested lists: a RecursionError and a 500 before; a `file:line` problem now."""
    before = local.client.get("/v1/journeys").json()
    (journeys_dir / "deep.yaml").write_text("id: deep\nx: " + "[" * 1500 + "]" * 1500 + "\n", encoding="utf-8")
    reply = local.client.post("/v1/journeys/reload")
    assert reply.status_code == 422, reply.text
    assert reply.json()["problems"] == [f"{journeys_dir / 'deep.yaml'}:2: nested more than 100 levels deep"]
    assert local.client.get("/v1/journeys").json() == before


def test_pause_and_resume_over_http_survive_a_restart(start_local: StartLocal, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'journey.db'}"
    local = start_local(db=db)
    put_profile(local, "A", "sms:transactional")
    paused = local.client.post("/v1/journeys/welcome/pause")
    assert paused.status_code == 200 and paused.json()["state"] == "paused"
    post_events(local, {"type": "account.created", "user_id": "A"})
    assert local.client.get("/v1/users/A/instances").json()["instances"] == []
    local.stop()
    local = start_local(db=db, clock=local.clock)
    assert local.client.get("/v1/journeys/welcome").json()["state"] == "paused"
    listed = {j["id"]: j["state"] for j in local.client.get("/v1/journeys").json()["journeys"]}
    assert listed == {"welcome": "paused", "order-updates": "active", "review-request": "active"}
    post_events(local, {"type": "account.created", "user_id": "A"})
    assert local.client.get("/v1/users/A/instances").json()["instances"] == []
    assert local.client.post("/v1/journeys/welcome/resume").json()["state"] == "active"
    post_events(local, {"type": "account.created", "user_id": "A"})
    [instance] = local.client.get("/v1/users/A/instances").json()["instances"]
    assert instance["status"] == "active"
    assert local.client.post("/v1/journeys/nope/pause").status_code == 404


def test_a_paused_journeys_in_flight_instances_go_on(local: LocalServer) -> None:
    put_profile(local, "A", "sms:transactional")
    post_events(local, {"type": "account.created", "user_id": "A"})
    local.client.post("/v1/journeys/welcome/pause")
    local.advance(3)
    assert len(sms_texts(local, "A")) == 1


def test_stop_ends_in_flight_instances_cancels_their_timers_and_survives_a_restart(start_local: StartLocal,
                                                                                   tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'journey.db'}"
    local = start_local(db=db)
    for user in ("A", "B"):
        put_profile(local, user, "sms:transactional")
    post_events(local, {"type": "account.created", "user_id": "A"})
    post_events(local, {"type": "order.placed", "user_id": "B", "properties": {"order_id": "B1"}})
    local.settle()
    stopped = local.client.post("/v1/journeys/welcome/stop")
    assert stopped.status_code == 200, stopped.text
    assert stopped.json()["state"] == "stopped" and stopped.json()["instances_ended"] == 1
    [instance] = local.client.get("/v1/users/A/instances").json()["instances"]
    assert (instance["status"], instance["reason"]) == ("exited", "journey_stopped")
    assert local.client.get("/v1/journeys/welcome").json()["active_instances"] == 0
    local.advance(5)
    assert sms_texts(local, "A") == [], "a stopped journey sent a message"
    assert sms_texts(local, "B") == ["Order B1 has shipped"]  # other journeys go on
    local.stop()
    local = start_local(db=db, clock=local.clock)
    assert local.client.get("/v1/journeys/welcome").json()["state"] == "stopped"
    post_events(local, {"type": "account.created", "user_id": "A"})
    assert len(local.client.get("/v1/users/A/instances").json()["instances"]) == 1  # no new entry


def test_stop_keeps_back_a_message_queued_but_not_yet_handed_over(local: LocalServer) -> None:
    put_profile(local, "A", "sms:transactional")
    post_events(local, {"type": "account.created", "user_id": "A"})  # the push is queued, not yet sent
    stopped = local.client.post("/v1/journeys/welcome/stop").json()
    assert stopped["messages_cancelled"] == 1
    local.settle()
    [push] = local.messages("A")
    assert (push["dispatch"], push["status"], push["error"]) == ("cancelled", "cancelled", "journey_stopped")
    assert local.outbox_lines() == []


def test_instance_failures_are_counted_per_journey(local: LocalServer) -> None:
    """An instance on a version that no longer exists anywhere fails alone; the metric says which journey."""
    put_profile(local, "A", "sms:transactional")
    put_profile(local, "B", "sms:transactional")
    post_events(local, {"type": "account.created", "user_id": "A"})
    post_events(local, {"type": "account.created", "user_id": "B"})
    store = local.server.store
    with local.server.lock, store.transaction() as tx:
        [instance] = tx.active_instances("A")
        tx.save_instance(replace(instance, version="gone"))
    local.advance(3)
    assert sms_texts(local, "B") == ["Three tips to get started: reply HELP"]
    [failed] = local.client.get("/v1/users/A/instances").json()["instances"]
    assert failed["status"] == "failed" and "version gone is not loaded" in failed["reason"]
    metrics = local.client.get("/metrics").text
    assert 'journey_instance_failures_total{journey="welcome",step="pause"} 1.0' in metrics


@pytest.mark.parametrize("prefer", [None, "respond-async"])
def test_stop_over_http_from_a_user_whose_only_instance_fails_is_recorded_and_confirmed(
        local: LocalServer, prefer: str | None) -> None:
    put_profile(local, "A", "sms:transactional", "sms:marketing")
    post_events(local, {"type": "account.created", "user_id": "A"})
    with local.server.lock, local.server.store.transaction() as tx:
        [instance] = tx.active_instances("A")
        tx.save_instance(replace(instance, version="gone"))
    headers = {"Prefer": prefer} if prefer else {}
    reply = local.client.post("/v1/events", json={"type": "sms.inbound", "user_id": "A",
                                                  "properties": {"text": "STOP"}}, headers=headers)
    assert reply.status_code == 202, reply.text
    local.settle()
    consents = local.client.get("/v1/profiles/A").json()["consents"]
    assert {(c["channel"], c["category"]) for c in consents if not c["granted"]} >= {("sms", "marketing"),
                                                                                      ("sms", "transactional")}
    confirmations = [m for m in local.messages("A") if m["channel"] == "sms"]
    assert len(confirmations) == 1 and confirmations[0]["dispatch"] == "sent"
    [instance_view] = local.client.get("/v1/users/A/instances").json()["instances"]
    assert instance_view["status"] == "failed"


def test_a_sweep_that_keeps_failing_shows_in_metrics_not_in_liveness(local: LocalServer,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A restart does not mend a sweep that fails (a database that is down, a bug): /healthz stays
    200, or a liveness probe would restart every worker in an outage; /metrics says which."""
    assert local.client.get("/healthz").json() == {"status": "ok"}

    def down(*_: object) -> int:
        raise RuntimeError("database is on fire")

    monkeypatch.setattr(local.server.engine, "fire_due", down)
    for _ in range(3):
        with pytest.raises(RuntimeError):
            local.server.sweep_timers()
    assert local.client.get("/healthz").json() == {"status": "ok"}
    metrics = local.client.get("/metrics").text
    assert 'journey_sweep_failures_total{sweep="timers"} 3.0' in metrics
    assert 'journey_sweep_failing{sweep="timers"} 3.0' in metrics
    monkeypatch.undo()
    local.server.sweep_timers()
    assert local.client.get("/healthz").status_code == 200
    assert 'journey_sweep_failing{sweep="timers"} 0.0' in local.client.get("/metrics").text


def test_an_instance_keeps_the_partial_it_entered_with_across_an_edit_and_a_restart(
        durable_db: str, start_local: StartLocal, journeys_dir: Path) -> None:
    """The tips SMS includes `templates/tips.sms`; A is waiting when the partial is edited and the
    server restarts: A gets the text it entered with (kept in the database with its version), B,
    who enters after, the new one."""
    (journeys_dir / "templates").mkdir()
    (journeys_dir / "templates" / "tips.sms").write_text("Three tips to get started: reply HELP", encoding="utf-8")
    (journeys_dir / "welcome.yaml").write_text(JOURNEYS["welcome.yaml"].replace(
        'sms: {text: "Three tips to get started: reply HELP"}', "sms: {text: \"{% include 'tips.sms' %}\"}"),
        encoding="utf-8")
    local = start_local(db=durable_db)
    start_everyone(local)
    v1 = local.client.get("/v1/journeys/welcome").json()["version"]
    (journeys_dir / "templates" / "tips.sms").write_text(V2_TEXT, encoding="utf-8")
    local = restart(local, start_local, journeys_dir, durable_db)
    assert local.client.get("/v1/journeys/welcome").json()["version"] != v1
    finish(local, new_entry=True)
