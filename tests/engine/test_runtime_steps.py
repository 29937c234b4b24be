"""Each step type, with times asserted to the second (run plain and with state round-trips)."""

from __future__ import annotations

from collections import Counter

from channels import Profile, load_policy
from engine.compiler import load_text
from engine.simulator import parse_events, simulate
from tests.engine.conftest import Simulate, event, profile, sent, statuses

HEAD = """
id: steps
category: transactional
trigger: {event: go}
"""
PING = """
messages:
  ping:
    push: {title: Ping, body: "hello {{ profile.attributes.name | default('you') }}"}
    sms: {text: "hello"}
"""


def test_wait_duration_then_send(simulate: Simulate) -> None:
    result = simulate(HEAD + """
steps:
  - {id: pause, type: wait, duration: 90m}
  - {id: hi, type: send, message: ping, channels: [push]}
""" + PING, [event("go", "u1")], [profile("u1")])
    assert sent(result) == [("u1", "push", "2026-01-05T11:30:00Z")]
    assert result["instances"] == [{"user_id": "u1", "key": None, "status": "completed", "path": ["pause", "hi"]}]


def test_wait_until_local_clock_time(simulate: Simulate) -> None:
    """10:00Z is 11:00 in Berlin: the next 09:00 Berlin is tomorrow 08:00Z."""
    result = simulate(HEAD + """
steps:
  - {id: morning, type: wait, until: "09:00"}
  - {id: hi, type: send, message: ping, channels: [push]}
""" + PING, [event("go", "u1"), event("go", "u2")],
        [profile("u1", timezone="Europe/Berlin"), profile("u2", timezone="America/New_York")])
    assert sent(result) == [("u2", "push", "2026-01-05T14:00:00Z"), ("u1", "push", "2026-01-06T08:00:00Z")]


def test_wait_until_expression_with_offset(simulate: Simulate) -> None:
    result = simulate(HEAD + """
steps:
  - {id: day_before, type: wait, until: "event.properties.starts_at", offset: -24h}
  - {id: hi, type: send, message: ping, channels: [push]}
""" + PING, [event("go", "u1", starts_at="2026-01-10T15:30:00Z"),
             event("go", "u2", starts_at="2026-01-05T12:00:00Z")], [profile("u1"), profile("u2")])
    # u2's reminder time is already past: it is sent at once.
    assert sent(result) == [("u2", "push", "2026-01-05T10:00:00Z"), ("u1", "push", "2026-01-09T15:30:00Z")]


def test_wait_until_expression_failing_fails_the_instance(simulate: Simulate) -> None:
    result = simulate(HEAD + """
steps:
  - {id: day_before, type: wait, until: "event.properties.starts_at"}
  - {id: hi, type: send, message: ping, channels: [push]}
""" + PING, [event("go", "u1"), event("go", "u2", starts_at="next tuesday")], [profile("u1"), profile("u2")])
    assert statuses(result) == {"u1": "failed", "u2": "failed"}
    assert "starts_at" in result["instances"][0]["reason"]
    assert "is not an RFC 3339 timestamp" in result["instances"][1]["reason"]
    assert result["messages"] == []


WAIT_FOR = HEAD + """
steps:
  - id: confirm
    type: wait_for
    event: order.confirmed
    when: "event.properties.amount > 10"
    timeout: 1d
    on_event: thanks
    on_timeout: chase
  - {id: chase, type: send, message: ping, channels: [sms], next: done}
  - {id: thanks, type: send, message: ping, channels: [push]}
  - {id: done, type: exit}
""" + PING


def test_wait_for_event_arrives(simulate: Simulate) -> None:
    result = simulate(WAIT_FOR, [
        event("go", "u1"),
        event("order.confirmed", "u1", "2026-01-05T10:05:00Z", amount=5),   # `when` false: still waiting
        event("order.confirmed", "u1", "2026-01-05T12:00:00Z", amount=50),
    ], [profile("u1", "sms:transactional")])
    assert sent(result) == [("u1", "push", "2026-01-05T12:00:00Z")]
    assert result["instances"][0]["path"] == ["confirm", "thanks", "done"]


