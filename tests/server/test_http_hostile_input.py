"""Input that parses as JSON in some sense but that the server cannot take must still get a 4xx
(docs/http.md: "Bad input gets a 4xx with a message that names the field; never a 500, and nothing
already accepted is lost"). Each was an engine bug, found by these tests and fixed."""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from tests.server.conftest import LocalServer, StartLocal, post_events, put_profile

JSON = {"Content-Type": "application/json"}


def order(user_id: str, **properties: object) -> dict[str, object]:
    return {"type": "order.placed", "user_id": user_id, "properties": {"order_id": "A1", **properties}}


def fresh_post(local: LocalServer, path: str, content: bytes) -> httpx.Response:
    """A new connection per request: uvicorn drops the connection after an unhandled error."""
    with httpx.Client(base_url=local.base_url, headers=local.headers, timeout=20) as client:
        return client.post(path, content=content, headers=JSON)


def test_json_the_parser_cannot_take_is_a_400_not_a_500(local: LocalServer) -> None:
    deep = b'{"events": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    huge_number = json.dumps(order("u1")).encode().replace(b'"A1"', b"1" + b"0" * 5000)
    for body in (deep, huge_number):
        assert len(body) < 1024 * 1024
        response = fresh_post(local, "/v1/events", body)
        assert response.status_code == 400, response.text
        assert "JSON" in response.json()["error"]
    assert post_events(local, order("u1")).status_code == 202
    deeper = b'{"profiles": ' + b"[" * 1_500_000 + b"]" * 1_500_000 + b"}"  # over 1 MiB: the bulk route's own limit
    bulk = fresh_post(local, "/v1/profiles", deeper)
    assert bulk.status_code == 400 and "JSON" in bulk.json()["error"], bulk.text
    odd = [{"user_id": "p1", "attributes": {"n": float("inf")}}, {"user_id": "p\u0000"}, {"user_id": "p3"}]
    reply = fresh_post(local, "/v1/profiles", json.dumps({"profiles": odd}).encode())
    assert reply.status_code == 200, reply.text
    assert [(r["index"], r["error"].split(":")[0]) for r in reply.json()["rejected"]] == [(0, "attributes.n"),
                                                                                         (1, "user_id")]


def test_a_nul_character_is_rejected_by_field_on_postgresql(postgres_fresh_db_url: str,
                                                            start_local: StartLocal) -> None:
    local = start_local(db=postgres_fresh_db_url)
    batch = {"events": [order("u1"), order("u\u00002"), {"id": "e\u00003", "type": "page.viewed", "user_id": "u3"}]}
    response = fresh_post(local, "/v1/events", json.dumps(batch).encode())
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["accepted"] == 1
    rejected = {item["index"]: item["error"] for item in body["rejected"]}
    assert sorted(rejected) == [1, 2]
    assert "user_id" in rejected[1] and "id" in rejected[2]

    single = fresh_post(local, "/v1/events", json.dumps(order("u\u00004")).encode())
    assert single.status_code == 422, single.text
    assert "user_id" in single.json()["error"]
    consent = fresh_post(local, "/v1/profiles/u1/consents", json.dumps(
        {"channel": "sms", "category": "marketing", "granted": True, "source": "web\u0000"}).encode())
    assert consent.status_code == 422, consent.text
    with httpx.Client(base_url=local.base_url, headers=local.headers, timeout=20) as client:
        assert client.get("/v1/messages", params={"user_id": "u\u00002"}).status_code in (200, 404, 422)


def test_nan_in_properties_is_rejected_not_a_500_on_postgresql(postgres_fresh_db_url: str,
                                                               start_local: StartLocal) -> None:
    local = start_local(db=postgres_fresh_db_url)
    batch = b'{"events": [' + json.dumps(order("u1")).encode() + \
        b', {"type": "order.placed", "user_id": "u2", "properties": {"order_id": "A2", "total": NaN}}]}'
    response = fresh_post(local, "/v1/events", batch)
    assert response.status_code in (202, 400), response.text
    if response.status_code == 202:
        assert response.json()["accepted"] == 1
        assert [r["index"] for r in response.json()["rejected"]] == [1]
    assert local.client.put("/v1/profiles/u1", json={}).status_code == 200
    profile = fresh_post(local, "/v1/profiles/u1/consents", b'{"channel": "sms", "category": "marketing", '
                         b'"granted": true, "source": "web"}')
    assert profile.status_code == 201
    with httpx.Client(base_url=local.base_url, headers=local.headers, timeout=20) as client:
        attributes = client.put("/v1/profiles/u3", content=b'{"attributes": {"score": Infinity}}', headers=JSON)
    assert attributes.status_code in (400, 422), attributes.text


