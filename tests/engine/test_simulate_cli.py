"""`journey simulate` as a user runs it: JSON document shape, tables, and bad input named by file:line."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from engine.cli import app

JOURNEY = """
id: nudge
trigger: {event: cart.abandoned}
steps:
  - {id: wait_1h, type: wait, duration: 1h}
  - {id: nudge, type: send, message: reminder, channels: [push, sms]}
  - {id: done, type: exit}
messages:
  reminder:
    push: {title: "Forgot something?", body: "{{ event.properties.items }} items wait"}
    sms: {text: "Your cart: {{ event.properties.url }}"}
"""
PROFILES = [
    {"user_id": "u1", "push_token": "t1", "phone": "+14155550101", "timezone": "Europe/London",
     "consents": [{"channel": "push", "category": "marketing", "granted": True, "source": "app",
                   "at": "2025-12-01T00:00:00Z"}]},
    {"user_id": "u2", "phone": "+14155550102"},
]
EVENTS = [
    {"id": "e1", "type": "cart.abandoned", "user_id": "u1", "timestamp": "2026-01-05T10:00:00Z",
     "properties": {"items": 2, "url": "https://shop.test/c/1"}},
    {"id": "e2", "type": "cart.abandoned", "user_id": "u2", "timestamp": "2026-01-05T10:00:00Z",
     "properties": {"items": 1, "url": "https://shop.test/c/2"}},
]


def _files(tmp_path: Path, events: list[object] | None = None, journey: str = JOURNEY,
           profiles: list[dict[str, object]] = PROFILES) -> list[str]:
    (tmp_path / "j.yaml").write_text(journey)
    (tmp_path / "e.jsonl").write_text("\n".join(json.dumps(e) for e in (events or EVENTS)) + "\n")
    (tmp_path / "p.jsonl").write_text("\n".join(json.dumps(p) for p in profiles) + "\n")
    return [str(tmp_path / "j.yaml"), "--events", str(tmp_path / "e.jsonl"), "--profiles", str(tmp_path / "p.jsonl")]


def test_json_document_has_the_spec_shape(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["simulate", *_files(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["journey"] == "nudge"
    assert doc["summary"] == {"users": 2, "entered": 2, "completed": 2, "exited": 0, "converted": 0,
                              "conversions": 0, "active": 0, "failed": 0, "messages": {"push": 1}, "cost": 0.0001}
    assert doc["messages"] == [{
        "user_id": "u1", "at": "2026-01-05T11:00:00Z", "step": "nudge", "channel": "push", "message": "reminder",
        "locale": None,
        "content": {"title": "Forgot something?", "body": "2 items wait"}, "encoding": None, "segments": None,
        "cost": 0.0001, "decisions": [{"channel": "push", "eligible": True, "reason": None},
                                      {"channel": "sms", "eligible": False, "reason": "no_consent"}]}]
    assert doc["skipped"] == [{
        "user_id": "u2", "at": "2026-01-05T11:00:00Z", "step": "nudge", "message": "reminder",
        "reason": "no_eligible_channel", "decisions": [{"channel": "push", "eligible": False, "reason": "no_address"},
                                                        {"channel": "sms", "eligible": False, "reason": "no_consent"}]}]
    assert doc["instances"][0] == {"user_id": "u1", "key": None, "status": "completed",
                                   "path": ["wait_1h", "nudge", "done"]}
    assert {"at": "2026-01-05T10:00:00Z", "user_id": "u1", "step": "wait_1h", "action": "wait"} in doc["timeline"]


def test_tables_without_json(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["simulate", *_files(tmp_path)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "no_eligible_channel" in result.output
    assert "sms no_consent" in result.output
    assert "funnel" in result.output and "totals" in result.output


def test_bad_event_line_is_named(tmp_path: Path) -> None:
    events = [EVENTS[0], {"type": "cart.abandoned", "timestamp": "2026-01-05T10:00:00Z"}]
    result = CliRunner().invoke(app, ["simulate", *_files(tmp_path, events)])
    assert result.exit_code == 1
    assert f"{tmp_path}/e.jsonl:2: user_id: required field is missing" in result.output


def test_invalid_json_line_is_named(tmp_path: Path) -> None:
    args = _files(tmp_path)
    (tmp_path / "e.jsonl").write_text(json.dumps(EVENTS[0]) + "\n{not json\n")
    result = CliRunner().invoke(app, ["simulate", *args])
    assert result.exit_code == 1
    assert f"{tmp_path}/e.jsonl:2: invalid JSON" in result.output


def test_event_without_offset_is_rejected(tmp_path: Path) -> None:
    events = [{**EVENTS[0], "timestamp": "2026-01-05T10:00:00"}]
    result = CliRunner().invoke(app, ["simulate", *_files(tmp_path, events)])
    assert result.exit_code == 1
    assert "e.jsonl:1: timestamp: '2026-01-05T10:00:00' has no time zone offset" in result.output


def test_bad_profile_is_named(tmp_path: Path) -> None:
    args = _files(tmp_path)
    (tmp_path / "p.jsonl").write_text(json.dumps({"user_id": "u1", "phone": "555-1234"}) + "\n")
    result = CliRunner().invoke(app, ["simulate", *args])
    assert result.exit_code == 1
    assert f"{tmp_path}/p.jsonl:1: phone" in result.output


def test_missing_events_file(tmp_path: Path) -> None:
    args = _files(tmp_path)
    args[2] = str(tmp_path / "nope.jsonl")
    result = CliRunner().invoke(app, ["simulate", *args])
    assert result.exit_code == 1
    assert "nope.jsonl: No such file or directory" in result.output


def test_policy_file_overrides_prices(tmp_path: Path) -> None:
    (tmp_path / "policy.yaml").write_text("channels:\n  push: {cost: 0.5}\n")
    result = CliRunner().invoke(app, ["simulate", *_files(tmp_path), "--policy", str(tmp_path / "policy.yaml"),
                                      "--json"])
    assert json.loads(result.stdout)["summary"]["cost"] == 0.5


def test_policy_file_with_unquoted_quiet_hours(tmp_path: Path) -> None:
    """`start: 22:00` unquoted is a clock time in a policy file, as it is in a journey file."""
    root = Path(__file__).resolve().parents[2]
    example = root / "examples" / "cart-abandonment"
    (tmp_path / "policy.yaml").write_text("quiet_hours:\n  start: 22:00\n  end: 07:00\n")
    result = CliRunner().invoke(app, [
        "simulate", str(root / "journeys" / "cart-abandonment.yaml"), "--events", str(example / "events.jsonl"),
        "--profiles", str(example / "profiles.jsonl"), "--policy", str(tmp_path / "policy.yaml"), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["summary"]["users"] == 5


HTML_JOURNEY = """
id: receipt
category: transactional
trigger: {event: order.placed}
steps:
  - {id: receipt, type: send, message: receipt, channels: [email], strategy: first}