def test_wait_for_times_out(simulate: Simulate) -> None:
    result = simulate(WAIT_FOR, [event("go", "u1")], [profile("u1", "sms:transactional")])
    assert sent(result) == [("u1", "sms", "2026-01-06T10:00:00Z")]
    assert result["instances"][0]["path"] == ["confirm", "chase", "done"]
    assert statuses(result) == {"u1": "completed"}


def test_event_exactly_at_timeout_counts_as_in_time(simulate: Simulate) -> None:
    result = simulate(WAIT_FOR, [event("go", "u1"), event("order.confirmed", "u1", "2026-01-06T10:00:00Z",
                                                          amount=20)], [profile("u1", "sms:transactional")])
    assert [m["step"] for m in result["messages"]] == ["thanks"]


BRANCH = HEAD + """
steps:
  - id: tier
    type: branch
    branches:
      - {when: "profile.attributes.tier == 'gold'", next: gold}
      - {when: "event.properties.value > 100", next: big}
    default: plain
  - {id: gold, type: send, message: ping, channels: [push], next: done}
  - {id: big, type: send, message: ping, channels: [sms], next: done}
  - {id: plain, type: exit}
  - {id: done, type: exit}
""" + PING


def test_branch_takes_first_true_case_else_default(simulate: Simulate) -> None:
    result = simulate(BRANCH, [event("go", "gold", value=500), event("go", "big", value=500),
                               event("go", "plain", value=5)],
                      [profile("gold", "sms:transactional", attributes={"tier": "gold"}),
                       profile("big", "sms:transactional", attributes={"tier": "silver"}),
                       profile("plain", attributes={"tier": "silver"})])
    assert sent(result) == [("gold", "push", "2026-01-05T10:00:00Z"), ("big", "sms", "2026-01-05T10:00:00Z")]
    paths = {i["user_id"]: i["path"] for i in result["instances"]}
    assert paths == {"gold": ["tier", "gold", "done"], "big": ["tier", "big", "done"], "plain": ["tier", "plain"]}


def test_branch_condition_on_missing_attribute_is_false_and_explained(simulate: Simulate) -> None:
    result = simulate(BRANCH, [event("go", "u1", value=1)], [profile("u1")])
    assert result["instances"][0]["path"] == ["tier", "plain"]
    errors = [t for t in result["timeline"] if t["action"] == "condition_error"]
    assert errors and "tier" in errors[0]["detail"]


SPLIT = HEAD + """
steps:
  - {id: ab, type: split, paths: [{weight: 30, next: a}, {weight: 70, next: b}]}
  - {id: a, type: exit}
  - {id: b, type: exit}
"""


def test_split_is_deterministic_per_user_and_follows_weights() -> None:
    journey = load_text(SPLIT, "split.yaml")
    events = parse_events((str(n), event("go", f"user{n}")) for n in range(2000))
    people = [Profile(f"user{n}") for n in range(2000)]
    first = simulate(journey, events, people, load_policy(), keep_trace=False)
    second = simulate(journey, events, people, load_policy(), keep_trace=False)
    assert [i["path"] for i in first["instances"]] == [i["path"] for i in second["instances"]]
    share = Counter(i["path"][1] for i in first["instances"])
    assert 0.26 < share["a"] / 2000 < 0.34


def test_end_of_list_and_exit_step_both_complete(simulate: Simulate) -> None:
    result = simulate(HEAD + """
steps:
  - {id: hi, type: send, message: ping, channels: [push]}
""" + PING, [event("go", "u1")], [profile("u1")])
    assert statuses(result) == {"u1": "completed"}
    assert result["summary"]["completed"] == 1


def test_template_error_skips_the_send_and_the_journey_goes_on(simulate: Simulate) -> None:
    result = simulate(HEAD + """
steps:
  - {id: hi, type: send, message: broken, channels: [push]}
  - {id: after, type: send, message: ping, channels: [push]}
messages:
  broken:
    push: {body: "Your code is {{ event.properties.code }}"}
  ping:
    push: {body: fine}
""", [event("go", "u1")], [profile("u1")])
    assert [m["step"] for m in result["messages"]] == ["after"]
    (skip,) = result["skipped"]
    assert skip["reason"] == "template_error"
    assert skip["decisions"] == [{"channel": "push", "eligible": False, "reason": "template_error"}]
    assert "code" in skip["detail"]
    assert statuses(result) == {"u1": "completed"}
