"""Erasure, export and the consent audit trail over HTTP, in-process on a virtual clock:
`DELETE /v1/profiles/{id}`, `GET /v1/profiles/{id}/export`, `GET /v1/consents`."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import pytest

from channels import ConsentRecord, Profile
from engine.stores.memory import MemoryStore
from tests.server.conftest import T0, LocalServer, StartLocal, post_events, put_profile

PHONE, EMAIL = "+33612345678", "ada@example.com"
ONCE = {  # a journey one enters only once, with a timer an hour out
    "id": "once", "category": "transactional", "re_entry": "never", "trigger": {"event": "signup.completed"},
    "steps": [{"id": "hello", "type": "send", "message": "hello", "channels": ["push"]},
              {"id": "later", "type": "wait", "duration": "1h"},
              {"id": "again", "type": "send", "message": "hello", "channels": ["push"]}],
    "messages": {"hello": {"push": {"title": "Hello {{ profile.attributes.first_name }}", "body": "Welcome"}}}}


@pytest.fixture
def once(journeys_dir: Path) -> None:
    """`ONCE` in the journeys folder, written as JSON (which is YAML too)."""
    (journeys_dir / "once.yaml").write_text(json.dumps(ONCE), encoding="utf-8")


def event(kind: str, user_id: str, **properties: Any) -> dict[str, Any]:
    return {"type": kind, "user_id": user_id, "properties": properties}


def test_an_erased_person_is_gone_but_their_consent_proof_stays_and_they_start_afresh(
        start_local: StartLocal, any_db: str, once: None) -> None:
    local = start_local(any_db)
    put_profile(local, "ada", "sms:transactional", phone=PHONE, email=EMAIL, attributes={"first_name": "Ada"})
    put_profile(local, "bob", "sms:transactional", phone="+14155550100", attributes={"first_name": "Bob"})
    assert post_events(local, event("signup.completed", "ada")).status_code == 202
    local.settle()  # the first push is sent; the instance waits an hour
    assert post_events(local, event("order.placed", "ada", order_id="A1")).status_code == 202  # a push pending
    queued = local.client.post("/v1/events", json=event("order.placed", "ada", order_id="A2"),
                               headers={"Prefer": "respond-async"})
    assert queued.status_code == 202 and queued.json()["accepted"] == 1
    assert post_events(local, event("signup.completed", "bob")).status_code == 202
    sent_before = [line["user_id"] for line in local.outbox_lines()]
    assert sent_before == ["ada"]

    erased = local.client.delete("/v1/profiles/ada")
    assert erased.status_code == 204, erased.text
    assert erased.content == b""
    assert local.client.get("/v1/profiles/ada").status_code == 404

    messages = {m["message"]: m for m in local.messages("ada")}
    assert {k: (m["content"], m["dispatch"], m["status"], m["error"]) for k, m in messages.items()} == {
        "order_received": ({}, "cancelled", "cancelled", "erased"), "hello": ({}, "sent", "sent", None)}
    assert local.client.get("/v1/users/ada/instances").json() == {"instances": []}
    assert local.server.backlog.waiting == 0 and not local.server.backlog.any_of(["ada"])

    local.advance(2 * 3600)  # ada's timers were cancelled and her queued event deleted: nothing more for her
    assert [line["user_id"] for line in local.outbox_lines()] == ["bob", "bob"]  # erasure reached the outbox file
    assert len(local.messages("ada")) == 2
    feed = local.client.get("/v1/consents").json()["consents"]
    assert [(c["user_id"], c["channel"], c["granted"]) for c in feed] == [("ada", "sms", True), ("bob", "sms", True)]
    export = local.client.get("/v1/profiles/ada/export").json()  # what is still held: the proof, bare messages
    assert export["profile"] is None and [c["channel"] for c in export["consents"]] == ["sms"]
    assert export["instances"] == [] and PHONE not in str(export) and EMAIL not in str(export)

    # later events start afresh: a `re_entry: never` journey takes her again, with no profile or consent
    assert post_events(local, event("signup.completed", "ada")).status_code == 202
    [again] = local.client.get("/v1/users/ada/instances").json()["instances"]
    assert (again["journey_id"], again["status"]) == ("once", "active")
    assert local.client.post("/v1/profiles/ada/consents", json={"channel": "email", "category": "marketing",
                                                                "granted": True}).status_code == 404  # no profile
    assert local.client.put("/v1/profiles/ada", json={"consents": [{"channel": "email", "category": "marketing",
                                                                   "granted": True}]}).status_code == 200
    assert [c["channel"] for c in local.client.get("/v1/profiles/ada").json()["consents"]] == ["email"]
    assert local.client.delete("/v1/profiles/ada").status_code == 204  # erasing again: the same answer


def test_an_erasure_happens_in_the_engines_turn_and_ends_instances_as_exited_erased(local: LocalServer) -> None:
    """The instances end through the engine (timers cancelled) before their rows go: seen here by
    the store's own writes, since nothing is left to read afterwards."""
    put_profile(local, "ada", phone=PHONE)
    assert post_events(local, event("order.placed", "ada", order_id="A1")).status_code == 202
    saved: list[Any] = []
    store = local.server.store
    tx = cast(MemoryStore, store).tx  # the memory store's one Tx
    original = tx.save_instance
    tx.save_instance = lambda instance: (saved.append(instance), original(instance))[1]  # type: ignore[method-assign]
    assert local.client.delete("/v1/profiles/ada").status_code == 204
    assert [(i.status, i.reason, i.timer) for i in saved] == [("exited", "erased", None)]
    assert store.next_due() is None


