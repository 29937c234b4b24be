"""Every rejection rule of docs/journeys.md, fed a bad file, asserting the exact `file:line: message`."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.cli import app
from engine.compiler import load_file
from engine.errors import JourneyDefinitionError
from engine.model import WaitStep

HEAD = """\
id: demo
trigger: {event: signup}
"""
MESSAGES = """\
messages:
  hello:
    push: {title: Hi, body: "Welcome {{ profile.attributes.name }}"}
"""


def _problems(tmp_path: Path, body: str) -> list[str]:
    path = tmp_path / "demo.yaml"
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    with pytest.raises(JourneyDefinitionError) as info:
        load_file(path)
    return [str(p).replace(str(tmp_path) + "/", "") for p in info.value.problems]


CASES = {
    "malformed_yaml": (
        HEAD + "steps:\n  - {id: a, type: exit\n",
        ["demo.yaml:4: malformed YAML: expected ',' or '}', but got '<stream end>'"],
    ),
    "unknown_top_key": (
        HEAD + "stepz: []\nsteps:\n  - {id: a, type: exit}\n",
        ["demo.yaml:3: unknown key 'stepz'; did you mean 'steps'?"],
    ),
    "unknown_step_key": (
        HEAD + "steps:\n  - id: a\n    type: send\n    message: hello\n    chanels: [push]\n" + MESSAGES,
        ["demo.yaml:7: step 'a': unknown key 'chanels'; did you mean 'channels'?"],
    ),
    "duplicate_step_ids": (
        HEAD + "steps:\n  - {id: a, type: wait, duration: 1h}\n  - {id: a, type: exit}\n",
        ["demo.yaml:5: step id 'a' repeats (first at line 4)"],
    ),
    "duplicate_yaml_keys": (
        HEAD + "steps:\n  - {id: a, type: send, message: hello}\n" + MESSAGES + "  hello:\n    sms: {text: x}\n",
        ["demo.yaml:8: duplicate key 'hello' (first defined at line 6)"],
    ),
    "dangling_next": (
        HEAD + "steps:\n  - {id: wait_1h, type: wait, duration: 1h, next: sms_nuge}\n  - {id: sms_nudge, type: exit}\n",
        ["demo.yaml:4: step 'wait_1h': next 'sms_nuge' is not a step; did you mean 'sms_nudge'?"],
    ),
    "dangling_branch_target": (
        HEAD + "steps:\n  - id: b\n    type: branch\n    branches:\n      - {when: 'true', next: nowhere}\n"
        "  - {id: c, type: exit}\n",
        ["demo.yaml:7: step 'b': branches 'nowhere' is not a step"],
    ),
    "unreachable_step": (
        HEAD + "steps:\n  - {id: a, type: exit}\n  - {id: b, type: wait, duration: 1h}\n",
        ["demo.yaml:5: step 'b' is unreachable: no step leads to it"],
    ),
    "cycle_without_wait": (
        HEAD + "steps:\n  - {id: a, type: send, message: hello}\n  - {id: b, type: send, message: hello, next: a}\n"
        + MESSAGES,
        ["demo.yaml:4: step 'a': cycle a -> b -> a has no wait or wait_for step: it would loop forever"],
    ),
    "missing_message": (
        HEAD + "steps:\n  - {id: a, type: send, message: helo}\n" + MESSAGES,
        ["demo.yaml:4: step 'a': message 'helo' is not defined; did you mean 'hello'?"],
    ),
    "no_content_for_candidates": (
        HEAD + "steps:\n  - {id: a, type: send, message: hello, channels: [sms, email]}\n" + MESSAGES,
        ["demo.yaml:4: step 'a': message 'hello' has no content for any of its channels: sms, email"],
    ),
    "message_without_content": (
        HEAD + "steps:\n  - {id: a, type: send, message: hello}\nmessages:\n  hello: {}\n",
        ["demo.yaml:6: message 'hello' has no content for any channel"],
    ),
    "trigger_expression_does_not_parse": (
        "id: demo\ntrigger: {event: signup, when: 'event.properties.value >'}\nsteps:\n  - {id: a, type: exit}\n",
        ["demo.yaml:2: trigger: expression 'event.properties.value >' does not parse: "
         "unexpected 'end of template'"],
    ),
    "branch_expression_does_not_parse": (
        HEAD + "steps:\n  - id: b\n    type: branch\n    branches:\n      - {when: 'profile.tier ==', next: c}\n"
        "  - {id: c, type: exit}\n",
        ["demo.yaml:7: step 'b': expression 'profile.tier ==' does not parse: "
         "unexpected 'end of template'"],
    ),
    "template_does_not_parse": (
        HEAD + "steps:\n  - {id: a, type: send, message: hello}\nmessages:\n  hello:\n    sms: {text: 'Hi {{ name'}\n",
        ["demo.yaml:7: message 'hello': sms: template does not parse: "
         "unexpected end of template, expected 'end of print statement'."],
    ),
    "bad_duration": (
        HEAD + "steps:\n  - {id: a, type: wait, duration: 2x}\n",
        ["demo.yaml:4: step 'a': duration: invalid duration '2x': use 30s, 15m, 2h, 1d, 1w or ISO 8601 like PT2H"],
    ),
    "unknown_step_type": (
        HEAD + "steps:\n  - {id: a, type: sleep}\n",
        ["demo.yaml:4: step 'a': unknown step type 'sleep'; use one of send, wait, wait_for, branch, split, exit, "
         "digest, throttle"],
    ),
    "unknown_channel": (
        HEAD + "steps:\n  - {id: a, type: send, message: hello, channels: [fax]}\n" + MESSAGES,
        ["demo.yaml:4: step 'a': channels[0]: 'fax' is not allowed: expected 'push', 'in_app', 'email', "
         "'sms', 'mms', 'rcs' or 'webhook'"],
    ),
    "wait_needs_duration_or_until": (
        HEAD + "steps:\n  - {id: a, type: wait}\n",
        ["demo.yaml:4: step 'a': a wait needs exactly one of 'duration' or 'until'"],
    ),
    "missing_trigger": (
        "id: demo\nsteps:\n  - {id: a, type: exit}\n",
        ["demo.yaml:1: trigger: required key is missing"],
    ),
    "repeated_id_is_no_cycle": (
        HEAD + "steps:\n  - {id: a, type: send, message: hello}\n  - {id: a, type: exit}\n" + MESSAGES,
        ["demo.yaml:5: step id 'a' repeats (first at line 4)"],
    ),
    "unknown_name_in_template": (
        HEAD + "steps:\n  - {id: a, type: send, message: hello}\nmessages:\n  hello:\n"
        "    sms: {text: 'Hi {{ user.first_name }}'}\n",
        ["demo.yaml:7: message 'hello': sms.text: unknown name 'user'; use event, profile, journey, now or "
         "preferences_url (did you mean 'profile.attributes.first_name'?)"],
    ),
    "unknown_name_in_nested_content": (
        HEAD + "steps:\n  - {id: a, type: send, message: hello}\nmessages:\n  hello:\n    rcs:\n"
        "      text: Hi\n      suggestions:\n        - {reply: 'Yes'}\n"
        "        - {open_url: '{{ link }}', text: View}\n",
        ["demo.yaml:11: message 'hello': rcs.suggestions[1].open_url: unknown name 'link'; "
         "use event, profile, journey, now or preferences_url"],
    ),
    "unknown_name_in_expression": (
        HEAD + "steps:\n  - id: b\n    type: branch\n    branches:\n"
        "      - {when: \"customer.tier == 'gold'\", next: c}\n  - {id: c, type: exit}\n",
        ["demo.yaml:7: step 'b': expression \"customer.tier == 'gold'\": unknown name 'customer'; "
         "use event, profile, journey, now or preferences_url (did you mean 'profile.attributes.tier'?)"],
    ),
    "unknown_name_in_trigger": (
        "id: demo\ntrigger: {event: signup, when: 'evnt.properties.value > 1'}\nsteps:\n  - {id: a, type: exit}\n",
        ["demo.yaml:2: trigger: expression 'evnt.properties.value > 1': unknown name 'evnt'; "
         "use event, profile, journey, now or preferences_url (did you mean 'event.properties.value'?)"],
    ),
    "wait_for_event_and_events": (
        HEAD + "steps:\n  - {id: a, type: wait_for, event: x, events: [y], timeout: 1d}\n",
        ["demo.yaml:4: step 'a': a wait_for needs exactly one of 'event' or 'events'"],
    ),
    "wait_for_event_listed_twice": (
        HEAD + "steps:\n  - {id: a, type: wait_for, events: [x, x], timeout: 1d}\n",
        ["demo.yaml:4: step 'a': events: an event type is listed twice"],
    ),
    "wait_for_event_list_and_events": (
        HEAD + "steps:\n  - {id: a, type: wait_for, event: [x], events: [y], timeout: 1d}\n",
        ["demo.yaml:4: step 'a': a wait_for needs exactly one of 'event' or 'events'"],
    ),
    "wait_for_event_list_listed_twice": (
        HEAD + "steps:\n  - {id: a, type: wait_for, event: [x, x], timeout: 1d}\n",
        ["demo.yaml:4: step 'a': event: an event type is listed twice"],
    ),
    "on_event_names_an_event_not_waited_for": (
        HEAD + "steps:\n  - id: a\n    type: wait_for\n    events: [order.paid, order.cancelled]\n    timeout: 1d\n"
        "    on_event:\n      order.payd: b\n  - {id: b, type: exit}\n",
        ["demo.yaml:9: step 'a': on_event 'order.payd' is not one of its events (order.paid, order.cancelled); "
         "did you mean 'order.paid'?"],
    ),
    "bad_lookback": (
        HEAD + "steps:\n  - {id: a, type: wait_for, event: x, lookback: soon, timeout: 1d}\n",
        ["demo.yaml:4: step 'a': lookback: invalid duration 'soon': use 30s, 15m, 2h, 1d, 1w or ISO 8601 like PT2H"],
    ),
    "if_past_without_until_expression": (
        HEAD + "steps:\n  - {id: a, type: wait, duration: 1h, if_past: exit}\n",
        ["demo.yaml:4: step 'a': 'if_past' only applies to 'until: <expression>'"],
    ),
    "if_past_names_no_step": (
        HEAD + "steps:\n  - {id: a, type: wait, until: event.properties.at, if_past: nowhere}\n",
        ["demo.yaml:4: step 'a': if_past 'nowhere' is not a step"],
    ),
    "calendar_offset_unknown_unit": (
        HEAD + "steps:\n  - {id: a, type: wait, until: event.properties.at, offset: {day: -1}}\n",
        ["demo.yaml:4: step 'a': offset: unknown key 'day'; did you mean 'days'?"],
    ),
    "throttle_without_period": (
        HEAD + "steps:\n  - {id: a, type: throttle, limit: 1}\n",
        ["demo.yaml:4: step 'a': period: required key is missing"],
    ),
    "on_throttled_names_no_step": (
        HEAD + "steps:\n  - {id: a, type: throttle, limit: 1, period: 1d, on_throttled: nowhere}\n",
        ["demo.yaml:4: step 'a': on_throttled 'nowhere' is not a step"],
    ),
    "digest_without_window": (
        HEAD + "steps:\n  - {id: a, type: digest, count: 5}\n",
        ["demo.yaml:4: step 'a': a digest needs 'window' or 'until' (a count alone could wait forever)"],
    ),
    "expires_and_expires_after": (
        HEAD + "steps:\n  - {id: a, type: send, message: hello, expires: event.properties.at, expires_after: 2h}\n"
        + MESSAGES,
        ["demo.yaml:4: step 'a': a send takes 'expires' or 'expires_after', not both"],
    ),
    "limits_without_per": (
        HEAD + "limits: {messages: 2}\nsteps:\n  - {id: a, type: send, message: hello}\n" + MESSAGES,
        ["demo.yaml:3: limits.per: required key is missing"],
    ),
    "bad_journey_id": (
        "id: Demo Journey\ntrigger: {event: x}\nsteps:\n  - {id: a, type: exit}\n",
        ["demo.yaml:1: id: String should match pattern '^[a-z0-9][a-z0-9._-]*$'"],
    ),
}


@pytest.mark.parametrize("body, expected", CASES.values(), ids=CASES.keys())
def test_each_rule_reports_file_line_and_message(tmp_path: Path, body: str, expected: list[str]) -> None:
    assert _problems(tmp_path, body) == expected


def test_all_problems_of_a_file_are_reported_at_once(tmp_path: Path) -> None:
    body = (
        HEAD + "steps:\n  - {id: a, type: send, message: helo, next: zz}\n  - {id: b, type: exit}\n"
        "  - {id: b, type: exit}\n" + MESSAGES
    )
    problems = _problems(tmp_path, body)
    assert problems == [
        "demo.yaml:4: step 'a': message 'helo' is not defined; did you mean 'hello'?",
        "demo.yaml:4: step 'a': next 'zz' is not a step",
        "demo.yaml:6: step id 'b' repeats (first at line 5)",
    ]


def test_structural_and_cross_reference_problems_are_reported_together(tmp_path: Path) -> None:
    """A malformed step is only known by its id; the other steps are checked in the same run."""
    body = (
        HEAD + "steps:\n  - {id: a, type: wait, duration: 2x}\n  - {id: b, type: wait, duration: 1h, next: zz}\n"
        "  - {id: c, type: send, message: helo}\n" + MESSAGES
    )
    assert _problems(tmp_path, body) == [
        "demo.yaml:4: step 'a': duration: invalid duration '2x': use 30s, 15m, 2h, 1d, 1w or ISO 8601 like PT2H",
        "demo.yaml:5: step 'b': next 'zz' is not a step",
        "demo.yaml:6: step 'c': message 'helo' is not defined; did you mean 'hello'?",
    ]


def test_validate_cli_reports_an_unknown_key_a_dangling_next_and_an_unknown_name_in_one_run(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text(
        HEAD + "steps:\n  - id: nudge\n    type: send\n    message: hello\n    chanels: [sms]\n"
        "  - {id: pause, type: wait, duration: 1h, next: nudgee}\n"
        "messages:\n  hello:\n    sms: {text: 'Hi {{ user.first_name }}'}\n"
    )
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"{path}:7: step 'nudge': unknown key 'chanels'; did you mean 'channels'?",
        f"{path}:8: step 'pause': next 'nudgee' is not a step; did you mean 'nudge'?",
        f"{path}:11: message 'hello': sms.text: unknown name 'user'; use event, profile, journey, now or "
        "preferences_url (did you mean 'profile.attributes.first_name'?)",
    ]


OWN_NAMES = "{% set n = 3 %}{{ n }} {% for item in event.properties['items'] %}{{ loop.index }}. {{ item }}{% endfor %}"


def test_names_a_template_sets_itself_are_allowed(tmp_path: Path) -> None:
    """`set` and `for` names (and `loop`) are the template's own: no unknown-name error, and it renders."""
    (tmp_path / "own.yaml").write_text(
        HEAD + "steps:\n  - {id: a, type: send, message: hello}\nmessages:\n  hello:\n"
        f'    sms: {{text: "{OWN_NAMES} {{{{ journey.id }}}}"}}\n'
    )
    context = {"event": {"properties": {"items": ["x", "y"]}}, "profile": {}, "journey": {"id": "demo"}}
    rendered = load_file(tmp_path / "own.yaml").render_channels("hello", ["sms"], context)
    assert (rendered.contents, rendered.errors) == ({"sms": {"text": "3 1. x2. y demo"}}, {})


