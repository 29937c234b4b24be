"""The digest step on the virtual clock: one message for the events of a window, a new digest after
it, a key per order, a count and a local time that close it early (run plain and with state round-trips)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from engine.cli import app
from engine.compiler import load_text
from engine.errors import JourneyDefinitionError
from tests.engine.conftest import Simulate, event, profile

UPDATES = """
id: updates
category: transactional
trigger: {event: order.updated}
steps:
  - {id: gather, type: digest, window: 30m}
  - {id: tell, type: send, message: updates, channels: [sms]}
messages:
  updates:
    sms: {text: "{{ digest.count }} updates: {% for e in digest.events %}{{ e.properties.status }} {% endfor %}"}
"""


def _at(minute: int) -> str:
    return f"2026-01-05T{10 + minute // 60:02d}:{minute % 60:02d}:00Z"


FIVE_THEN_ONE = [event("order.updated", "u1", _at(m), status=s)
                 for m, s in ((0, "placed"), (2, "paid"), (5, "packed"), (8, "shipped"), (10, "out"), (50, "late"))]


def test_five_updates_in_ten_minutes_are_one_sms_and_a_sixth_forty_minutes_later_starts_another(
        simulate: Simulate) -> None:
    result = simulate(UPDATES, FIVE_THEN_ONE, [profile("u1", "sms:transactional")])
    texts = [(m["at"], m["content"]["text"]) for m in result["messages"]]
    assert texts == [("2026-01-05T10:30:00Z", "5 updates: placed paid packed shipped out "),
                     ("2026-01-05T11:20:00Z", "1 updates: late ")]
    assert [m["digest"] for m in result["messages"]] == [
        {"step": "gather", "count": 5, "first_at": _at(0), "last_at": _at(10)},
        {"step": "gather", "count": 1, "first_at": _at(50), "last_at": _at(50)}]
    assert result["summary"]["entered"] == 2


def test_digest_reads_first_last_and_count_in_a_later_step(simulate: Simulate) -> None:
    journey = UPDATES.replace("{% for e in digest.events %}{{ e.properties.status }} {% endfor %}",
                              "{{ digest.first.properties.status }} to {{ digest.last.properties.status }}")
    result = simulate(journey, FIVE_THEN_ONE[:5], [profile("u1", "sms:transactional")])
    assert [m["content"]["text"] for m in result["messages"]] == ["5 updates: placed to out"]


def test_count_closes_the_digest_as_soon_as_it_is_full(simulate: Simulate) -> None:
    journey = UPDATES.replace("window: 30m", "window: 30m, count: 3")
    result = simulate(journey, FIVE_THEN_ONE[:5], [profile("u1", "sms:transactional")])
    assert [(m["at"], m["content"]["text"]) for m in result["messages"]] == [
        (_at(5), "3 updates: placed paid packed "), (_at(38), "2 updates: shipped out ")]


def test_until_closes_at_the_recipients_local_time(simulate: Simulate) -> None:
    """10:00Z is 11:00 in Paris: `until: "12:00"` closes at 11:00Z, before the 2h window would."""
    journey = UPDATES.replace("window: 30m", "window: 2h, until: \"12:00\"")
    result = simulate(journey, FIVE_THEN_ONE[:5], [profile("u1", "sms:transactional", timezone="Europe/Paris")])
    assert [m["at"] for m in result["messages"]] == ["2026-01-05T11:00:00Z"]


def test_a_key_keeps_one_digest_per_order(simulate: Simulate) -> None:
    journey = UPDATES.replace("window: 30m", "window: 30m, key: event.properties.order")
    events = [event("order.updated", "u1", _at(0), order="A", status="a1"),
              event("order.updated", "u1", _at(1), order="B", status="b1"),
              event("order.updated", "u1", _at(2), order="A", status="a2")]
    result = simulate(journey, events, [profile("u1", "sms:transactional")])
    assert sorted(m["content"]["text"] for m in result["messages"]) == ["1 updates: b1 ", "2 updates: a1 a2 "]


def test_digest_shown_in_the_simulate_tables(tmp_path: Path) -> None:
    journey = tmp_path / "updates.yaml"
    journey.write_text(UPDATES, encoding="utf-8")
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(json.dumps(e) for e in FIVE_THEN_ONE), encoding="utf-8")
    profiles = tmp_path / "profiles.jsonl"
    profiles.write_text(json.dumps(profile("u1", "sms:transactional")), encoding="utf-8")
    result = CliRunner().invoke(app, ["simulate", str(journey), "--events", str(events), "--profiles", str(profiles)],
                                env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    lines = [line.rstrip() for line in result.output.splitlines()]
    start = lines.index("digests")
    assert lines[start + 1].split() == ["at", "(UTC)", "user", "step", "channel", "events", "first", "event", "last",
                                        "event"]
    assert lines[start + 3].split() == ["Jan", "05", "10:30", "u1", "gather", "sms", "5", "Jan", "05", "10:00",
                                        "Jan", "05", "10:10"]
    assert lines[start + 4].split() == ["Jan", "05", "11:20", "u1", "gather", "sms", "1", "Jan", "05", "10:50",
                                        "Jan", "05", "10:50"]


def test_digest_needs_a_window_and_an_event_trigger_and_names_what_it_reads() -> None:
    bad = {
        "window": (UPDATES.replace("window: 30m", "count: 5"), "a digest needs 'window' or 'until'"),
        "audience": (UPDATES.replace("trigger: {event: order.updated}",
                                     "trigger: {schedule: '0 9 * * *', audience: 'true'}"),
                     "step 'gather': a digest collects the journey's trigger events"),
        "until": (UPDATES.replace("window: 30m", "until: '6pm'"), "'6pm' is not a local time HH:MM"),
        "no_digest": (UPDATES.replace("  - {id: gather, type: digest, window: 30m}\n", ""),
                      "'digest' is what a digest step collected, and this journey has no digest step"),
        "two_keys": (UPDATES.replace("window: 30m", "window: 30m, key: event.properties.order")
                     .replace("trigger:", "instance_key: event.properties.order\ntrigger:"),
                     "the journey's instance_key already makes one instance"),
    }
    for name, (text, words) in bad.items():
        try:
            load_text(text, "updates.yaml")
        except JourneyDefinitionError as exc:
            assert words in str(exc), (name, str(exc))
        else:
            raise AssertionError(f"{name}: accepted")
