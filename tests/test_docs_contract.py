"""The repository carries its own contract: README, docs, `--help` and docstrings point only at
files a user of the repository has (docs/*.md and the like), never at a specification kept
elsewhere, and the examples' expected outcomes say what happens, not the project's history."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.cli import app
from tests.test_cli_words import _commands

ROOT = Path(__file__).resolve().parent.parent
USER_FACING = ["README.md", "docs", "engine", "channels", "examples", "journeys", "schema"]
OUTSIDE = re.compile(r"\bSPEC\b|SPEC\.md|SPEC §|shared folder|\.\./shared")
DOC_LINK = re.compile(r"\bdocs/[\w.-]+\.md\b")


def _files() -> list[Path]:
    found: list[Path] = []
    for name in USER_FACING:
        path = ROOT / name
        found += [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file() and p.suffix in
                                                    (".md", ".py", ".yaml", ".yml", ".json", ".jsonl")]
    return found


def test_nothing_user_facing_cites_a_contract_outside_the_repository() -> None:
    hits = [f"{path.relative_to(ROOT)}:{n}: {line.strip()}" for path in _files()
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if OUTSIDE.search(line)]
    assert hits == []


def test_every_docs_page_cited_exists() -> None:
    cited = {(path.relative_to(ROOT), link) for path in _files()
             for link in DOC_LINK.findall(path.read_text(encoding="utf-8"))}
    assert cited, "nothing cites docs/: the pattern is wrong"
    missing = sorted(f"{path}: {link}" for path, link in cited if not (ROOT / link).is_file())
    assert missing == []
    assert (ROOT / "docs" / "cli.md").is_file()


def test_the_examples_expected_outcomes_carry_no_history() -> None:
    history = re.compile(r"\bcommit [0-9a-f]{7,40}\b|first simulator|\bissue #?\d+", re.IGNORECASE)
    hits = [f"{path.relative_to(ROOT)}: {m[0]}" for path in (ROOT / "examples").rglob("*.md")
            for m in history.finditer(path.read_text(encoding="utf-8"))]
    assert hits == []


@pytest.mark.parametrize("argv", _commands(), ids=lambda argv: " ".join(argv) or "journey")
def test_help_cites_nothing_outside_the_repository(argv: list[str]) -> None:
    result = CliRunner().invoke(app, [*argv, "--help"], env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    assert not OUTSIDE.search(result.output), result.output
