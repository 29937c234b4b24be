"""Waits and timeouts over HTTP, in-process on a virtual clock: a 2-second wait fires after
exactly 2 virtual seconds, not before, and only once, on every store."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from tests.server.conftest import T0, LocalServer, StartLocal, post_events, put_profile

JUST_BEFORE = 2.0 - 0.001  # seconds: a millisecond short of the 2 s wait


def at(message: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(message["at"].replace("Z", "+00:00"))


def by_channel(messages: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {m["channel"]: m for m in messages}


def instances(local: LocalServer, user_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = local.client.get(f"/v1/users/{user_id}/instances").json()["instances"]
    return found


def test_a_two_second_wait_fires_the_second_message_at_two_seconds(any_db: str, start_local: StartLocal) -> None:
    local = start_local(db=any_db)
    put_profile(local, "u1", "sms:transactional")
    response = post_events(local, {"id": "order-1", "type": "order.placed", "user_id": "u1",
                                   "properties": {"order_id": "A1"}})
    assert response.status_code == 202 and response.json()["accepted"] == 1

    local.settle()
    [push] = local.messages("u1")
    assert (push["channel"], push["dispatch"], at(push)) == ("push", "sent", T0)
    assert local.server.next_wake() == T0 + timedelta(seconds=2)
    local.advance(JUST_BEFORE)
    assert list(by_channel(local.messages("u1"))) == ["push"], "the SMS went out before the 2 s wait was over"
    local.advance(2.0 - JUST_BEFORE)

    messages = local.messages("u1")
    assert len(messages) == 2
    push, sms = by_channel(messages)["push"], by_channel(messages)["sms"]
    assert at(sms) == T0 + timedelta(seconds=2) and at(sms) - at(push) == timedelta(seconds=2)
    assert push["content"] == {"title": "Order received", "body": "Order A1 is in"}
    assert sms["content"] == {"text": "Order A1 has shipped"}
    assert sms["encoding"] == "GSM-7" and sms["segments"] == 1
    for message in messages:
        assert message["dispatch"] == "sent"
        assert message["status"] == "sent"
        assert message["attempts"] == 1
        assert message["step"] in ("received", "shipped")
        assert message["decisions"] == [{"channel": message["channel"], "eligible": True, "reason": None}]

    local.advance(60)  # a minute of sweeps: a message sent twice would show
    lines = local.outbox_lines()
    assert sorted(line["message_id"] for line in lines) == sorted(m["message_id"] for m in messages)
    assert {line["channel"]: line["to"] for line in lines} == {"push": "tok-u1", "sms": "+14155550100"}
    assert local.messages("u1") == messages
    assert instances(local, "u1")[0]["status"] == "completed"
    again = post_events(local, {"id": "order-1", "type": "order.placed", "user_id": "u1"})
    assert again.json() == {"accepted": 0, "duplicates": 1, "rejected": []}


def test_wait_for_times_out_into_a_nudge_and_an_answer_in_time_ends_it(local: LocalServer) -> None:
    put_profile(local, "quiet", "sms:transactional")
    put_profile(local, "reviewer", "sms:transactional")
    batch = {"events": [{"type": "delivery.completed", "user_id": "quiet"},
                        {"type": "delivery.completed", "user_id": "reviewer"},
                        {"type": "review.submitted", "user_id": "reviewer", "properties": {"stars": 5}}]}
    assert post_events(local, batch).json()["accepted"] == 3

    local.advance(JUST_BEFORE)
    assert local.messages("quiet") == [], "the nudge came before the 2 s timeout"
    [waiting] = instances(local, "quiet")
    assert (waiting["status"], waiting["step"]) == ("active", "await_review")
    local.advance(2.0 - JUST_BEFORE)

    [nudge] = local.messages("quiet")
    assert at(nudge) == T0 + timedelta(seconds=2)
    assert nudge["step"] == "nudge" and nudge["channel"] == "sms" and nudge["dispatch"] == "sent"
    [done] = instances(local, "quiet")
    assert done["status"] == "completed"
    assert done["path"] == ["await_review", "nudge", "done"]
    [reviewer] = instances(local, "reviewer")
    assert reviewer["status"] == "completed"
    assert reviewer["path"] == ["await_review", "done"]
    assert local.messages("reviewer") == []
