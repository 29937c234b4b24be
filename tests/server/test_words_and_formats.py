"""What the API says, word for word: one timestamp form (`Z`) in every answer, the OpenAPI
problem example is what a 422 really looks like, a message's `status` and `dispatch` do not
contradict each other, and one spelling of "cancelled"."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tests.server.conftest import T0, LocalServer, StartLocal, post_events, put_profile

STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:Z|[+-]\d\d:?\d\d)?")
BROADCAST = """\
id: broadcast
name: Broadcast
category: transactional
trigger:
  at: "2026-01-05T12:00:00Z"
  audience: "true"
steps:
  - {id: hello, type: send, message: hello, channels: [push]}
messages:
  hello:
    push: {title: "Hello", body: "News"}
"""


def _stamps(document: Any) -> list[str]:
    return STAMP.findall(json.dumps(document))


def test_every_timestamp_the_api_answers_is_utc_with_a_z(start_local: StartLocal, journeys_dir: Path,
                                                         tmp_path: Path) -> None:
    (journeys_dir / "broadcast.yaml").write_text(BROADCAST, encoding="utf-8")
    local = start_local(db=f"sqlite:///{tmp_path / 'journey.db'}")
    put_profile(local, "A", "sms:transactional")
    post_events(local, {"type": "order.placed", "user_id": "A", "timestamp": "2026-01-05T11:00:00+01:00",
                        "properties": {"order_id": "A1"}})
    post_events(local, {"type": "account.created", "user_id": "A"})
    local.advance(3)
    answers = [local.client.post("/v1/journeys/welcome/stop").json(),
               local.client.post("/v1/journeys/broadcast/runs").json()]
    local.settle()
    for path in ("/v1/journeys", "/v1/journeys/broadcast", "/v1/journeys/welcome", "/v1/users/A/instances",
                 "/v1/profiles/A", "/v1/profiles/A/export", "/v1/consents", "/v1/journeys/broadcast/runs"):
        reply = local.client.get(path)
        assert reply.status_code == 200, (path, reply.text)
        answers.append(reply.json())
    answers.append(local.client.get("/v1/messages", params={"user_id": "A"}).json())
    answers.append(local.client.post("/v1/journeys/order-updates/simulate", json={
        "events": [{"type": "order.placed", "user_id": "A", "timestamp": "2026-01-05T11:00:00+01:00",
                    "properties": {"order_id": "A1"}}],
        "profiles": [{"user_id": "A", "push_token": "t", "timezone": "UTC"}]}).json())
    stamps = [stamp for answer in answers for stamp in _stamps(answer)]
    assert len(stamps) > 20
    assert [s for s in stamps if not s.endswith("Z")] == []


def test_the_openapi_problem_example_is_what_a_422_answers(local: LocalServer) -> None:
    document = local.client.get("/openapi.json").json()
    [example] = document["components"]["schemas"]["Problem"]["examples"]
    reply = post_events(local, {"type": "order.placed"})
    assert reply.status_code == 422 and reply.headers["content-type"] == "application/problem+json"
    assert reply.json() == example
    too_big = local.client.post("/v1/events", content=b" " * (1024 * 1024 + 1),
                                headers={"Content-Type": "application/json"})
    assert too_big.json()["title"] == "Content Too Large"


def test_a_delivered_message_reads_delivered_and_was_dispatched(local: LocalServer) -> None:
    put_profile(local, "A", "sms:transactional")
    post_events(local, {"type": "order.placed", "user_id": "A", "properties": {"order_id": "A1"}})
    local.settle()
    [push] = local.messages("A")
    post_events(local, {"type": "push.delivered", "user_id": "A", "properties": {"message_id": push["message_id"]}})
    [push] = local.messages("A")
    assert (push["status"], push["dispatch"]) == ("delivered", "sent")
    assert "delivery" not in push
    assert push["at"] == T0.isoformat().replace("+00:00", "Z")
    message = local.client.get("/openapi.json").json()["components"]["schemas"]["Message"]["properties"]
    assert "provider took it" in message["dispatch"]["description"] and "delivered" in message["status"]["description"]


def test_a_stop_counts_its_cancelled_messages_in_the_one_spelling(local: LocalServer) -> None:
    put_profile(local, "A", "sms:transactional")
    post_events(local, {"type": "account.created", "user_id": "A"})
    stopped = local.client.post("/v1/journeys/welcome/stop").json()
    assert stopped["messages_cancelled"] == 1 and "messages_canceled" not in stopped