def test_a_cycle_through_a_wait_is_allowed(tmp_path: Path) -> None:
    path = tmp_path / "loop.yaml"
    path.write_text(
        HEAD + "steps:\n  - {id: a, type: send, message: hello}\n  - {id: pause, type: wait, duration: 1d, next: a}\n"
        + MESSAGES
    )
    journey = load_file(path)
    assert journey.graph.has_edge("pause", "a")


def test_unquoted_clock_time_stays_a_time(tmp_path: Path) -> None:
    """YAML 1.1 reads `21:00` as the integer 1260; authors mean a clock time."""
    path = tmp_path / "t.yaml"
    path.write_text(HEAD + "steps:\n  - {id: a, type: wait, until: 09:30}\n")
    step = load_file(path).step("a")
    assert isinstance(step, WaitStep)
    assert step.until == "09:30"


def test_validate_cli_exits_1_with_problem_lines(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(HEAD + "steps:\n  - {id: a, type: wait, duration: 1h, next: b}\n")
    (tmp_path / "good.yaml").write_text("id: good\ntrigger: {event: x}\nsteps:\n  - {id: a, type: exit}\n")
    result = CliRunner().invoke(app, ["validate", str(tmp_path)])
    assert result.exit_code == 1
    assert f"{tmp_path}/bad.yaml:4: step 'a': next 'b' is not a step" in result.output


def test_validate_cli_rejects_two_files_with_one_id(tmp_path: Path) -> None:
    for name in ("one.yaml", "two.yaml"):
        (tmp_path / name).write_text("id: same\ntrigger: {event: x}\nsteps:\n  - {id: a, type: exit}\n")
    result = CliRunner().invoke(app, ["validate", str(tmp_path)])
    assert result.exit_code == 1
    assert f"{tmp_path}/two.yaml:1: journey id 'same' is also used by {tmp_path}/one.yaml" in result.output


def test_validate_cli_names_a_missing_path(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["validate", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 1
    assert "nope.yaml: no such file or folder" in result.output
