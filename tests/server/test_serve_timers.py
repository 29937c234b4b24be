"""`journey serve` in real time: waits fire on the wall clock, survive kill -9, and work on PostgreSQL."""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime
from typing import Any

from tests.server.conftest import ServerProcess, StartServer, post_events, put_profile, wait_until


def at(message: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(message["at"].replace("Z", "+00:00"))


def by_channel(messages: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {m["channel"]: m for m in messages}


def all_sent(server: ServerProcess, user_id: str, count: int) -> list[dict[str, Any]] | None:
    """The user's messages once there are `count` of them and every one is marked sent."""
    messages = server.messages(user_id)
    return messages if len(messages) == count and all(m["delivery"] == "sent" for m in messages) else None


def assert_a_two_second_wait_fires_the_second_message(server: ServerProcess) -> None:
    put_profile(server, "u1", "sms:transactional")
    started = time.monotonic()
    response = post_events(server, {"id": "order-1", "type": "order.placed", "user_id": "u1",
                                    "properties": {"order_id": "A1"}})
    assert response.status_code == 202 and response.json()["accepted"] == 1

    def sms_row() -> dict[str, Any] | None:
        return by_channel(server.messages("u1")).get("sms")

    wait_until(lambda: by_channel(server.messages("u1")).get("push"), timeout=5, what="the push")
    assert sms_row() is None, "the SMS went out before the 2 s wait was over"
    sms = wait_until(sms_row, timeout=10, what="the SMS after the 2 s wait")
    seen_after = time.monotonic() - started
    assert 2.0 <= seen_after <= 5.0, f"the SMS appeared {seen_after:.2f} s after the event"

    messages = wait_until(lambda: all_sent(server, "u1", 2), timeout=5, what="both messages sent")
    push = by_channel(messages)["push"]
    assert len(messages) == 2
    assert (at(sms) - at(push)).total_seconds() >= 2.0
    assert (at(sms) - at(push)).total_seconds() < 4.0
    assert push["content"] == {"title": "Order received", "body": "Order A1 is in"}
    assert sms["content"] == {"text": "Order A1 has shipped"}
    assert sms["encoding"] == "GSM-7" and sms["segments"] == 1
    for message in messages:
        assert message["status"] == "sent"
        assert message["attempts"] == 1
        assert message["step"] in ("received", "shipped")
        assert message["decisions"] == [{"channel": message["channel"], "eligible": True, "reason": None}]

    wait_until(lambda: len(server.outbox_lines()) >= 2, timeout=5, what="two lines in outbox.jsonl")
    time.sleep(1.0)  # two more outbox sweeps: a duplicate would show up by now
    lines = server.outbox_lines()
    assert sorted(line["message_id"] for line in lines) == sorted(m["message_id"] for m in messages)
    assert {line["channel"]: line["to"] for line in lines} == {"push": "tok-u1", "sms": "+14155550100"}
    assert server.client.get("/v1/users/u1/instances").json()["instances"][0]["status"] == "completed"


def test_a_two_second_wait_fires_the_second_message_on_sqlite(server: ServerProcess) -> None:
    assert_a_two_second_wait_fires_the_second_message(server)


def test_a_two_second_wait_fires_the_second_message_on_postgresql(postgres_fresh_db_url: str,
                                                                   start_server: StartServer) -> None:
    server = start_server(db=postgres_fresh_db_url, name="postgres")
    assert_a_two_second_wait_fires_the_second_message(server)
    again = post_events(server, {"id": "order-1", "type": "order.placed", "user_id": "u1"})
    assert again.json() == {"accepted": 0, "duplicates": 1, "rejected": []}


def test_wait_for_times_out_into_a_nudge_and_an_answer_in_time_ends_it(server: ServerProcess) -> None:
    put_profile(server, "quiet", "sms:transactional")
    put_profile(server, "reviewer", "sms:transactional")
    started = time.monotonic()
    batch = {"events": [{"type": "delivery.completed", "user_id": "quiet"},
                        {"type": "delivery.completed", "user_id": "reviewer"},
                        {"type": "review.submitted", "user_id": "reviewer", "properties": {"stars": 5}}]}
    assert post_events(server, batch).json()["accepted"] == 3

    nudge = wait_until(lambda: server.messages("quiet"), timeout=10, what="the nudge after the 2 s timeout")[0]
    assert time.monotonic() - started >= 2.0
    assert nudge["step"] == "nudge" and nudge["channel"] == "sms"

    def instance(user_id: str) -> dict[str, Any]:
        found: list[dict[str, Any]] = server.client.get(f"/v1/users/{user_id}/instances").json()["instances"]
        assert len(found) == 1
        return found[0]

    done = wait_until(lambda: instance("quiet")["status"] == "completed" and instance("quiet"), what="completion")
    assert done["path"] == ["await_review", "nudge", "done"]
    assert instance("reviewer")["status"] == "completed"
    assert instance("reviewer")["path"] == ["await_review", "done"]
    assert server.messages("reviewer") == []


def test_pending_timers_survive_kill_9_and_fire_once_after_restart(start_server: StartServer) -> None:
    users = [f"user-{n:02d}" for n in range(20)]
    first = start_server(name="before-kill")
    for user in users:
        put_profile(first, user, "sms:transactional")
    started = time.monotonic()
    batch = {"events": [{"id": f"signup-{user}", "type": "account.created", "user_id": user} for user in users]}
    assert post_events(first, batch).json() == {"accepted": 20, "duplicates": 0, "rejected": []}

    def pushes_sent() -> bool:
        return all(all_sent(first, user, 1) for user in users)

    wait_until(pushes_sent, timeout=2.5, what="20 pushes sent before the 3 s waits are over")
    first.kill()
    assert time.monotonic() - started < 3.0, "too slow to kill the server inside the 3 s wait"
    before = first.outbox_lines()
    assert Counter(line["channel"] for line in before) == {"push": 20}

    second = start_server(db=first.db, name="after-kill")

    def sms_count() -> int:
        return sum(1 for line in second.outbox_lines() if line["channel"] == "sms")

    wait_until(lambda: sms_count() == 20, timeout=10, what="all 20 SMS after the restart")
    wait_until(lambda: all(all_sent(second, user, 2) for user in users), timeout=5,
               what="two sent messages for every user")
    time.sleep(1.0)  # more sweeps: a timer or message handled twice would show up by now

    lines = second.outbox_lines()
    ids = [line["message_id"] for line in lines]
    assert len(ids) == 40
    assert [i for i, n in Counter(ids).items() if n > 1] == []
    api_ids: list[str] = []
    for user in users:
        messages = second.messages(user)
        assert sorted(m["channel"] for m in messages) == ["push", "sms"]
        api_ids += [m["message_id"] for m in messages]
        [instance] = second.client.get(f"/v1/users/{user}/instances").json()["instances"]
        assert instance["status"] == "completed"
        assert instance["path"] == ["hello", "pause", "tips"]
    assert len(set(api_ids)) == 40
    assert set(api_ids) == set(ids)

    again = post_events(second, batch)
    assert again.json() == {"accepted": 0, "duplicates": 20, "rejected": []}