def test_unknown_people_get_404_and_bad_feed_parameters_422_naming_the_field(local: LocalServer) -> None:
    assert local.client.delete("/v1/profiles/nobody").status_code == 404
    assert local.client.get("/v1/profiles/nobody/export").status_code == 404
    for params, field in [({"since": "yesterday"}, "since"), ({"since": "2026-01-05T10:00:00"}, "since"),
                          ({"limit": "0"}, "limit"), ({"limit": "1001"}, "limit"), ({"limit": "ten"}, "limit"),
                          ({"cursor": "abc"}, "cursor"), ({"cursor": "Y29uc2VudHM6LTE"}, "cursor")]:
        response = local.client.get("/v1/consents", params=params)
        assert response.status_code == 422, (params, response.text)
        assert response.json()["error"].startswith(f"{field}:"), response.text


def test_an_export_holds_everything_about_one_person_and_nothing_about_others(local: LocalServer) -> None:
    put_profile(local, "bob", "push:transactional", email="bob@example.com", attributes={"tier": "gold"})
    put_profile(local, "carol", "sms:transactional")
    assert local.client.post("/v1/profiles/bob/consents", json={"channel": "sms", "category": "marketing",
                                                                "granted": False, "source": "call"}).status_code == 201
    for user in ("bob", "carol"):
        assert post_events(local, event("order.placed", user, order_id=f"{user}-1")).status_code == 202
    local.advance(3)  # the push, then the SMS step: bob has no SMS consent, so it is skipped

    response = local.client.get("/v1/profiles/bob/export")
    assert response.status_code == 200, response.text
    doc = response.json()
    assert set(doc) == {"user_id", "profile", "consents", "suppressions", "messages", "skipped", "instances",
                        "feed", "exported_at"}
    assert doc["user_id"] == "bob" and doc["exported_at"] == "2026-01-05T10:00:03Z"
    engagement = doc["profile"].pop("engagement")  # what the engine counted of them: one push sent
    assert doc["profile"] == {"user_id": "bob", "timezone": "UTC", "locale": None, "email": "bob@example.com",
                              "phone": "+14155550100", "push_token": "tok-bob", "rcs_capable": False,
                              "attributes": {"tier": "gold"}, "rcs_capability": None}
    assert {channel: counts["sent"] for channel, counts in engagement.items()} == {"push": 1}
    assert [(c["channel"], c["category"], c["granted"], c["source"]) for c in doc["consents"]] == [
        ("push", "transactional", True, "test"), ("sms", "marketing", False, "call")]
    assert doc["suppressions"] == []
    [message] = doc["messages"]
    assert (message["user_id"], message["channel"], message["dispatch"]) == ("bob", "push", "sent")
    assert message["content"] == {"title": "Order received", "body": "Order bob-1 is in"}
    assert message["decisions"] == [{"channel": "push", "eligible": True, "reason": None}]
    [skip] = doc["skipped"]
    assert (skip["step"], skip["reason"], skip["decisions"]) == (
        "shipped", "no_eligible_channel", [{"channel": "sms", "eligible": False, "reason": "no_consent"}])
    [instance] = doc["instances"]
    assert (instance["journey_id"], instance["status"], instance["path"]) == (
        "order-updates", "completed", ["received", "pause", "shipped"])
    assert instance["event"]["properties"] == {"order_id": "bob-1"}
    assert "carol" not in str(doc)


