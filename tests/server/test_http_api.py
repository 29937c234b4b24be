"""The HTTP API in-process on a virtual clock: profiles and consent, journeys, simulate,
instances, metrics; and `journey serve` refusing to start unsafely."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from typer.testing import CliRunner

from engine.cli import app
from tests.server.conftest import LocalServer, free_port, metric, post_events, put_profile, sweeps_done

T0 = "2026-01-05T10:00:00Z"


def test_a_profile_round_trips_and_keeps_its_consent_history(local: LocalServer) -> None:
    body = {"timezone": "Europe/Paris", "locale": "fr-FR", "email": "ada@example.com", "phone": "+33612345678",
            "push_token": "tok-ada", "rcs_capable": True, "attributes": {"first_name": "Ada", "tier": "gold"},
            "consents": [{"channel": "email", "category": "marketing", "granted": True, "source": "signup form",
                          "at": "2026-01-02T09:00:00Z"}]}
    put = local.client.put("/v1/profiles/ada", json=body)
    assert put.status_code == 200, put.text
    got = local.client.get("/v1/profiles/ada")
    assert got.status_code == 200
    assert got.json() == {"user_id": "ada", **body, "rcs_capability": None,  # no provider has answered
                          "engagement": {}}  # nothing sent yet: nothing counted

    grant = local.client.post("/v1/profiles/ada/consents",
                              json={"channel": "sms", "category": "marketing", "granted": True, "source": "web"})
    assert grant.status_code == 201, grant.text
    revoke = local.client.post("/v1/profiles/ada/consents",
                               json={"channel": "sms", "category": "marketing", "granted": False})
    assert revoke.status_code == 201, revoke.text
    sms = [c for c in revoke.json()["consents"] if c["channel"] == "sms"]
    assert [(c["granted"], c["source"]) for c in sms] == [(True, "web"), (False, "api")]
    assert all(c["at"] for c in sms)

    # an upsert without consents replaces the fields but never rewrites the ledger
    again = local.client.put("/v1/profiles/ada", json={"phone": "+33612345679", "timezone": "Europe/Paris"})
    assert again.status_code == 200, again.text
    profile = local.client.get("/v1/profiles/ada").json()
    assert profile["phone"] == "+33612345679"
    assert profile["email"] is None
    assert [(c["channel"], c["granted"]) for c in profile["consents"]] == [
        ("email", True), ("sms", True), ("sms", False)]

    assert local.client.put("/v1/profiles/ada", json={"user_id": "bob"}).status_code == 409  # another user


def test_a_consent_revoked_during_a_wait_makes_the_next_sms_opted_out(local: LocalServer) -> None:
    put_profile(local, "u1")
    grant = local.client.post("/v1/profiles/u1/consents",
                              json={"channel": "sms", "category": "transactional", "granted": True})
    assert grant.status_code == 201
    order = {"type": "order.placed", "user_id": "u1", "properties": {"order_id": "A1"}}
    assert post_events(local, order).json()["accepted"] == 1
    revoke = local.client.post("/v1/profiles/u1/consents",
                               json={"channel": "sms", "category": "transactional", "granted": False,
                                     "source": "support call"})
    assert revoke.status_code == 201
    assert [c["granted"] for c in revoke.json()["consents"]] == [True, False]

    def skipped() -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = local.client.get("/v1/messages", params={"user_id": "u1"}).json()["skipped"]
        return found

    local.advance(2.0 - 0.001)
    assert skipped() == [], "the SMS step was decided before the 2 s wait was over"
    local.advance(0.001)
    [skip] = skipped()
    assert skip["step"] == "shipped", skipped()
    assert skip["reason"] == "no_eligible_channel"
    assert skip["decisions"] == [{"channel": "sms", "eligible": False, "reason": "opted_out"}]
    assert [m["channel"] for m in local.messages("u1")] == ["push"]
    assert [line["channel"] for line in local.outbox_lines()] == ["push"]


def test_journeys_are_listed_and_show_definition_graph_and_live_counts(local: LocalServer) -> None:
    listed = local.client.get("/v1/journeys")
    assert listed.status_code == 200
    assert list(listed.json()) == ["journeys"]
    summaries = {j["id"]: j for j in listed.json()["journeys"]}
    assert set(summaries) == {"order-updates", "review-request", "welcome"}
    assert summaries["order-updates"]["category"] == "transactional"
    assert summaries["order-updates"]["trigger"]["event"] == "order.placed"

    put_profile(local, "u1", "sms:transactional")
    order = {"type": "order.placed", "user_id": "u1", "properties": {"order_id": "A1"}}
    assert post_events(local, order).json()["accepted"] == 1
    detail = local.client.get("/v1/journeys/order-updates")
    assert detail.status_code == 200
    doc = detail.json()
    assert doc["id"] == "order-updates"
    assert doc["definition"]["trigger"]["event"] == "order.placed"
    assert [s["id"] for s in doc["definition"]["steps"]] == ["received", "pause", "shipped"]
    assert {(n["id"], n["type"]) for n in doc["graph"]["nodes"]} == {
        ("received", "send"), ("pause", "wait"), ("shipped", "send")}
    assert {(e["from"], e["to"]) for e in doc["graph"]["edges"]} >= {("received", "pause"), ("pause", "shipped")}
    assert doc["counts"] == {"pause": {"active": 1}}

    local.advance(2)
    assert local.client.get("/v1/journeys/order-updates").json()["counts"] == {"shipped": {"completed": 1}}
    assert local.client.get("/v1/journeys/welcome").json()["counts"] == {}


def test_simulate_returns_the_dry_run_document_and_stores_nothing(local: LocalServer) -> None:
    profiles = [{"user_id": "sim-1", "push_token": "tok-1", "phone": "+14155550100", "timezone": "UTC",
                 "consents": [{"channel": "sms", "category": "transactional", "granted": True, "source": "test",
                               "at": "2026-01-01T00:00:00Z"}]},
                {"user_id": "sim-2", "push_token": "tok-2", "phone": "+14155550101"}]
    events = [{"type": "order.placed", "user_id": "sim-1", "timestamp": T0, "properties": {"order_id": "S1"}},
              {"type": "order.placed", "user_id": "sim-2", "timestamp": T0, "properties": {"order_id": "S2"}}]
    response = local.client.post("/v1/journeys/order-updates/simulate", json={"events": events, "profiles": profiles})
    assert response.status_code == 200, response.text
    doc = response.json()
    assert set(doc) >= {"journey", "summary", "messages", "skipped", "instances", "timeline"}
    assert doc["journey"] == "order-updates"
    summary = doc["summary"]
    assert (summary["users"], summary["entered"], summary["completed"], summary["active"], summary["failed"]) == (
        2, 2, 2, 0, 0)
    assert summary["messages"] == {"push": 2, "sms": 1}
    assert summary["cost"] == round(2 * 0.0001 + 0.0083, 6)
    sent = [(m["user_id"], m["channel"], m["at"], m["step"]) for m in doc["messages"]]
    assert sorted(sent) == [("sim-1", "push", T0, "received"), ("sim-1", "sms", "2026-01-05T10:00:02Z", "shipped"),
                            ("sim-2", "push", T0, "received")]
    sms = next(m for m in doc["messages"] if m["channel"] == "sms")
    assert sms["content"] == {"text": "Order S1 has shipped"}
    assert (sms["encoding"], sms["segments"], sms["message"]) == ("GSM-7", 1, "order_shipped")
    [skip] = doc["skipped"]
    assert (skip["user_id"], skip["step"], skip["reason"]) == ("sim-2", "shipped", "no_eligible_channel")
    assert skip["decisions"] == [{"channel": "sms", "eligible": False, "reason": "no_consent"}]
    assert sorted((i["user_id"], i["status"], tuple(i["path"])) for i in doc["instances"]) == [
        ("sim-1", "completed", ("received", "pause", "shipped")),
        ("sim-2", "completed", ("received", "pause", "shipped"))]
    assert doc["timeline"] and all({"at", "user_id", "step", "action"} <= set(t) for t in doc["timeline"])

    # a dry run: nothing stored, nothing sent
    assert local.client.get("/v1/users/sim-1/instances").json() == {"instances": []}
    assert local.client.get("/v1/profiles/sim-1").status_code == 404
    assert local.messages("sim-1") == []
    assert not local.outbox.exists()


def test_instances_show_status_step_and_path_and_metrics_count_events(local: LocalServer) -> None:
    put_profile(local, "u1", "sms:transactional")
    batch = {"events": [{"id": "m-1", "type": "order.placed", "user_id": "u1", "properties": {"order_id": "A1"}},
                        {"id": "m-1", "type": "order.placed", "user_id": "u1", "properties": {"order_id": "A1"}},
                        {"type": "order.placed"},
                        {"id": "m-2", "type": "page.viewed", "user_id": "u2"}]}
    assert post_events(local, batch).json()["accepted"] == 2

    response = local.client.get("/v1/users/u1/instances")
    assert response.status_code == 200
    [waiting] = response.json()["instances"]
    assert waiting["journey_id"] == "order-updates"
    assert (waiting["status"], waiting["step"], waiting["path"]) == ("active", "pause", ["received", "pause"])
    assert waiting["instance_id"] and waiting["entered_at"] and waiting["ended_at"] is None

    assert metric(local, "journey_events_total", outcome="accepted") == 2
    assert metric(local, "journey_events_total", outcome="duplicate") == 1
    assert metric(local, "journey_events_total", outcome="rejected") == 1
    assert metric(local, "journey_journeys_loaded") == 3

    sweeps = ("inbox", "timers", "outbox")
    assert {s: metric(local, "journey_sweeps_total", sweep=s) for s in sweeps} == {s: 0 for s in sweeps}, \
        "nothing runs by itself on the virtual clock"
    local.settle()
    assert metric(local, "journey_messages_sent_total") == 1
    settled = {s: sweeps_done(local, s) for s in sweeps}
    assert min(settled.values()) >= 1, settled
    local.advance(2)
    [done] = local.client.get("/v1/users/u1/instances").json()["instances"]
    assert done["status"] == "completed"
    assert done["path"] == ["received", "pause", "shipped"]
    assert done["ended_at"]
    assert local.client.get("/v1/users/nobody/instances").json() == {"instances": []}
    assert metric(local, "journey_messages_sent_total") == 2
    assert metric(local, "journey_timers_fired_total") == 1
    after = {s: sweeps_done(local, s) for s in sweeps}
    assert all(after[s] > settled[s] for s in sweeps), (settled, after)
    # the scrape is cumulative, not reset by reading it
    assert metric(local, "journey_events_total", outcome="accepted") == 2


def test_serve_refuses_a_public_address_without_api_keys(tmp_path: Path, journeys_dir: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI in-process (typer's runner); should it not refuse, it fails instead of serving."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(uvicorn, "run", lambda *_, **__: pytest.fail("journey serve started serving"))
    port = free_port()
    for keys in (None, "", " , "):
        done = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0", "--port", str(port),
                                        "--journeys", str(journeys_dir)], env={"JOURNEY_API_KEYS": keys})
        assert done.exit_code == 1, (keys, done.stdout, done.stderr, done.exception)
        assert "JOURNEY_API_KEYS" in done.stderr, done.stderr
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0, "something is listening on the port"
    assert not (tmp_path / "journey.db").exists(), "it opened the default database before refusing"


def test_serve_refuses_an_outbox_lease_that_is_not_a_number_of_seconds(tmp_path: Path, journeys_dir: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(uvicorn, "run", lambda *_, **__: pytest.fail("journey serve started serving"))
    for lease in ("soon", "0", "nan", "1e9"):
        done = CliRunner().invoke(app, ["serve", "--journeys", str(journeys_dir)],
                                  env={"JOURNEY_OUTBOX_LEASE_SECONDS": lease})
        assert done.exit_code == 1, (lease, done.stdout, done.stderr, done.exception)
        assert "JOURNEY_OUTBOX_LEASE_SECONDS" in done.stderr, done.stderr
    assert not (tmp_path / "journey.db").exists(), "it opened the default database before refusing"


def test_prefer_respond_async_replies_once_events_are_durable_and_processes_them_soon(local: LocalServer) -> None:
    """`Prefer: respond-async`: the reply says what was accepted (duplicates and rejects as
    usual) and that the preference was applied; the events then run through the journey."""
    put_profile(local, "u1", "sms:transactional")
    put_profile(local, "u2", "sms:transactional")
    batch = {"events": [{"id": "a-1", "type": "order.placed", "user_id": "u1", "properties": {"order_id": "A1"}},
                        {"id": "a-1", "type": "order.placed", "user_id": "u1"},
                        {"type": "order.placed"},
                        {"id": "a-2", "type": "order.placed", "user_id": "u2", "properties": {"order_id": "B2"}}]}
    response = local.client.post("/v1/events", json=batch, headers={"Prefer": "respond-async"})
    assert response.status_code == 202
    assert response.headers["preference-applied"] == "respond-async"
    body = response.json()
    assert (body["accepted"], body["duplicates"]) == (2, 1)
    assert [r["index"] for r in body["rejected"]] == [2] and "user_id" in body["rejected"][0]["error"]

    def entered() -> bool:
        return all(local.client.get(f"/v1/users/{u}/instances").json()["instances"] for u in ("u1", "u2"))

    assert not entered(), "processed before the reply: the queue was not used"
    assert metric(local, "journey_events_queued") == 2
    local.settle()
    assert entered()
    assert metric(local, "journey_inbox_processed_total") == 2
    assert metric(local, "journey_events_queued") == 0
    again = local.client.post("/v1/events", json=batch["events"][0], headers={"Prefer": "respond-async"})
    assert again.json() == {"accepted": 0, "duplicates": 1, "rejected": []}
    plain = post_events(local, {"id": "a-3", "type": "order.placed", "user_id": "u1", "properties": {"order_id": "C"}})
    assert plain.status_code == 202 and "preference-applied" not in plain.headers


def test_engagement_counts_written_as_whole_floats_are_counts_and_fractions_are_refused(local: LocalServer) -> None:
    """JSON Schema's `integer` takes 20.0 (and exporters write counts so): the API does too."""
    put_profile(local, "eve", engagement={"push": {"sent": 20.0, "engaged": 18, "by_hour": {"19": 12.0}}})
    counts = local.client.get("/v1/profiles/eve").json()["engagement"]["push"]
    assert (counts["sent"], counts["engaged"], counts["by_hour"]) == (20, 18, {"19": 12})
    assert all(type(n) is int for n in (counts["sent"], counts["engaged"], counts["by_hour"]["19"]))
    half = local.client.patch("/v1/profiles/eve", json={"engagement": {"push": {"sent": 20.5}}})
    assert half.status_code == 422
    assert [e["field"] for e in half.json()["errors"]] == ["engagement.push.sent"]
