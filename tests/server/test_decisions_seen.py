"""Every decision the runtime makes shows through the API and the decision log: a send put off by
quiet hours (with when it will be decided again), and an instance that fails (logged and
counted by journey and step)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from engine.clock import VirtualClock
from tests.server.conftest import StartLocal, metric, post_events, put_profile

NIGHT = datetime(2026, 1, 5, 2, 19, tzinfo=UTC)
PROMO = """\
id: promo
category: marketing
trigger: {event: promo.go}
steps:
  - {id: tell, type: send, message: sale, channels: [push]}
messages:
  sale:
    push: {title: "Sale", body: "Today only"}
"""
DELIVERY = """\
id: delivery-day
category: transactional
trigger: {event: order.shipped}
steps:
  - {id: until_day, type: wait, until: "event.properties.arrives_at", offset: -1h}
  - {id: heads_up, type: send, message: soon, channels: [push]}
messages:
  soon:
    push: {title: "Tomorrow", body: "Your parcel arrives soon"}
"""


def records(caplog: pytest.LogCaptureFixture, logger: str, msg: str) -> list[dict[str, Any]]:
    return [getattr(r, "fields", {}) for r in caplog.records if r.name == logger and r.getMessage() == msg]


def test_a_send_put_off_by_quiet_hours_shows_in_messages_the_instance_and_the_log(
        start_local: StartLocal, journeys_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A marketing push at 02:19 UTC to a UTC profile waits for 08:00 (the default quiet hours):
    `GET /v1/messages` lists it as deferred with that time, the instance says what it waits for
    and until when, the decision log has a `defer` line; at 08:00 it goes and the list empties."""
    caplog.set_level(logging.INFO, logger="journey.decisions")
    (journeys_dir / "promo.yaml").write_text(PROMO, encoding="utf-8")
    local = start_local(clock=VirtualClock(NIGHT))
    put_profile(local, "owl", "push:marketing")
    assert post_events(local, {"type": "promo.go", "user_id": "owl"}).status_code == 202

    body = local.client.get("/v1/messages", params={"user_id": "owl"}).json()
    assert body["messages"] == []
    [deferred] = body["deferred"]
    assert {k: deferred[k] for k in ("journey_id", "step", "message", "status", "reason")} == {
        "journey_id": "promo", "step": "tell", "message": "sale", "status": "deferred", "reason": "quiet hours"}
    assert _time(deferred["next_attempt_at"]) == datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    [instance] = local.client.get("/v1/users/owl/instances").json()["instances"]
    assert (instance["status"], instance["step"]) == ("active", "tell")
    assert instance["timer"]["kind"] == "defer" and instance["timer"]["reason"] == "quiet hours"
    assert _time(instance["timer"]["due_at"]) == datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    [line] = records(caplog, "journey.decisions", "defer")
    assert (line["user"], line["journey"], line["step"], line["message"], line["reason"]) == (
        "owl", "promo", "tell", "sale", "quiet hours")
    assert _time(line["until"]) == datetime(2026, 1, 5, 8, 0, tzinfo=UTC)

    local.advance(6 * 3600)
    body = local.client.get("/v1/messages", params={"user_id": "owl"}).json()
    assert [(m["message"], m["dispatch"]) for m in body["messages"]] == [("sale", "sent")]
    assert body["deferred"] == []
    [instance] = local.client.get("/v1/users/owl/instances").json()["instances"]
    assert instance["status"] == "completed" and instance["timer"] is None


def test_an_instance_the_runtime_fails_is_logged_and_counted_by_journey_and_step(
        start_local: StartLocal, journeys_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    """An event without the property its `wait until` reads: the instance ends `failed` with the
    reason, a warning names it, and `journey_instance_failures_total{journey,step}` counts it."""
    caplog.set_level(logging.INFO, logger="journey.server")
    (journeys_dir / "delivery-day.yaml").write_text(DELIVERY, encoding="utf-8")
    local = start_local()
    put_profile(local, "ann", "push:transactional")
    assert post_events(local, {"type": "order.shipped", "user_id": "ann", "properties": {}}).status_code == 202

    [instance] = local.client.get("/v1/users/ann/instances").json()["instances"]
    assert instance["status"] == "failed" and "until_day" in instance["reason"]
    [line] = records(caplog, "journey.server", "instance failed")
    assert (line["user"], line["journey"], line["step"], line["reason"]) == (
        "ann", "delivery-day", "until_day", instance["reason"])
    assert metric(local, "journey_instance_failures_total", journey="delivery-day", step="until_day") == 1


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