messages:
  receipt:
    email:
      subject: "Order {{ event.properties.note }}"
      body: "Note: {{ event.properties.note }}"
      html: "<p>Hi {{ profile.attributes.name }}, note: {{ event.properties.note }}</p>"
"""


def test_email_html_escapes_what_the_template_inserts(tmp_path: Path) -> None:
    event = {"type": "order.placed", "user_id": "u1", "timestamp": "2026-01-05T10:00:00Z",
             "properties": {"note": "<script>alert(1)</script> & more"}}
    person = {"user_id": "u1", "email": "u1@example.com", "attributes": {"name": "Ann & <b>Bob</b>"}}
    result = CliRunner().invoke(app, ["simulate", *_files(tmp_path, [event], HTML_JOURNEY, [person]), "--json"])
    assert result.exit_code == 0, result.output
    [message] = json.loads(result.stdout)["messages"]
    assert message["content"] == {
        "subject": "Order <script>alert(1)</script> & more",
        "body": "Note: <script>alert(1)</script> & more",
        "html": "<p>Hi Ann &amp; &lt;b&gt;Bob&lt;/b&gt;, note: &lt;script&gt;alert(1)&lt;/script&gt; &amp; more</p>",
    }


FLORIDA_JOURNEY = """
id: sale
trigger: {event: sale.started}
steps:
  - {id: first, type: send, message: sale, channels: [sms], strategy: first}
  - {id: w1, type: wait, duration: 1h}
  - {id: second, type: send, message: sale, channels: [mms], strategy: first}
  - {id: w2, type: wait, duration: 1h}
  - {id: third, type: send, message: sale, channels: [sms], strategy: first}
  - {id: w3, type: wait, duration: 1h}
  - {id: fourth, type: send, message: sale, channels: [sms], strategy: first}
