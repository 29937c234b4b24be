"""`POST /v1/journeys/{journey_id}/forecast`: the forecast document over the people posted,
bounded in size, its errors naming the field."""

from __future__ import annotations

from typing import Any

from tests.server.conftest import LocalServer

CONSENTED = [{"channel": c, "category": "transactional", "granted": True} for c in ("push", "sms")]


def people(n: int) -> dict[str, Any]:
    return {"profiles": [{"user_id": f"u{i}", "push_token": f"t{i}", "phone": "+14155550100", "timezone": "UTC",
                          "consents": CONSENTED} for i in range(n)],
            "events": [{"type": "order.placed", "user_id": f"u{i}", "timestamp": "2026-01-05T12:00:00Z",
                        "properties": {"order_id": f"o{i}"}} for i in range(n)]}


def test_a_forecast_counts_every_message_of_the_people_posted(local: LocalServer) -> None:
    reply = local.client.post("/v1/journeys/order-updates/forecast", json={**people(40), "runs": 5, "seed": 3})
    assert reply.status_code == 200, reply.text
    document = reply.json()
    assert (document["journey"], document["profiles"], document["runs"]) == ("order-updates", 40, 5)
    assert document["channels"]["push"]["messages"] == {"mean": 40, "p5": 40, "p95": 40}
    assert document["channels"]["sms"]["messages"]["mean"] == 40
    assert document["cost"]["mean"] == round(40 * 0.0001 + 40 * 0.0083, 6)
    assert 0 < document["reached"]["mean"] <= 40
    again = local.client.post("/v1/journeys/order-updates/forecast", json={**people(40), "runs": 5, "seed": 3})
    assert again.json() == document  # the same seed, the same draws
    assert local.client.get("/v1/profiles/u1").status_code == 404  # nothing stored


def test_a_forecast_too_large_is_refused_naming_runs(local: LocalServer) -> None:
    reply = local.client.post("/v1/journeys/order-updates/forecast", json={**people(12), "runs": 10_000})
    assert reply.status_code == 422
    errors = reply.json()["errors"]
    assert [e["field"] for e in errors] == ["runs"]
    assert "120000 profile-runs" in errors[0]["message"]
    events_only = {"events": people(12)["events"], "runs": 10_000}  # a user with events is a person too
    assert local.client.post("/v1/journeys/order-updates/forecast", json=events_only).status_code == 422


def test_a_forecast_of_no_such_journey_is_a_404_and_a_bad_event_names_its_field(local: LocalServer) -> None:
    assert local.client.post("/v1/journeys/nope/forecast", json=people(1)).status_code == 404
    bad = local.client.post("/v1/journeys/order-updates/forecast", json={"events": [{"type": "order.placed"}]})
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"events[0].timestamp"}


def test_by_names_a_profile_field_or_is_refused_naming_it(local: LocalServer) -> None:
    reply = local.client.post("/v1/journeys/order-updates/forecast", json={**people(4), "runs": 2, "by": "timezone"})
    assert reply.status_code == 200 and set(reply.json()["segments"]["values"]) == {"UTC"}
    refused = local.client.post("/v1/journeys/order-updates/forecast", json={**people(4), "by": "country"})
    assert refused.status_code == 422 and [e["field"] for e in refused.json()["errors"]] == ["by"]
