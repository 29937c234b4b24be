"""`journey simulate` tables at 80 columns: every time of day shown, `--limit N`, `--summary` (totals, the
funnel in graph order, outcomes per user) and a progress bar on stderr for runs over a second."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from channels import load_policy
from engine.cli import app, report
from engine.cli.report import clock_times
from engine.compiler import load_file
from engine.simulator import parse_events, parse_profiles, read_jsonl, simulate

ROOT = Path(__file__).resolve().parents[2]
JOURNEY = ROOT / "journeys" / "cart-abandonment.yaml"
EXAMPLE = ROOT / "examples" / "cart-abandonment"
ARGS = ["simulate", str(JOURNEY), "--events", str(EXAMPLE / "events.jsonl"), "--profiles",
        str(EXAMPLE / "profiles.jsonl")]
runner = CliRunner()


def _run(*extra: str, env: dict[str, str] | None = None) -> Result:
    result = runner.invoke(app, [*ARGS, *extra], env={"COLUMNS": "80", **(env or {})})
    assert result.exit_code == 0, result.output
    return result


def _document() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(_run("--json").stdout)
    return document


def _lines_between(text: str, start: str, end: str) -> list[str]:
    lines = text.splitlines()
    first = next(n for n, line in enumerate(lines) if line.startswith(start))
    last = next(n for n, line in enumerate(lines) if n > first and line.startswith(end))
    return lines[first:last]


def test_every_message_shows_its_time_of_day_at_80_columns() -> None:
    """The README's example, as the issue's done-when runs it."""
    output = _run().stdout
    assert max(len(line) for line in output.splitlines()) <= 80
    messages = _document()["messages"]
    assert len(messages) == 6
    table = _lines_between(output, "messages", "channel choices")
    rows = [line for line in table if line[:3] == "Jan"]
    assert len(rows) == len(messages)
    for row, message in zip(rows, messages, strict=True):
        day, time = message["at"][5:10], message["at"][11:16]  # 2026-01-05T16:00:00Z
        assert row.startswith(f"Jan {day[3:]} {time}  {message['user_id']} "), (row, message)
        assert message["message"] in row and message["channel"] in row
    choices = [line for line in _lines_between(output, "channel choices", "funnel") if line[:3] == "Jan"]
    assert len(choices) == len([m for m in messages if "choice" in m]) == 5  # the nudges: strategy auto
    assert choices[1].startswith("Jan 05 16:10  u2    nudge  sms > push  sms first: 100 reach per unit"), choices


def test_times_are_short_and_complete() -> None:
    assert clock_times(["2026-01-05T16:00:00Z", "2026-01-06T09:30:00Z"]) == ["Jan 05 16:00", "Jan 06 09:30"]
    assert clock_times(["2026-01-05T16:00:00Z", "2026-01-05T16:00:05.250Z"]) == ["Jan 05 16:00:00",
                                                                                   "Jan 05 16:00:05"]
    assert clock_times(["2025-12-31T23:00:00Z", "2026-01-01T01:00:00Z"]) == ["2025-12-31 23:00", "2026-01-01 01:00"]
    assert clock_times([]) == []


def test_limit_caps_each_list_and_says_how_many_more() -> None:
    output = _run("--limit", "2").stdout
    messages = _lines_between(output, "messages", "channel choices")
    assert len([line for line in messages if line.startswith("Jan")]) == 2
    assert "… and 4 more messages" in output
    assert "… and 3 more choices" in output
    assert "… and 2 more users" in output
    assert "… and 1 more user\n" not in output
    funnel = _lines_between(output, "funnel", "outcomes")
    assert len(funnel) == 3 + 6  # title, header, rule and every step: the funnel is never cut


def test_limit_zero_and_a_limit_above_the_rows() -> None:
    assert "… and 6 more messages" in _run("--limit", "0").stdout
    assert "more" not in _run("--limit", "100").stdout


def test_summary_prints_totals_the_funnel_in_graph_order_and_outcomes_per_user() -> None:
    output = _run("--summary").stdout
    assert "cart_reminder" not in output and "decisions" not in output and "skipped sends" not in output
    funnel = _lines_between(output, "funnel", "outcomes")
    steps = [line.split()[0] for line in funnel[3:]]
    # graph order: the 1-day wait and the discount come before `done`, though most instances reach `done` first
    assert steps == ["wait_1h", "nudge", "big_cart", "wait_1d", "discount", "done"]
    assert funnel[3].split() == ["wait_1h", "4", "100%"]
    assert funnel[6].split() == ["wait_1d", "1", "25%"]
    outcomes = _lines_between(output, "outcomes per user", "totals")
    assert [line.split() for line in outcomes[3:]] == [
        ["u1", "completed", "done", "push", "0"],
        ["u2", "completed", "done", "sms,", "push", "0"],  # strategy auto: a texter gets the SMS first
        ["u3", "converted", "nudge", "push", "0"],
        ["u4", "completed", "done", "push,", "email", "0"],
    ]
    totals = output.split("totals", 1)[1].splitlines()
    assert totals[3].split() == ["5", "4", "3", "0", "1", "0", "0", "0.0097"]


def test_a_funnel_lists_steps_no_one_reached(tmp_path: Path) -> None:
    events = [json.loads(line) for line in (EXAMPLE / "events.jsonl").read_text().splitlines()]
    only_small = [e for e in events if e["type"] != "cart.abandoned" or e["properties"]["value"] < 100]
    (tmp_path / "e.jsonl").write_text("".join(json.dumps(e) + "\n" for e in only_small))
    result = runner.invoke(app, ["simulate", str(JOURNEY), "--events", str(tmp_path / "e.jsonl"), "--profiles",
                                 str(EXAMPLE / "profiles.jsonl"), "--summary"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    funnel = _lines_between(result.stdout, "funnel", "outcomes")
    assert [line.split() for line in funnel[3:] if line.split()[0] in ("wait_1d", "discount")] == [
        ["wait_1d", "0", "0%"], ["discount", "0", "0%"]]


def test_json_takes_neither_summary_nor_limit() -> None:
    for extra in (["--summary"], ["--limit", "3"]):
        result = runner.invoke(app, [*ARGS, "--json", *extra], env={"COLUMNS": "200"})
        assert result.exit_code == 2
        assert "--json prints the whole document" in result.output


def test_a_short_run_shows_no_progress() -> None:
    assert _run(env={"FORCE_COLOR": "1"}).stderr == ""


def test_a_long_run_shows_a_progress_bar_on_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report, "PROGRESS_AFTER", 0.0)  # every run is long
    result = _run("--summary", env={"FORCE_COLOR": "1"})
    shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", result.stderr)  # without the terminal's colours and moves
    assert "simulating" in shown and "7/7 events" in shown
    assert "timers fired after the last event" in shown and "(writing the report)" in shown  # never stuck at 100%
    assert "simulating" not in result.stdout
    assert _run("--json", env={"FORCE_COLOR": "1"}).stderr == ""  # JSON runs stay quiet
    assert _run().stderr == ""  # and so do runs whose stderr is no terminal


def test_the_simulator_reports_events_processed() -> None:
    journey = load_file(JOURNEY)
    events = parse_events((f"e:{n}", row) for n, row in read_jsonl(EXAMPLE / "events.jsonl"))
    profiles = parse_profiles((f"p:{n}", row) for n, row in read_jsonl(EXAMPLE / "profiles.jsonl"))
    calls: list[tuple[int, int, str]] = []
    result = simulate(journey, events, profiles, load_policy(None), progress=lambda *call: calls.append(call))
    phases = [phase for _, _, phase in calls]
    assert phases == sorted(phases, key=["events", "timers", "report"].index) and phases[-1] == "report"
    counted = [(done, total) for done, total, phase in calls if phase == "events"]
    assert counted[-1] == (len(events), len(events))
    assert [done for done, _ in counted] == sorted({done for done, _ in counted})
    timers = [(done, total) for done, total, phase in calls if phase == "timers"]
    assert timers and timers[-1][0] == timers[-1][1] > 0  # the timers after the last event, all fired
    assert result == simulate(journey, events, profiles, load_policy(None))


SEPARATED = re.compile(r"[^_.\-]+[_.\-]*|[_.\-]+")


def _pieces(word: str) -> set[str]:
    """`word` and what it may be broken into: runs of its parts cut after `_`, `-` or `.`."""
    parts = SEPARATED.findall(word)
    return {"".join(parts[i:j]) for i in range(len(parts)) for j in range(i + 1, len(parts) + 1)}


def _tables(journey: str, columns: str) -> str:
    folder = ROOT / "examples" / journey
    args = ["simulate", str(ROOT / "journeys" / f"{journey}.yaml"), "--profiles", str(folder / "profiles.jsonl")]
    args += ["--events", str(folder / "events.jsonl")] if (folder / "events.jsonl").stat().st_size else []
    result = runner.invoke(app, args, env={"COLUMNS": columns})
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.parametrize("journey", sorted(p.stem for p in (ROOT / "journeys").glob("*.yaml")))
def test_tables_at_80_columns_never_break_a_word_inside(journey: str) -> None:
    """Every word at 80 columns is a whole word of the wide tables, or a piece of one cut after a
    separator (`booking_` / `confirmed`), never `booking_confirme` / `d`."""
    words = set(_tables(journey, "300").replace(",", " ").split())
    allowed = set().union(*(_pieces(word) for word in words))
    narrow = _tables(journey, "80")
    assert max(len(line) for line in narrow.splitlines()) <= 80
    broken = sorted({word for word in narrow.replace(",", " ").split() if word not in allowed and word.strip("─")})
    assert broken == []


def test_the_messages_table_shows_which_locale_each_variant_was_for() -> None:
    """The shipped appointment journey: u4 (fr-CA) is sent the `fr` variant, u3 (es-ES) the `es` one."""
    example = ROOT / "examples" / "appointment-confirmation"
    result = runner.invoke(app, ["simulate", str(ROOT / "journeys" / "appointment-confirmation.yaml"), "--events",
                                 str(example / "events.jsonl"), "--profiles", str(example / "profiles.jsonl")],
                           env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    rows = [line for line in result.stdout.splitlines() if line[:3] == "Jan"]
    assert sum("booking_confirmed (fr)" in row for row in rows) == 2  # u4's email and sms
    assert sum("booking_confirmed (es)" in row for row in rows) == 1
    assert sum("appointment_reminder (es)" in row for row in rows) == 1
    assert any(" u1 " in row and "appointment_reminder " in row and "(" not in row.split("reminder")[1][:3]
               for row in rows)