def test_the_consent_feed_pages_through_2500_rows_none_missing_or_repeated(start_local: StartLocal,
                                                                           any_db: str) -> None:
    local = start_local(any_db)
    written: list[tuple[str, str, bool, str]] = []
    with local.server.store.transaction() as tx:
        for n in range(500):
            records = []
            for k, channel in enumerate(("sms", "email", "push", "sms", "email")):
                at = T0 - timedelta(days=30) + timedelta(minutes=k * 600 + n)
                records.append(ConsentRecord(channel, "marketing", k % 2 == 0, f"import-{k}", at))
                written.append((f"u{n:03d}", channel, k % 2 == 0, at.strftime("%Y-%m-%dT%H:%M:%SZ")))
            tx.put_profile(Profile(f"u{n:03d}", consents=tuple(records)))

    for limit in (1000, 100):
        collected: list[tuple[str, str, bool, str]] = []
        cursor: str | None = None
        pages = 0
        while True:
            params: dict[str, Any] = {"limit": limit} if cursor is None else {"limit": limit, "cursor": cursor}
            body = local.client.get("/v1/consents", params=params).json()
            collected += [(c["user_id"], c["channel"], c["granted"], c["at"]) for c in body["consents"]]
            pages += 1
            cursor = body["next_cursor"]
            if cursor is None:
                break
        assert collected == written, f"limit {limit}: rows missing, repeated or out of order"
        assert pages == -(-2500 // limit)

    since = (T0 - timedelta(days=30) + timedelta(minutes=2400)).strftime("%Y-%m-%dT%H:%M:%SZ")
    recent = local.client.get("/v1/consents", params={"since": since, "limit": 1000}).json()
    assert [(c["user_id"], c["at"]) for c in recent["consents"]] == [(u, a) for u, _, _, a in written if a >= since]
    assert recent["next_cursor"] is None
    assert len(local.client.get("/v1/consents").json()["consents"]) == 100  # the default limit


def test_an_export_holds_the_suppression_rows_of_the_persons_number(local: LocalServer) -> None:
    put_profile(local, "dan", "sms:marketing", phone="+14155550123")
    for text in ("STOP", "START"):
        reply = post_events(local, {"type": "sms.inbound", "user_id": "dan", "properties": {"text": text}})
        assert reply.status_code == 202
    doc = local.client.get("/v1/profiles/dan/export").json()
    assert [(s["number"], s["keyword"]) for s in doc["suppressions"]] == [
        ("+14155550123", "STOP"), ("+14155550123", "START")]
    assert all(s["source"].startswith("sms.inbound:") and s["at"] for s in doc["suppressions"])