HOSTILE_EVENTS = {
    "a lone surrogate in user_id": b'{"type": "order.placed", "user_id": "u\\ud800x"}',
    "a lone surrogate in a property": b'{"type": "order.placed", "user_id": "u1", "properties": {"n": "\\udc00"}}',
    "a timestamp in year 1": b'{"type": "order.placed", "user_id": "u1", "timestamp": "0001-01-01T00:00:00Z"}',
    "a timestamp in year 1 east of UTC": b'{"type": "a.b", "user_id": "u1", "timestamp": "0001-01-01T00:30:00+01:00"}',
    "a timestamp in year 9999": b'{"type": "order.placed", "user_id": "u1", "timestamp": "9999-12-31T23:59:59Z"}',
    "1e999": b'{"type": "order.placed", "user_id": "u1", "properties": {"total": 1e999}}',
    "NaN": b'{"type": "order.placed", "user_id": "u1", "properties": {"total": NaN}}',
}


@pytest.mark.parametrize("prefer", [None, "respond-async"])
@pytest.mark.parametrize("name", list(HOSTILE_EVENTS))
def test_every_hostile_value_is_a_4xx_naming_the_field_alone_or_one_of_a_batch(local: LocalServer, name: str,
                                                                               prefer: str | None) -> None:
    headers = {**JSON, **({"Prefer": prefer} if prefer else {})}
    with httpx.Client(base_url=local.base_url, headers=local.headers, timeout=20) as client:
        alone = client.post("/v1/events", content=HOSTILE_EVENTS[name], headers=headers)
        assert 400 <= alone.status_code < 500, (name, alone.text)
        good = [json.dumps(order(f"u{n}")).encode() for n in range(9)]
        batch = b'{"events": [' + b", ".join([*good[:4], HOSTILE_EVENTS[name], *good[4:]]) + b"]}"
        reply = client.post("/v1/events", content=batch, headers=headers)
    assert reply.status_code == 202, (name, reply.text)
    assert reply.json()["accepted"] == 9
    [rejected] = reply.json()["rejected"]
    assert rejected["index"] == 4
    field = rejected["error"].split(":")[0]
    assert field in ("user_id", "timestamp") or field.startswith("properties"), rejected


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_a_profile_with_a_lone_surrogate_an_infinity_or_a_nul_is_a_422_naming_the_field(local: LocalServer,
                                                                                         method: str) -> None:
    put_profile(local, "u1")  # PATCH merges into a stored profile
    with httpx.Client(base_url=local.base_url, headers=local.headers, timeout=20) as client:
        email = client.request(method, "/v1/profiles/u1", content=b'{"email": "a\\ud800@example.com"}', headers=JSON)
        score = client.request(method, "/v1/profiles/u1", content=b'{"attributes": {"score": 1e999}}', headers=JSON)
        nul = client.request(method, "/v1/profiles/u1", content=b'{"push_token": "t\\u0000"}', headers=JSON)
        key = client.request(method, "/v1/profiles/u1", content=b'{"attributes": {"\\udc00": 1}}', headers=JSON)
    assert email.status_code == 422 and email.json()["error"].startswith("email:"), email.text
    assert score.status_code == 422 and score.json()["error"].startswith("attributes.score:"), score.text
    assert nul.status_code == 422 and nul.json()["error"].startswith("push_token:"), nul.text
    assert key.status_code == 422 and key.json()["error"].startswith("attributes"), key.text


def test_readyz_checks_the_database_and_healthz_stays_liveness(local: LocalServer) -> None:
    with httpx.Client(base_url=local.base_url, timeout=20) as anonymous:
        assert anonymous.get("/readyz").json() == {"status": "ready"}
        assert anonymous.get("/healthz").status_code == 200


