"""`journey forecast` on the command line: the files or a database in, the JSON document, the
tables or a picture out; worker processes give the same answer as one; bad input names its line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from engine.cli import app
from tests.engine.test_forecast import push_then_sms_yaml

runner = CliRunner()
CONSENTS = [{"channel": c, "category": "marketing", "granted": True, "source": "form", "at": "2025-12-01T00:00:00Z"}
            for c in ("push", "sms")]


def journey(tmp_path: Path, after: str) -> Path:
    path = tmp_path / f"nudge-{after}.yaml"
    text = push_then_sms_yaml(after, f"nudge-{after}", "{{ profile.attributes.first_name }}, your cart is waiting")
    path.write_text(text, encoding="utf-8")
    return path


def population(tmp_path: Path, n: int) -> tuple[Path, Path]:
    profiles, events = tmp_path / "profiles.jsonl", tmp_path / "events.jsonl"
    names = ["Ava", "Oliver", "Zoë"]
    profiles.write_text("".join(json.dumps({
        "user_id": f"u{i}", "timezone": "UTC", "phone": f"+1415555{i % 10000:04d}", "push_token": f"t{i}",
        "attributes": {"first_name": names[i % 3], "country": ["US", "FR"][i % 2]}, "consents": CONSENTS}) + "\n"
        for i in range(n)), encoding="utf-8")
    events.write_text("".join(json.dumps({"type": "cart.abandoned", "user_id": f"u{i}",
                                          "timestamp": "2026-01-05T12:00:00Z"}) + "\n" for i in range(n)),
                      encoding="utf-8")
    return profiles, events


def forecast(*args: str | Path) -> dict[str, Any]:
    result = runner.invoke(app, ["forecast", *map(str, args), "--json"])
    assert result.exit_code == 0, result.output
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def test_worker_processes_give_the_answer_one_process_gives(tmp_path: Path) -> None:
    profiles, events = population(tmp_path, 600)
    one = forecast(journey(tmp_path, "1h"), "--profiles", profiles, "--events", events, "--runs", "8", "--seed", "5",
                   "--workers", "1", "--by", "attributes.country")
    two = forecast(journey(tmp_path, "1h"), "--profiles", profiles, "--events", events, "--runs", "8", "--seed", "5",
                   "--workers", "2", "--by", "attributes.country")
    assert two.pop("evaluated_paths") >= one.pop("evaluated_paths")  # each worker meets its own paths
    assert two == one
    assert one["profiles"] == 600 and set(one["segments"]["values"]) == {"US", "FR"}
    assert 0.6 * 600 < one["channels"]["sms"]["messages"]["mean"] < 0.8 * 600


def test_vs_reports_the_difference_two_files_make(tmp_path: Path) -> None:
    profiles, events = population(tmp_path, 3000)
    document = forecast(journey(tmp_path, "2h"), "--profiles", profiles, "--events", events, "--vs",
                        journey(tmp_path, "4h"), "--runs", "20", "--workers", "1")
    assert document["vs"]["journey"] == "nudge-4h"
    assert document["difference"]["channels"]["sms"]["messages"]["p95"] < 0
    same = forecast(journey(tmp_path, "2h"), "--profiles", profiles, "--events", events, "--vs",
                    journey(tmp_path, "2h"), "--runs", "20", "--workers", "1")
    assert same["difference"]["channels"]["sms"]["messages"] == {"mean": 0, "p5": 0, "p95": 0}


def test_tables_and_a_picture(tmp_path: Path) -> None:
    profiles, events = population(tmp_path, 200)
    picture = tmp_path / "reach.png"
    result = runner.invoke(app, ["forecast", str(journey(tmp_path, "1h")), "--profiles", str(profiles), "--events",
                                 str(events), "--runs", "5", "--workers", "1", "--plot", str(picture),
                                 "--vs", str(journey(tmp_path, "4h"))])
    assert result.exit_code == 0, result.output
    assert "people reached" in result.stdout and "sms" in result.stdout and "difference" in result.stdout
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = tmp_path / "reach.svg"
    assert runner.invoke(app, ["forecast", str(journey(tmp_path, "1h")), "--profiles", str(profiles), "--events",
                               str(events), "--runs", "5", "--workers", "1", "--plot", str(svg)]).exit_code == 0
    assert "<svg" in svg.read_text(encoding="utf-8")


def test_a_bad_profile_line_is_named_and_nothing_else_is_said(tmp_path: Path) -> None:
    profiles, events = population(tmp_path, 5)
    lines = profiles.read_text(encoding="utf-8").splitlines()
    lines[3] = json.dumps({"user_id": "u3", "phone": "12"})
    profiles.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = runner.invoke(app, ["forecast", str(journey(tmp_path, "1h")), "--profiles", str(profiles), "--events",
                                 str(events), "--workers", "1"])
    assert result.exit_code == 1
    assert f"{profiles}:4: phone" in result.output and "Traceback" not in result.output


def test_profiles_from_a_database_forecast_as_from_the_file(tmp_path: Path) -> None:
    profiles, events = population(tmp_path, 300)
    db = f"sqlite:///{tmp_path / 'journey.db'}"
    imported = runner.invoke(app, ["profiles", "import", str(profiles), "--db", db])
    assert imported.exit_code == 0, imported.output
    from_file = forecast(journey(tmp_path, "1h"), "--profiles", profiles, "--events", events, "--runs", "6",
                         "--workers", "1")
    from_db = forecast(journey(tmp_path, "1h"), "--db", db, "--events", events, "--runs", "6", "--workers", "2")
    assert {**from_db, "evaluated_paths": 0} == {**from_file, "evaluated_paths": 0}


def test_progress_goes_to_stderr_only_when_asked_or_a_terminal(tmp_path: Path) -> None:
    profiles, events = population(tmp_path, 50)
    argv = ["forecast", str(journey(tmp_path, "1h")), "--profiles", str(profiles), "--events", str(events), "--runs",
            "2", "--workers", "1", "--json"]
    quiet, shown = runner.invoke(app, argv), runner.invoke(app, [*argv, "--progress"])
    assert quiet.exit_code == shown.exit_code == 0
    assert quiet.stderr == "" and "forecasting" in shown.stderr
    assert json.loads(shown.stdout) == json.loads(quiet.stdout)
