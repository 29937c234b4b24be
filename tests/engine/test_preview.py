"""`journey preview`: a message rendered for one person, per channel, with its variant, SMS encoding,
segments and cost, sending and storing nothing."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.cli import app

JOURNEY = """\
id: reminders
category: transactional
trigger: {event: appointment.booked}
steps:
  - {id: remind, type: send, message: reminder, channels: [sms, email]}
messages:
  reminder:
    sms:
      text: "{{ event.properties.at | datetime(\\"EEEE, MMMM d 'at' h:mm a\\") }} with {{ event.properties.who }}"
    email: {subject: "Reminder", body: "See you {{ event.properties.at | date('full') }}"}
    locales:
      fr:
        sms:
          text: "{{ event.properties.at | datetime(\\"EEEE d MMMM 'à' HH:mm\\") }} avec {{ event.properties.who }}"
"""
EVENT = {"properties": {"at": "2026-03-12T15:30:00Z", "who": "Dr. Patel"}}


def _run(tmp_path: Path, profile: dict[str, object], *extra: str) -> tuple[int, str, list[str]]:
    (tmp_path / "j.yaml").write_text(JOURNEY, encoding="utf-8")
    (tmp_path / "p.json").write_text(json.dumps(profile), encoding="utf-8")
    (tmp_path / "e.json").write_text(json.dumps(EVENT), encoding="utf-8")
    before = sorted(os.listdir(tmp_path))
    result = CliRunner().invoke(app, ["preview", str(tmp_path / "j.yaml"), "reminder", "--profile",
                                      str(tmp_path / "p.json"), "--event", str(tmp_path / "e.json"), *extra])
    created = sorted(set(os.listdir(tmp_path)) - set(before)) + sorted(set(os.listdir(".")) - set(before))
    return result.exit_code, result.output, [c for c in created if c not in before]


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def test_the_sms_is_printed_with_its_encoding_segments_and_cost_and_nothing_is_sent(tmp_path: Path) -> None:
    person = {"user_id": "ada", "locale": "en-US", "timezone": "America/Chicago", "phone": "+13125550100",
              "consents": [{"channel": "sms", "category": "transactional", "granted": True}]}
    code, output, created = _run(tmp_path, person, "--channel", "sms")
    assert code == 0, output
    assert "sms: default content; GSM-7, 1 segment; cost 0.0083; eligible now" in output
    assert "  text: Thursday, March 12 at 10:30 AM with Dr. Patel" in output
    assert "email" not in output.split("nothing was sent", 1)[1]
    assert created == []  # no outbox, no database: nothing was sent or stored


def test_a_french_canadian_reads_the_fr_variant_in_their_zone_and_the_json_says_so(tmp_path: Path) -> None:
    person = {"user_id": "eve", "locale": "fr-CA", "timezone": "America/Toronto", "email": "eve@example.com"}
    code, output, _ = _run(tmp_path, person, "--json")
    assert code == 0, output
    doc = json.loads(output)
    email, sms = doc["channels"]  # in the order of docs/journeys.md's channels
    assert (doc["locale"], doc["timezone"]) == ("fr-CA", "America/Toronto")
    assert sms["locale"] == "fr" and sms["content"]["text"] == "jeudi 12 mars à 11:30 avec Dr. Patel"
    assert (sms["encoding"], sms["segments"], sms["eligible"], sms["reason"]) == ("GSM-7", 1, False, "no_address")
    assert email["locale"] is None and email["content"]["body"] == "See you jeudi 12 mars 2026"
    assert email["eligible"] is True and email["encoding"] is None


@pytest.mark.parametrize(("args", "expected"), [
    (("reminder", "--channel", "push"), "channel: message 'reminder' has no push content (it has email, sms)"),
    (("remnder",), "message: journey 'reminders' has no message 'remnder'; did you mean 'reminder'?"),
])
def test_an_unknown_message_or_channel_is_named(tmp_path: Path, args: tuple[str, ...], expected: str) -> None:
    (tmp_path / "j.yaml").write_text(JOURNEY, encoding="utf-8")
    (tmp_path / "p.json").write_text(json.dumps({"user_id": "ada"}), encoding="utf-8")
    result = CliRunner().invoke(app, ["preview", str(tmp_path / "j.yaml"), *args, "--profile",
                                      str(tmp_path / "p.json")])
    assert result.exit_code == 1 and expected in result.output, result.output