def test_a_template_with_nested_loops_cannot_hold_up_other_users(start_local: StartLocal, journeys_dir: Path) -> None:
    """Served, the nested-loop journey skips its send with template_error at once; another user's
    event and 2-second timer, in the same batch and after it, go on as usual."""
    (journeys_dir / "hostile.yaml").write_text("""\
id: hostile
category: transactional
trigger: {event: hostile.sent}
steps:
  - {id: tell, type: send, message: tell, channels: [push]}
messages:
  tell:
    push: {title: "x", body: "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"}
""", encoding="utf-8")
    local = start_local()
    put_profile(local, "u1", "sms:transactional")
    put_profile(local, "u2", "sms:transactional")
    started = time.monotonic()
    reply = post_events(local, {"events": [{"type": "hostile.sent", "user_id": "u1"},
                                           order("u2")]})
    assert reply.status_code == 202 and reply.json()["accepted"] == 2
    assert time.monotonic() - started < 5
    [skip] = local.client.get("/v1/messages", params={"user_id": "u1"}).json()["skipped"]
    assert skip["reason"] == "template_error" and "limit" in skip["detail"]
    local.advance(2)
    assert sorted(m["channel"] for m in local.messages("u2")) == ["push", "sms"]


@pytest.mark.parametrize("token", ["Bearer \u00e9".encode(), b"Bearer k1\xff", "Bearer k\u00e91".encode("latin-1"),
                                   b"Bearer \xe2\x80\x8bk1"])
def test_a_key_that_is_not_ascii_is_a_401_not_a_500(local: LocalServer, token: bytes) -> None:
    """`hmac.compare_digest` on a str that is not ASCII raised TypeError: a 500 before."""
    with httpx.Client(base_url=local.base_url, timeout=20) as client:
        response = client.get("/v1/journeys", headers=[(b"Authorization", token)])
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert local.client.get("/v1/journeys").status_code == 200  # the right key still works


def outage_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "journey.database"]


CONSENT = {"channel": "sms", "category": "marketing", "granted": True}
BAD_AT = {
    "year 1": ("0001-01-01T00:00:00Z", "is outside the supported range"),
    "year 1 east of UTC": ("0001-01-01T00:30:00+01:00", "is outside the supported range"),
    "year 9999": ("9999-12-31T23:59:59Z", "is outside the supported range"),
    "an epoch number": (0, "expected an RFC 3339 timestamp string, got int"),
    "a boolean": (True, "expected an RFC 3339 timestamp string, got bool"),
    "no offset": ("2026-01-01T00:00:00", "has no time zone offset"),
}


@pytest.mark.parametrize("db", ["sqlite", "postgresql"])
@pytest.mark.parametrize("name", list(BAD_AT))
def test_a_consent_at_outside_the_range_of_events_or_not_a_string_is_a_422_naming_at(
        start_local: StartLocal, tmp_path: Path, caplog: pytest.LogCaptureFixture, request: pytest.FixtureRequest,
        name: str, db: str) -> None:
    """A consent dated year 1 answered 503 and logged a database outage; `"at": 0` was taken as 1970."""
    url = f"sqlite:///{tmp_path / 'j.db'}" if db == "sqlite" else request.getfixturevalue("postgres_fresh_db_url")
    local = start_local(db=url)
    at, reason = BAD_AT[name]
    with caplog.at_level(logging.INFO, logger="journey.database"):
        alone = local.client.post("/v1/profiles/u1/consents", json={**CONSENT, "at": at})
        put = local.client.put("/v1/profiles/u2", json={"consents": [{**CONSENT, "at": at}]})
        bulk = local.client.post("/v1/profiles", json={"profiles": [{"user_id": "u3",
                                                                     "consents": [{**CONSENT, "at": at}]}]})
        assert local.client.put("/v1/profiles/u4", json={}).status_code == 200
        patch = local.client.patch("/v1/profiles/u4", json={"consents": [{**CONSENT, "at": at}]})
    assert alone.status_code == 422 and alone.json()["errors"][0]["field"] == "at", alone.text
    assert reason in alone.json()["detail"]
    assert put.status_code == 422 and put.json()["errors"][0]["field"] == "consents[0].at", put.text
    assert bulk.status_code == 200 and bulk.json()["rejected"][0]["error"].startswith("consents[0].at: "), bulk.text
    assert patch.status_code == 422 and patch.json()["errors"][0]["field"] == "consents[0].at", patch.text
    assert local.client.get("/v1/profiles/u4").json()["consents"] == []
    assert outage_lines(caplog) == []
    assert local.client.get("/v1/profiles/u1").status_code == 404  # nothing stored


