"""`journey consent export`: the consent audit trail read straight from a SQLite file, as JSON
Lines or CSV, every row once in the order written, however many pages it takes."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

import engine.cli.consent
from channels import ConsentRecord, Profile
from engine.cli import app
from engine.stores.sql import SqlStore

T0 = datetime(2026, 1, 5, 10, tzinfo=UTC)


@pytest.fixture
def db(tmp_path: Path) -> str:
    """Three people with two consent changes each, the first erased since (their rows stay, as proof)."""
    url = f"sqlite:///{tmp_path / 'journey.db'}"
    store = SqlStore(url)
    for n in range(3):
        with store.transaction() as tx:
            tx.put_profile(Profile(f"u{n}", phone=f"+3361234567{n}", consents=(
                ConsentRecord("sms", "marketing", True, "signup, web", T0 + timedelta(hours=n)),
                ConsentRecord("email", "transactional", False, None, T0 + timedelta(hours=n, minutes=30)))))
    assert store.privacy.erase_user("u0", T0 + timedelta(days=1), lambda tx: None) is not None
    store.close()
    return url


EXPECTED = [{"user_id": f"u{n}", "number": None, "channel": channel, "category": category, "granted": granted,
             "source": source, "at": f"2026-01-05T{10 + n}:{minutes}:00Z"}
            for n in range(3) for channel, category, granted, source, minutes in (
                ("sms", "marketing", True, "signup, web", "00"), ("email", "transactional", False, None, "30"))]


def test_jsonl_holds_every_row_in_write_order_across_pages(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine.cli.consent, "PAGE", 4)  # two pages, the second short
    result = CliRunner().invoke(app, ["consent", "export", "--db", db])
    assert result.exit_code == 0, result.output
    assert [json.loads(line) for line in result.stdout.splitlines()] == EXPECTED
    monkeypatch.setattr(engine.cli.consent, "PAGE", 3)  # pages that end exactly with the rows
    again = CliRunner().invoke(app, ["consent", "export", "--db", db, "--format", "jsonl"])
    assert [json.loads(line) for line in again.stdout.splitlines()] == EXPECTED


def test_csv_has_a_header_row_and_since_filters_on_the_records_time(db: str) -> None:
    result = CliRunner().invoke(app, ["consent", "export", "--db", db, "--format", "csv",
                                      "--since", "2026-01-05T11:00:00Z"])
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["user_id", "number", "channel", "category", "granted", "source", "at"]
    assert rows[1:] == [[r["user_id"], "", r["channel"], r["category"], str(r["granted"]).lower(), r["source"] or "",
                         r["at"]] for r in EXPECTED[2:]]


def test_a_missing_database_or_a_bad_time_is_refused(tmp_path: Path, db: str) -> None:
    missing = CliRunner().invoke(app, ["consent", "export", "--db", f"sqlite:///{tmp_path / 'nope.db'}"])
    assert missing.exit_code == 1 and "no such database file" in missing.output
    assert not (tmp_path / "nope.db").exists()
    bad = CliRunner().invoke(app, ["consent", "export", "--db", db, "--since", "yesterday"])
    assert bad.exit_code == 1 and "--since" in bad.output
