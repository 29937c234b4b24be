"""The HTTP API in-process: ingesting events, API keys, and bad input (docs/formats.md, docs/http.md)."""

from __future__ import annotations

import json

import httpx

from tests.server.conftest import LocalServer, post_events, put_profile


def order(event_id: str | None, user_id: str, order_id: str = "A1") -> dict[str, object]:
    body: dict[str, object] = {"type": "order.placed", "user_id": user_id, "properties": {"order_id": order_id}}
    if event_id is not None:
        body["id"] = event_id
    return body


def test_one_event_is_accepted_and_the_same_id_again_is_a_duplicate(local: LocalServer) -> None:
    put_profile(local, "u1", "sms:transactional")

    first = post_events(local, order("evt-1", "u1"))
    assert first.status_code == 202
    assert first.json() == {"accepted": 1, "duplicates": 0, "rejected": []}

    again = post_events(local, order("evt-1", "u1"))
    assert again.status_code == 202
    assert again.json() == {"accepted": 0, "duplicates": 1, "rejected": []}

    # acknowledged, not processed again: one instance, one push
    local.settle()
    instances = local.client.get("/v1/users/u1/instances").json()["instances"]
    assert len(instances) == 1
    assert [(m["channel"], m["dispatch"]) for m in local.messages("u1")] == [("push", "sent")]
    assert [line["channel"] for line in local.outbox_lines()] == ["push"]


def test_a_batch_counts_an_id_repeated_inside_it_as_one_duplicate(local: LocalServer) -> None:
    batch = {"events": [order("b-1", "u1"), order("b-2", "u2"), order("b-1", "u1"), order(None, "u3")]}
    response = post_events(local, batch)
    assert response.status_code == 202
    assert response.json() == {"accepted": 3, "duplicates": 1, "rejected": []}

    again = post_events(local, {"events": [order("b-2", "u2"), order("b-4", "u4")]})
    assert again.json() == {"accepted": 1, "duplicates": 1, "rejected": []}
    assert len(local.client.get("/v1/users/u1/instances").json()["instances"]) == 1


def test_a_batch_rejects_invalid_items_by_index_and_accepts_the_rest(local: LocalServer) -> None:
    batch = {"events": [
        order("ok-1", "u1"),
        {"type": "order.placed", "properties": {}},                  # no user_id
        {"type": 7, "user_id": "u2"},                                # type is not a string
        order("ok-2", "u3"),
        {"type": "order.placed", "user_id": "u4", "timestamp": "yesterday"},
        {"type": "order.placed", "user_id": "u5", "colour": "red"},  # unknown field
    ]}
    response = post_events(local, batch)
    assert response.status_code == 202
    body = response.json()
    assert body["accepted"] == 2
    assert body["duplicates"] == 0
    rejected = {item["index"]: item["error"] for item in body["rejected"]}
    assert sorted(rejected) == [1, 2, 4, 5]
    assert "user_id" in rejected[1]
    assert "type" in rejected[2]
    assert "timestamp" in rejected[4]
    assert "colour" in rejected[5]

    # the valid ones were processed; the invalid ones left no trace
    def journeys_of(user_id: str) -> list[str]:
        return [i["journey_id"] for i in local.client.get(f"/v1/users/{user_id}/instances").json()["instances"]]

    assert journeys_of("u1") == ["order-updates"]
    assert journeys_of("u3") == ["order-updates"]
    assert journeys_of("u4") == []
    assert journeys_of("u5") == []


