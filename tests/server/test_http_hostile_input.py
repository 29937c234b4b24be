"""Input that parses as JSON in some sense but that the server cannot take must still get a 4xx
(docs/http.md: "Bad input gets a 4xx with a message that names the field; never a 500, and nothing
already accepted is lost"). Each was an engine bug, found by these tests and fixed."""

from __future__ import annotations

import json
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


def test_a_profile_with_a_lone_surrogate_or_an_infinity_is_a_422_naming_the_field(local: LocalServer) -> None:
    with httpx.Client(base_url=local.base_url, headers=local.headers, timeout=20) as client:
        email = client.put("/v1/profiles/u1", content=b'{"email": "a\\ud800@example.com"}', headers=JSON)
        score = client.put("/v1/profiles/u1", content=b'{"attributes": {"score": 1e999}}', headers=JSON)
    assert email.status_code == 422 and email.json()["error"].startswith("email:"), email.text
    assert score.status_code == 422 and score.json()["error"].startswith("attributes.score:"), score.text


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
