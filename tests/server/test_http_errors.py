"""One error format: every 4xx and 5xx is RFC 9457 `application/problem+json`, whoever answers it
(FastAPI's router and validation, the bearer check, a handler, the webhooks, a bug), with
`errors: [{field, message}]` when fields are at fault and the first release's `error` member."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from engine.http.problems import field_errors, validation_errors
from tests.server.conftest import LocalServer, post_events

PROBLEM = "application/problem+json"


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """The problem document of `response`, checked for the members every problem has."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["type"] == "about:blank" and body["status"] == status and body["title"]
    assert body["detail"] and body["error"] == body["detail"]
    return body


def test_an_unknown_route_is_a_404_problem(local: LocalServer) -> None:
    body = problem(local.client.get("/v1/nowhere"), 404)
    assert body["title"] == "Not Found" and body["detail"] == "no route GET /v1/nowhere" and "errors" not in body


def test_a_wrong_method_is_a_405_problem_saying_what_is_allowed(local: LocalServer) -> None:
    response = local.client.delete("/v1/events")
    body = problem(response, 405)
    assert body["title"] == "Method Not Allowed" and response.headers["allow"] == "POST"
    assert body["detail"] == "DELETE is not allowed on /v1/events (allowed: POST)"


@pytest.mark.parametrize("method, path, allowed", [
    ("OPTIONS", "/v1/profiles/u1", "DELETE, GET, PATCH, PUT"),  # four routes on one path: the first one's before
    ("PATCH", "/v1/journeys/order-updates/runs", "GET, POST"),
    ("OPTIONS", "/v1/journeys/reload", "POST"),  # the literal path, not /v1/journeys/{journey_id}'s GET
])
def test_a_405_allows_every_method_of_the_path(local: LocalServer, method: str, path: str, allowed: str) -> None:
    response = local.client.request(method, path)
    problem(response, 405)
    assert response.headers["allow"] == allowed


def test_a_batch_holds_only_its_list_and_an_empty_cursor_is_the_start(local: LocalServer) -> None:
    body = problem(post_events(local, {"events": [{"type": "a.b", "user_id": "u1"}], "type": "x"}), 422)
    assert body["errors"] == [{"field": "type", "message": 'unknown field (a batch is {"events": [...]})'}]
    assert problem(local.client.post("/v1/profiles", json={"profiles": [], "extra": 1}), 422)["errors"][0]["field"] \
        == "extra"
    assert local.client.get("/v1/consents", params={"cursor": ""}).status_code == 200


def test_fastapi_validation_is_a_422_problem_naming_the_parameter(local: LocalServer) -> None:
    body = problem(local.client.get("/v1/messages", params={"limit": "many"}), 422)  # a whole number
    assert [e["field"] for e in body["errors"]] == ["limit"]  # as in a body
    assert body["detail"].startswith("limit: ")


def test_a_handler_422_names_its_fields(local: LocalServer) -> None:
    body = problem(post_events(local, {"type": "order.placed"}), 422)
    assert body["errors"] == [{"field": "user_id", "message": "required field is missing"}]
    assert body["detail"] == "user_id: required field is missing"
    profile = problem(local.client.put("/v1/profiles/u1", json={"timezone": "Mars/Olympus", "phone": "12"}), 422)
    assert [e["field"] for e in profile["errors"]] == ["timezone", "phone"], profile


def test_a_batch_still_answers_202_with_its_rejected_items(local: LocalServer) -> None:
    reply = post_events(local, {"events": [{"type": "order.placed", "user_id": "u1"}, {"type": "x"}]})
    assert reply.status_code == 202 and reply.headers["content-type"] == "application/json"
    assert reply.json() == {"accepted": 1, "duplicates": 0,
                            "rejected": [{"index": 1, "error": "user_id: required field is missing"}]}


def test_bad_json_an_oversized_body_and_a_bad_key_are_problems(local: LocalServer) -> None:
    bad = local.client.post("/v1/events", content=b"{not json", headers={"Content-Type": "application/json"})
    assert "errors" not in problem(bad, 400)
    with httpx.Client(base_url=local.base_url, timeout=10) as anonymous:
        denied = anonymous.get("/v1/journeys", headers={"Authorization": "Bearer nope"})
        problem(denied, 401)
        assert denied.headers["www-authenticate"] == "Bearer"
        problem(anonymous.get("/v1/messages", params={"user_id": "a\x00b"}), 422)


def test_problems_of_the_engine_the_privacy_routes_and_the_webhooks(local: LocalServer) -> None:
    assert problem(local.client.get("/v1/profiles/nobody"), 404)["detail"] == "no profile for user 'nobody'"
    assert problem(local.client.post("/v1/journeys/nope/pause"), 404)["detail"] == "no journey 'nope'"
    assert problem(local.client.get("/v1/consents", params={"limit": "0"}), 422)["errors"][0]["field"] == "limit"
    assert problem(local.client.post("/v1/webhooks/twilio/status"), 404)["detail"] == \
        "no twilio provider is configured"
    simulate = problem(local.client.post("/v1/journeys/order-updates/simulate", json={"events": [{}]}), 422)
    assert simulate["errors"] == [{"field": "events[0].timestamp",
                                   "message": "required in a simulation (the clock follows the events)"}]


def test_a_bug_is_a_500_problem(local: LocalServer, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(local.server.store.views, "instances_for_user", broken)
    with httpx.Client(base_url=local.base_url, headers=local.headers, timeout=10) as client:
        body = problem(client.get("/v1/users/u1/instances"), 500)
    assert "a bug" not in body["detail"]  # the log has it; the caller does not


@pytest.mark.parametrize(("detail", "errors"), [
    ("user_id: required field is missing", [("user_id", "required field is missing")]),
    ("events[3].type: expected a non-empty string", [("events[3].type", "expected a non-empty string")]),
    ("profiles[0]: timezone: unknown IANA time zone 'X'", [("profiles[0].timezone", "unknown IANA time zone 'X'")]),
    ("email: bad; consents.0.at: Field required", [("email", "bad"), ("consents.0.at", "Field required")]),
    ("a: one; and then some", [("a", "one; and then some")]),
    ("body is not valid JSON: Expecting value: line 1", []),
    ("no profile for user 'u1'", []),
])
def test_errors_are_read_off_a_message_that_names_its_fields(detail: str, errors: list[tuple[str, str]]) -> None:
    assert field_errors(detail) == [{"field": f, "message": m} for f, m in errors]


@pytest.mark.parametrize(("error", "place", "field", "message"), [
    ({"type": "missing", "loc": ("body", "events", 3, "type"), "msg": "Field required"}, None, "events[3].type",
     "required field is missing"),
    ({"type": "refused", "loc": ("body", "properties"), "msg": "inf is not a finite number",
      "ctx": {"below": ".scores[2]"}}, None, "properties.scores[2]", "inf is not a finite number"),
    ({"type": "refused", "loc": (), "msg": "expected a JSON object, got int", "ctx": {"below": ""}}, "event", "event",
     "expected a JSON object, got int"),
    ({"type": "missing", "loc": ("query", "user_id"), "msg": "Field required"}, None, "user_id",
     "required field is missing"),
    ({"type": "value_error", "loc": ("consents", 0, "at"), "msg": "Value error, no offset"}, "profile",
     "consents[0].at", "no offset"),
])
def test_pydantic_errors_name_the_field_by_its_path(error: dict[str, Any], place: str | None, field: str,
                                                    message: str) -> None:
    assert validation_errors([error], place) == [{"field": field, "message": message}]
