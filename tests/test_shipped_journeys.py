"""The journeys that ship in `journeys/` and their example data in `examples/`.

These are what a new user copies first, so each must load, match the published
JSON Schema, draw as a graph, and come with example data that is well formed.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import phonenumbers
import pytest
import yaml
from jsonschema import Draft202012Validator
from typer.testing import CliRunner

from channels import Profile, load_policy
from engine.cli import app
from engine.compiler import load_file
from engine.runs import AudienceRun
from engine.runtime import Runtime
from engine.sandbox import RECIPIENT, Recipient
from engine.state import Digest

ROOT = Path(__file__).resolve().parent.parent
JOURNEYS = ROOT / "journeys"
EXAMPLES = ROOT / "examples"
JOURNEY_FILES = sorted(JOURNEYS.glob("*.yaml"))
EXAMPLE_DIRS = sorted(p for p in EXAMPLES.iterdir() if p.is_dir())
EXPECTED_IDS = {
    "fraud-alert", "one-time-password", "appointment-confirmation", "delivery-status", "flash-sale",
    "event-invitation", "win-back", "payment-overdue", "table-ready", "cart-abandonment", "order-updates",
}

runner = CliRunner()


def _ids(paths: list[Path]) -> list[str]:
    return [p.stem if p.is_file() else p.name for p in paths]


def _jsonl(path: Path) -> list[dict[str, Any]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def _timestamp(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.fixture(scope="module")
def schema_validator() -> Draft202012Validator:
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0, result.output
    schema = json.loads(result.stdout)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def test_every_use_case_ships_exactly_one_journey_file() -> None:
    assert set(_ids(JOURNEY_FILES)) == EXPECTED_IDS


@pytest.mark.parametrize("path", JOURNEY_FILES, ids=_ids(JOURNEY_FILES))
def test_journey_loads_and_its_id_is_the_file_name(path: Path) -> None:
    journey = load_file(path)
    assert journey.id == path.stem
    assert {step.id for step in journey.definition.steps} <= set(journey.graph.nodes)
    assert journey.definition.messages, "a shipped journey sends something"


@pytest.mark.parametrize("path", JOURNEY_FILES, ids=_ids(JOURNEY_FILES))
def test_journey_starts_with_a_comment_saying_what_it_is_for(path: Path) -> None:
    """After the line that points editors at the schema (tests/engine/test_schema_cli.py)."""
    modeline, first = path.read_text(encoding="utf-8").splitlines()[:2]
    assert modeline.startswith("# yaml-language-server: $schema=")
    assert first.startswith("# ") and len(first) > 20 and "$schema" not in first


@pytest.mark.parametrize("path", JOURNEY_FILES, ids=_ids(JOURNEY_FILES))
def test_journey_matches_the_published_json_schema(path: Path, schema_validator: Draft202012Validator) -> None:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in schema_validator.iter_errors(document)]
    assert errors == []


def test_schema_rejects_a_misspelled_key_like_the_loader(schema_validator: Draft202012Validator) -> None:
    document = yaml.safe_load((JOURNEYS / "table-ready.yaml").read_text(encoding="utf-8"))
    document["steps"][0]["chanels"] = ["sms"]
    assert not schema_validator.is_valid(document)


def test_validate_cli_accepts_the_journeys_folder() -> None:
    result = runner.invoke(app, ["validate", str(JOURNEYS)])
    assert result.exit_code == 0, result.output
    for journey_id in EXPECTED_IDS:
        assert f"ok ({journey_id}," in result.output
    assert "ok (one-time-password, 1 step)" in result.output  # singular for one
    assert "ok (cart-abandonment, 6 steps)" in result.output


def test_shipped_journeys_use_every_step_type_and_wait_form() -> None:
    steps = [step for path in JOURNEY_FILES for step in load_file(path).definition.steps]
    assert {step.type for step in steps} >= {"send", "wait", "wait_for", "branch", "split", "exit", "digest"}
    waits = [step for step in steps if step.type == "wait"]
    assert any(w.duration is not None for w in waits)
    assert any(w.until is not None and ":" in w.until and w.offset is None for w in waits)
    assert any(w.until is not None and w.offset is not None for w in waits)
    assert any(step.type == "wait_for" and step.when for step in steps)
    assert any(w.if_past == "exit" and w.on_calendar for w in waits)  # the appointment reminder


@pytest.mark.parametrize("path", JOURNEY_FILES, ids=_ids(JOURNEY_FILES))
@pytest.mark.parametrize("fmt", ["mermaid", "dot"])
def test_graph_cli_draws_every_step(path: Path, fmt: str) -> None:
    result = runner.invoke(app, ["graph", str(path), "--format", fmt])
    assert result.exit_code == 0, result.output
    header = "flowchart TD" if fmt == "mermaid" else "digraph"
    assert result.stdout.startswith(header)
    journey = load_file(path)
    missing = [s.id for s in journey.definition.steps if s.id not in result.stdout]
    assert missing == []
    if fmt == "mermaid":
        trigger = journey.definition.trigger
        assert str(trigger.event or trigger.schedule or trigger.at) in result.stdout


def test_every_example_folder_belongs_to_a_shipped_journey_and_vice_versa() -> None:
    assert set(_ids(EXAMPLE_DIRS)) == set(_ids(JOURNEY_FILES))
    assert (EXAMPLES / "README.md").is_file()


@pytest.mark.parametrize("folder", EXAMPLE_DIRS, ids=_ids(EXAMPLE_DIRS))
def test_example_has_events_profiles_and_expected_outcome(folder: Path) -> None:
    for name in ("events.jsonl", "profiles.jsonl", "expected.md"):
        assert (folder / name).is_file(), f"{folder.name}/{name} is missing"
    expected = (folder / "expected.md").read_text(encoding="utf-8")
    users = {p["user_id"] for p in _jsonl(folder / "profiles.jsonl")}
    assert all(f"**{user}**" in expected for user in users), "expected.md covers every user"


@pytest.mark.parametrize("folder", EXAMPLE_DIRS, ids=_ids(EXAMPLE_DIRS))
def test_example_events_are_well_formed_sorted_and_unique(folder: Path) -> None:
    events = _jsonl(folder / "events.jsonl")
    assert len(events) >= 3
    for event in events:
        assert isinstance(event["type"], str) and event["type"]
        assert isinstance(event["user_id"], str) and event["user_id"]
        assert _timestamp(event["timestamp"]).utcoffset() is not None
        assert isinstance(event.get("properties", {}), dict)
    times = [_timestamp(e["timestamp"]) for e in events]
    assert times == sorted(times)
    ids = [e["id"] for e in events]
    assert len(ids) == len(set(ids))


def _entries(folder: Path) -> list[dict[str, Any]]:
    """The events that enter the example's users: its trigger events, or an audience run's entry
    events for the profiles its audience matches (and some it does not: the example shows both)."""
    journey = load_file(JOURNEYS / f"{folder.name}.yaml")
    trigger = journey.definition.trigger
    if trigger.kind == "event":
        return [e for e in _jsonl(folder / "events.jsonl") if e["type"] == trigger.event]
    run = AudienceRun(run_id="r1", journey_id=journey.id, version=journey.version, trigger=trigger.kind,
                      scheduled_at=_timestamp("2026-01-05T15:00:00Z"), created_at=_timestamp("2026-01-05T15:00:00Z"))
    profiles = [Profile.from_dict(p) for p in _jsonl(folder / "profiles.jsonl")]
    matched = [p for p in profiles if Runtime(load_policy()).entry_key(journey, run.entry_event(p.user_id), p)[0]]
    assert 0 < len(matched) < len(profiles), "the audience takes some profiles and leaves others"
    return [run.entry_event(p.user_id).context() for p in matched]


@pytest.mark.parametrize("folder", EXAMPLE_DIRS, ids=_ids(EXAMPLE_DIRS))
def test_example_events_trigger_the_journey_and_have_profiles(folder: Path) -> None:
    events = _jsonl(folder / "events.jsonl")
    profiles = {p["user_id"] for p in _jsonl(folder / "profiles.jsonl")}
    assert len({e["user_id"] for e in _entries(folder)}) >= 3, "several users enter the journey"
    assert {e["user_id"] for e in events} <= profiles


def test_shipped_journeys_use_every_kind_of_trigger() -> None:
    kinds = {load_file(path).definition.trigger.kind: path.stem for path in JOURNEY_FILES}
    assert set(kinds) == {"event", "schedule", "at"}


@pytest.mark.parametrize("folder", EXAMPLE_DIRS, ids=_ids(EXAMPLE_DIRS))
def test_example_profiles_have_valid_e164_phones_and_consents(folder: Path) -> None:
    profiles = _jsonl(folder / "profiles.jsonl")
    assert len({p["user_id"] for p in profiles}) == len(profiles)
    for profile in profiles:
        phone = profile["phone"]
        assert phone.startswith("+"), phone
        number = phonenumbers.parse(phone, None)
        assert phonenumbers.is_valid_number(number), phone
        assert phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164) == phone
        for consent in profile["consents"]:
            assert consent["channel"] in {"push", "in_app", "email", "sms", "mms", "rcs", "webhook"}
            assert consent["category"] in {"marketing", "transactional"}
            assert isinstance(consent["granted"], bool)
            assert _timestamp(consent["at"]).utcoffset() is not None


@pytest.mark.parametrize("folder", EXAMPLE_DIRS, ids=_ids(EXAMPLE_DIRS))
def test_every_message_renders_for_every_example_entry(folder: Path) -> None:
    """No shipped template, nor any of its variants, reads a property its own example trigger events lack."""
    journey = load_file(JOURNEYS / f"{folder.name}.yaml")
    profiles = {p["user_id"]: p for p in _jsonl(folder / "profiles.jsonl")}
    for event in _entries(folder):
        digested = any(step.type == "digest" for step in journey.definition.steps)  # a digest of this one event
        for message, channels in journey.definition.messages.items():
            for locale in ("en", *channels.locales):
                context = {"event": event, "profile": profiles[event["user_id"]], "journey": {"id": journey.id},
                           RECIPIENT: Recipient(locale, ZoneInfo("America/Chicago"))}
                if digested:
                    context["digest"] = Digest.open("gather", None, event, _timestamp(event["timestamp"])).context()
                rendered = journey.render_channels(message, channels.channels(), context)
                assert rendered.errors == {}, (message, locale, rendered.errors)
                assert set(rendered.contents) == set(channels.channels()), message
                assert "{{" not in json.dumps(rendered.contents), message
                variant = channels.locales.get(locale)
                assert rendered.locales == {c: locale for c in (variant.channels() if variant else ())}