messages:
  sale:
    sms: {text: "Sale today: https://shop.test/s"}
    mms: {text: "Sale today", media_url: "https://shop.test/sale.png"}
"""


def test_florida_texts_wait_until_8am_and_stop_at_three_a_day(tmp_path: Path) -> None:
    """A Miami number, no time zone: the 20:30 EDT text waits for 08:00 (Florida: 08:00-20:00), and the
    fourth text within 24 h is capped (Florida: 3 across sms, mms and rcs), though sms alone has had 2."""
    grants = [{"channel": c, "category": "marketing", "granted": True, "source": "web", "at": "2026-06-01T00:00:00Z"}
              for c in ("sms", "mms")]
    people: list[dict[str, object]] = [{"user_id": "miami", "phone": "+13055550123", "consents": grants},
                                       {"user_id": "nyc", "phone": "+12125550123", "consents": grants}]
    events: list[object] = [{"type": "sale.started", "user_id": u, "timestamp": "2026-07-02T00:30:00Z"}
                            for u in ("miami", "nyc")]
    result = CliRunner().invoke(app, ["simulate", *_files(tmp_path, events, FLORIDA_JOURNEY, people), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    sent = [(m["user_id"], m["step"], m["channel"], m["at"]) for m in doc["messages"]]
    assert [s for s in sent if s[0] == "miami"] == [
        ("miami", "first", "sms", "2026-07-02T12:00:00Z"),  # 08:00 EDT
        ("miami", "second", "mms", "2026-07-02T13:00:00Z"),
        ("miami", "third", "sms", "2026-07-02T14:00:00Z"),
    ]
    assert doc["skipped"] == [{
        "user_id": "miami", "at": "2026-07-02T15:00:00Z", "step": "fourth", "message": "sale",
        "reason": "no_eligible_channel",
        "decisions": [{"channel": "sms", "eligible": False, "reason": "frequency_cap"}]}]
    nyc = [s for s in sent if s[0] == "nyc"]
    assert nyc[0] == ("nyc", "first", "sms", "2026-07-02T00:30:00Z")  # 20:30 EDT is no quiet hour in New York
    assert len(nyc) == 4


def test_a_consent_without_at_counts_from_the_start_of_the_run(tmp_path: Path) -> None:
    """As the API does: `at` defaults (to the run's start), where it used to be required."""
    journey = tmp_path / "notice.yaml"
    journey.write_text("id: notice\ncategory: transactional\ntrigger: {event: order.placed}\nsteps:\n"
                       "  - {id: tell, type: send, message: tell, channels: [sms]}\n"
                       "messages:\n  tell:\n    sms: {text: \"Thanks\"}\n", encoding="utf-8")
    events = tmp_path / "events.jsonl"
    events.write_text('{"type": "order.placed", "user_id": "u1", "timestamp": "2026-01-05T10:00:00Z"}\n')
    profiles = tmp_path / "profiles.jsonl"
    profiles.write_text('{"user_id": "u1", "phone": "+14155550100", "consents": '
                        '[{"channel": "sms", "category": "transactional", "granted": true}]}\n')
    result = CliRunner().invoke(app, ["simulate", str(journey), "--events", str(events), "--profiles", str(profiles),
                                      "--json"])
    assert result.exit_code == 0, result.output
    [message] = json.loads(result.stdout)["messages"]
    assert message["channel"] == "sms" and message["decisions"] == [{"channel": "sms", "eligible": True,
                                                                      "reason": None}]