def test_api_keys_guard_every_route_but_health_and_docs(local: LocalServer) -> None:
    bare = httpx.Client(base_url=local.base_url, timeout=10)
    try:
        missing = bare.post("/v1/events", json=order("a-1", "u1"))
        assert missing.status_code == 401
        assert "error" in missing.json()
        wrong = bare.post("/v1/events", json=order("a-1", "u1"), headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        not_bearer = bare.get("/v1/journeys", headers={"Authorization": "Basic k1"})
        assert not_bearer.status_code == 401
        for path in ("/v1/journeys", "/v1/messages?user_id=u1", "/v1/users/u1/instances", "/metrics",
                     "/v1/profiles/u1"):
            assert bare.get(path).status_code == 401, path

        second = bare.post("/v1/events", json=order("a-1", "u1"), headers={"Authorization": "Bearer k2"})
        assert second.status_code == 202
        assert second.json()["accepted"] == 1

        assert bare.get("/healthz").status_code == 200
        openapi = bare.get("/openapi.json")
        assert openapi.status_code == 200
        assert "/v1/events" in openapi.json()["paths"]
        assert bare.get("/docs").status_code == 200
    finally:
        bare.close()
    # the rejected requests were not processed: only the one made with k2 was
    assert len(local.client.get("/v1/users/u1/instances").json()["instances"]) == 1


def assert_client_error(response: httpx.Response, status: int, names: str | None = None) -> str:
    assert response.status_code == status, (response.status_code, response.text)
    message = response.json()["error"]
    assert isinstance(message, str) and message
    if names is not None:
        assert names in message, message
    return message


def test_bad_bodies_get_a_4xx_that_names_the_problem_never_a_500(local: LocalServer) -> None:
    client = local.client
    headers = {"Content-Type": "application/json"}

    assert "JSON" in assert_client_error(client.post("/v1/events", content=b'{"type": ', headers=headers), 400)
    assert_client_error(client.post("/v1/events", content=b"\xff\xfe", headers=headers), 400)
    assert_client_error(post_events(local, {"type": "order.placed", "user_id": 5}), 422, "user_id")
    assert_client_error(post_events(local, {"user_id": "u1"}), 422, "type")
    assert_client_error(post_events(local, {"type": "order.placed", "user_id": "u1", "properties": [1]}), 422,
                        "properties")
    assert_client_error(post_events(local, [order("x", "u1")]), 422)
    assert_client_error(post_events(local, {"events": "not a list"}), 422, "events")

    big = json.dumps({"events": [order(f"big-{n}", "u1") for n in range(20_000)]}).encode()
    assert len(big) > 1024 * 1024
    assert_client_error(client.post("/v1/events", content=big, headers=headers), 413)

    def chunks() -> list[bytes]:  # no Content-Length: the limit must hold on the bytes read
        return [big[n:n + 65536] for n in range(0, len(big), 65536)]

    assert_client_error(client.post("/v1/events", content=iter(chunks()), headers=headers), 413)

    assert_client_error(client.put("/v1/profiles/u1", json={"phone": "12345"}), 422, "phone")
    assert_client_error(client.put("/v1/profiles/u1", json={"email": 5}), 422, "email")
    assert_client_error(client.put("/v1/profiles/u1", json={"timezone": "Mars/Olympus"}), 422, "timezone")
    assert_client_error(client.put("/v1/profiles/u1", json="u1"), 422)
    assert_client_error(client.put("/v1/profiles/u1", content=b"{", headers=headers), 400)
    assert_client_error(client.post("/v1/profiles/u1/consents",
                                    json={"channel": "fax", "category": "marketing", "granted": True}),
                        422, "channel")
    assert_client_error(client.post("/v1/profiles/u1/consents",
                                    json={"channel": "sms", "category": "marketing", "granted": "maybe"}),
                        422, "granted")
    assert_client_error(client.get("/v1/profiles/nobody"), 404, "nobody")
    assert_client_error(client.get("/v1/journeys/no-such-journey"), 404, "no-such-journey")
    assert_client_error(client.post("/v1/journeys/no-such-journey/simulate", json={"events": []}), 404)
    assert_client_error(client.post("/v1/journeys/order-updates/simulate", json={"events": 3}), 422, "events")
    assert_client_error(client.post("/v1/journeys/order-updates/simulate",
                                    json={"events": [{"type": "order.placed", "timestamp": "2026-01-05T10:00:00Z"}]}),
                        422, "user_id")
    assert_client_error(client.get("/v1/messages", params={"cursor": "bm90IG91cnM"}), 422, "cursor")  # not ours

    # nothing was lost or half-stored along the way: a good event still goes through
    ok = post_events(local, order("after-errors", "u9"))
    assert ok.status_code == 202 and ok.json()["accepted"] == 1
    assert local.serving(), "the server stopped along the way"
