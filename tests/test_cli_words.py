"""What the `journey` command says to a person: help that reads plainly, and errors that name
the thing at fault and what would work (a missing journeys folder, a database URL of another
form, a negative duration as it was written), and folders validated with their subfolders."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from engine.cli import app

ROOT = Path(__file__).resolve().parent.parent
WIDE = {"COLUMNS": "200"}
NEGATIVE_OFFSET = """\
id: reminder
name: Reminder
category: transactional
trigger:
  event: appointment.booked
steps:
  - {id: before, type: wait, until: "event.properties.starts_at", offset: "-24 hours"}
  - {id: remind, type: send, message: remind, channels: [push]}
messages:
  remind:
    push: {title: "Tomorrow", body: "See you"}
"""


def _commands() -> list[list[str]]:
    root = get_command(app)
    found: list[list[str]] = [[]]
    for name, command in getattr(root, "commands", {}).items():
        found.append([name])
        found += [[name, sub] for sub in getattr(command, "commands", {})]
    return found


@pytest.mark.parametrize("argv", _commands(), ids=lambda argv: " ".join(argv) or "journey")
def test_help_shows_no_type_tags_or_braces(argv: list[str]) -> None:
    result = CliRunner().invoke(app, [*argv, "--help"], env=WIDE)
    assert result.exit_code == 0, result.output
    assert not re.search(r"<(bool|str|path|int|float|list)[^>]*>|(?<!\$)\{\w+\}", result.output), result.output


@pytest.mark.parametrize("argv", [[], ["consent"], ["profiles"]], ids=["journey", "consent", "profiles"])
def test_each_command_is_summed_up_in_one_line(argv: list[str]) -> None:
    output = CliRunner().invoke(app, [*argv, "--help"], env=WIDE).output
    box = output[output.index("Commands"):]
    rows = [line for line in box.splitlines()[1:] if line.startswith("│")]
    assert rows and all(row[2] != " " for row in rows), rows  # every row names a command: no continued line


def test_serve_in_a_folder_without_journeys_says_how_to_point_at_one(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["serve", "--db", f"sqlite:///{tmp_path / 'j.db'}"])
    assert result.exit_code == 1
    assert "journeys: no such folder of journeys" in result.stderr and "--journeys DIR" in result.stderr
    assert "Errno" not in result.stderr


@pytest.mark.parametrize("url", ["postgres://app@127.0.0.1:1/journey", "postgresql://app:secret@127.0.0.1:1/journey",
                                 "mysql://127.0.0.1:1/x"])
def test_a_database_url_of_another_form_says_which_forms_work(url: str) -> None:
    result = CliRunner().invoke(app, ["consent", "export", "--db", url])
    assert result.exit_code == 1
    assert "not a database URL journey-engine opens" in result.stderr
    assert "sqlite:///" in result.stderr and "postgresql+psycopg://" in result.stderr
    assert "secret" not in result.stderr and "plugin" not in result.stderr


def test_validate_quotes_a_negative_duration_as_written(tmp_path: Path) -> None:
    path = tmp_path / "reminder.yaml"
    path.write_text(NEGATIVE_OFFSET, encoding="utf-8")
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    assert f"{path}:7: step 'before': offset: invalid duration '-24 hours'" in result.stderr


def test_validate_a_folder_checks_its_subfolders_too(tmp_path: Path) -> None:
    (tmp_path / "team" / "payments").mkdir(parents=True)
    shutil.copy(ROOT / "journeys" / "fraud-alert.yaml", tmp_path / "fraud-alert.yaml")
    (tmp_path / "team" / "payments" / "bad.yml").write_text("id: bad\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["validate", str(tmp_path)])
    assert result.exit_code == 1
    assert str(tmp_path / "team" / "payments" / "bad.yml") in result.stderr