def test_consent_at_null_or_left_out_is_now_and_user_id_null_is_the_paths(local: LocalServer) -> None:
    """What the document allows, the server takes: `at: null` (now), `"user_id": null` in a PUT or
    PATCH body (compared as the string 'None' before), a dry run's profile consent without `at` or
    with `at: null` (the run's start)."""
    now = local.clock.now().isoformat().replace("+00:00", "Z")
    put = local.client.put("/v1/profiles/u1", json={"user_id": None, "consents": [{**CONSENT, "at": None}]})
    assert put.status_code == 200, put.text
    assert [c["at"] for c in put.json()["consents"]] == [now]
    reply = local.client.post("/v1/profiles/u1/consents", json={**CONSENT, "granted": False, "at": None})
    assert reply.status_code == 201, reply.text
    assert [c["at"] for c in reply.json()["consents"]] == [now, now]
    patch = local.client.patch("/v1/profiles/u1", json={"user_id": None, "consents": [{**CONSENT, "at": None}]})
    assert patch.status_code == 200, patch.text
    assert [(c["granted"], c["at"]) for c in patch.json()["consents"]] == [(True, now), (False, now), (True, now)]
    sms = {"channel": "sms", "category": "transactional", "granted": True}
    dry = local.client.post("/v1/journeys/order-updates/simulate", json={
        "events": [{"type": "order.placed", "user_id": u, "timestamp": "2026-01-05T10:00:00Z",
                    "properties": {"order_id": "o1"}} for u in ("u8", "u9")],
        "profiles": [{"user_id": "u8", "phone": "+14155550100", "consents": [sms]},
                     {"user_id": "u9", "phone": "+14155550101", "consents": [{**sms, "at": None}]}]})
    assert dry.status_code == 200, dry.text
    assert sorted((m["user_id"], m["channel"]) for m in dry.json()["messages"]) == [("u8", "sms"), ("u9", "sms")]


def test_a_user_id_of_another_user_in_a_put_or_patch_body_is_a_409(local: LocalServer) -> None:
    put_profile(local, "u1")
    for method in ("PUT", "PATCH"):
        reply = local.client.request(method, "/v1/profiles/u1", json={"user_id": "u2", "timezone": "UTC"})
        assert reply.status_code == 409 and reply.json()["errors"][0]["field"] == "user_id", (method, reply.text)
    assert local.client.get("/v1/profiles/u2").status_code == 404


def test_a_value_the_database_refuses_is_a_422_not_an_outage(start_local: StartLocal, tmp_path: Path,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    """An integrity error (here a trigger of the database's own refusing the row) is the request's
    fault: 422, and no 'database is unavailable' in the log; /readyz stays 200."""
    url = f"sqlite:///{tmp_path / 'j.db'}"
    local = start_local(db=url)
    put_profile(local, "u1")
    with sqlite3.connect(tmp_path / "j.db") as conn:
        conn.execute("CREATE TRIGGER refuse BEFORE INSERT ON consents WHEN NEW.source = 'refused' "
                     "BEGIN SELECT RAISE(ABORT, 'this consent is refused'); END")
    with caplog.at_level(logging.INFO, logger="journey.database"):
        reply = local.client.post("/v1/profiles/u1/consents", json={**CONSENT, "source": "refused"})
        ready = local.client.get("/readyz")
    assert reply.status_code == 422, reply.text
    assert "this consent is refused" in reply.json()["detail"]
    assert ready.status_code == 200
    assert outage_lines(caplog) == []
    assert local.client.post("/v1/profiles/u1/consents", json=CONSENT).status_code == 201
