"""Input that parses as JSON in some sense but that the server cannot take must still get a 4xx
(SPEC §5: "Bad input gets a 4xx with a message that names the field; never a 500, and nothing
already accepted is lost"). Each was an engine bug, found by these tests and fixed."""

from __future__ import annotations

import json

import httpx

from tests.server.conftest import LocalServer, StartLocal, post_events

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
    profile = fresh_post(local, "/v1/profiles/u1/consents", b'{"channel": "sms", "category": "marketing", '
                         b'"granted": true, "source": "web"}')
    assert profile.status_code == 201
    with httpx.Client(base_url=local.base_url, headers=local.headers, timeout=20) as client:
        attributes = client.put("/v1/profiles/u3", content=b'{"attributes": {"score": Infinity}}', headers=JSON)
    assert attributes.status_code in (400, 422), attributes.text
