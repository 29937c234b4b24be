"""Scheduled and one-off audience triggers: checked at validate time with `file:line`, and run on the
virtual clock by `journey simulate` through the same entry as the server (engine.audience.entry)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from channels import Profile, load_policy
from engine.cli import app
from engine.compiler import load_text
from engine.errors import InputError, JourneyDefinitionError
from engine.simulator import simulate

ROOT = Path(__file__).resolve().parent.parent.parent
runner = CliRunner()

AUDIENCE = """\
id: trials
trigger:
  schedule: "0 9 * * MON"
  timezone: Europe/Amsterdam
  audience: "profile.attributes.plan == 'trial' and profile.attributes.country == 'NL'"
re_entry: {re_entry}
steps:
  - {{id: hello, type: send, message: hello, channels: [email]}}
messages:
  hello:
    email:
      subject: "Run {{{{ event.properties.run_id }}}}"
      body: "{{{{ event.type }}}} at {{{{ event.properties.scheduled_at }}}}"
"""


def _problems(text: str) -> list[str]:
    with pytest.raises(JourneyDefinitionError) as caught:
        load_text(text, "j.yaml")
    return [str(p) for p in caught.value.problems]


def _journey(trigger: str, steps: str = "steps: [{id: done, type: exit}]") -> str:
    return f"id: j\ntrigger:\n{trigger}\n{steps}\n"


@pytest.mark.parametrize(("trigger", "expected"), [
    ('  schedule: "0 9 * * MONN"\n  audience: "true"',
     "j.yaml:3: trigger.schedule: '0 9 * * MONN' is not a valid cron"),
    ('  schedule: "0 9 * *"\n  audience: "true"', "j.yaml:3: trigger.schedule: '0 9 * *' is not a 5-field cron"),
    ('  schedule: "0 9 31 2 *"\n  audience: "true"', "j.yaml:3: trigger.schedule: '0 9 31 2 *' is not a valid cron"),
    ('  at: "2026-12-24T09:00:00Z"\n  timezone: Europe/Amsterdm\n  audience: "true"',
     "j.yaml:4: trigger.timezone: 'Europe/Amsterdm' is not an IANA time zone"),
    ('  at: "Christmas"\n  audience: "true"', "j.yaml:3: trigger.at: 'Christmas' is not an ISO 8601 date and time"),
    ('  schedule: "0 9 * * MON"', "j.yaml:2: trigger: a 'schedule' trigger needs an 'audience'"),
    ('  event: cart.abandoned\n  audience: "true"', "j.yaml:2: trigger: 'audience' and 'timezone' go with"),
    ('  event: cart.abandoned\n  at: "2026-12-24T09:00:00Z"\n  audience: "true"',
     "j.yaml:2: trigger: a trigger needs exactly one of 'event', 'schedule' or 'at', not event and at"),
    ('  at: "2026-12-24T09:00:00Z"\n  when: "true"\n  audience: "true"', "j.yaml:2: trigger: 'when' goes with 'event'"),
    ('  at: "2026-12-24T09:00:00Z"\n  audience: "profile.attributes.plan =="', "j.yaml:4: trigger: expression "),
    ('  at: "2026-12-24T09:00:00Z"\n  audience: "user.plan == 1"', "j.yaml:4: trigger: expression 'user.plan == 1': "
     "unknown name 'user'"),
])
def test_a_bad_audience_trigger_is_refused_at_its_line(trigger: str, expected: str) -> None:
    problems = _problems(_journey(trigger))
    assert any(p.startswith(expected) for p in problems), problems


def test_validate_names_the_field_and_line_of_a_bad_cron(tmp_path: Path) -> None:
    path = tmp_path / "j.yaml"
    path.write_text(_journey('  schedule: "0 25 * * *"\n  audience: "true"'), encoding="utf-8")
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    assert f"{path}:3: trigger.schedule: '0 25 * * *' is not a valid cron expression" in result.output


def test_an_at_without_offset_is_local_to_the_trigger_timezone() -> None:
    journey = load_text(_journey('  at: "2026-12-24T09:00:00"\n  timezone: Europe/Amsterdam\n  audience: "true"'),
                        "j.yaml")
    document = simulate(journey, [], [Profile("u1")], load_policy())
    assert [r["scheduled_at"] for r in document["runs"]] == ["2026-12-24T08:00:00Z"]
    assert document["summary"]["entered"] == 1


def _profiles(*rows: tuple[str, str, str]) -> list[Profile]:
    return [Profile(user, "Europe/Amsterdam", email=f"{user}@example.com", attributes={"plan": plan, "country": c})
            for user, plan, c in rows]


def test_a_run_enters_each_matching_profile_once_with_the_runs_entry_event() -> None:
    journey = load_text(AUDIENCE.format(re_entry="always"), "trials.yaml")
    people = _profiles(("a", "trial", "NL"), ("b", "paid", "NL"), ("c", "trial", "BE"), ("d", "trial", "NL"))
    document = simulate(journey, [], people, load_policy(), start=datetime(2026, 3, 20, tzinfo=UTC))
    assert document["runs"] == [{"run_id": "r1", "trigger": "schedule", "scheduled_at": "2026-03-23T08:00:00Z",
                                 "profiles": 4, "matched": 2, "entered": 2, "skipped": {}}]
    assert sorted(i["user_id"] for i in document["instances"]) == ["a", "d"]
    skipped = document["skipped"]  # no email consent: the send is skipped, but the instance entered
    assert [s["user_id"] for s in skipped] == ["a", "d"]
    timeline = [t for t in document["timeline"] if t["action"] == "enter"]
    assert [t["at"] for t in timeline] == ["2026-03-23T08:00:00Z"] * 2


def test_weekly_runs_follow_the_local_clock_across_summer_time_and_respect_re_entry() -> None:
    journey = load_text(AUDIENCE.format(re_entry='"after 10d"'), "trials.yaml")
    people = _profiles(("a", "trial", "NL"))
    document = simulate(journey, [], people, load_policy(), start=datetime(2026, 3, 20, tzinfo=UTC),
                        until=datetime(2026, 4, 7, tzinfo=UTC))
    assert [(r["scheduled_at"], r["entered"], r["skipped"]) for r in document["runs"]] == [
        ("2026-03-23T08:00:00Z", 1, {}),  # 09:00 CET
        ("2026-03-30T07:00:00Z", 0, {"re_entry": 1}),  # 09:00 CEST, 7 days after the first entry
        ("2026-04-06T07:00:00Z", 1, {}),  # 14 days after: again
    ]


def test_an_audience_that_fails_for_a_profile_counts_it_as_skipped_not_matched() -> None:
    journey = load_text(_journey('  at: "2026-01-05T09:00:00Z"\n  audience: "profile.attributes.score > 10"'),
                        "j.yaml")
    people = [Profile("a", attributes={"score": 20}), Profile("b"), Profile("c", attributes={"score": 1})]
    (run,) = simulate(journey, [], people, load_policy())["runs"]
    assert (run["profiles"], run["matched"], run["entered"], run["skipped"]) == (3, 1, 1, {"audience_error": 1})


def test_a_scheduled_journey_needs_a_start_when_there_is_nothing_to_start_the_clock() -> None:
    journey = load_text(AUDIENCE.format(re_entry="always"), "trials.yaml")
    with pytest.raises(InputError, match="start"):
        simulate(journey, [], [], load_policy())


def _inactive_profiles(tmp_path: Path, run_at: datetime) -> tuple[Path, set[str]]:
    """50 customers whose last purchase is 0 to 98 days before the run, two without one."""
    rows: list[dict[str, Any]] = []
    inactive = set()
    for n in range(50):
        last = run_at - timedelta(days=2 * n, hours=1)
        rows.append({"user_id": f"c{n:02d}", "email": f"c{n}@example.com", "timezone": "Europe/Amsterdam",
                     "attributes": {"first_name": f"C{n}", "lifetime_value": 10 * n,
                                    "last_purchase_at": last.isoformat().replace("+00:00", "Z")},
                     "consents": [{"channel": "email", "category": "marketing", "granted": True,
                                   "at": "2025-01-01T00:00:00Z"}]})
        if (run_at - last).total_seconds() > 30 * 86400:
            inactive.add(f"c{n:02d}")
    rows += [{"user_id": "never", "attributes": {}}, {"user_id": "empty"}]
    path = tmp_path / "profiles.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path, inactive


def test_simulating_the_win_back_journey_enters_exactly_the_inactive_profiles(tmp_path: Path) -> None:
    run_at = datetime(2026, 2, 2, 15, 0, tzinfo=UTC)  # Monday 16:00 in Amsterdam
    profiles, inactive = _inactive_profiles(tmp_path, run_at)
    result = runner.invoke(app, ["simulate", str(ROOT / "journeys" / "win-back.yaml"), "--profiles", str(profiles),
                                 "--start", "2026-01-27T00:00:00Z", "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    (run,) = document["runs"]
    assert run["scheduled_at"] == "2026-02-02T15:00:00Z" and run["trigger"] == "schedule"
    assert {i["user_id"] for i in document["instances"]} == inactive
    assert len(document["instances"]) == len(inactive) == run["matched"] == run["entered"] == 35
    assert run["profiles"] == 52


def test_cli_simulate_of_an_event_journey_still_needs_events(tmp_path: Path) -> None:
    result = runner.invoke(app, ["simulate", str(ROOT / "journeys" / "cart-abandonment.yaml")])
    assert result.exit_code == 1
    assert "--events: required for cart-abandonment" in result.output


def test_cli_simulate_runs_every_occurrence_up_to_until_and_shows_them(tmp_path: Path) -> None:
    profiles, _ = _inactive_profiles(tmp_path, datetime(2026, 2, 2, 15, 0, tzinfo=UTC))
    result = runner.invoke(app, ["simulate", str(ROOT / "journeys" / "win-back.yaml"), "--profiles", str(profiles),
                                 "--start", "2026-01-27T00:00:00Z", "--until", "2026-02-16T15:00:00Z", "--summary"])
    assert result.exit_code == 0, result.output
    assert "audience runs" in result.output
    assert "Feb 02 15:00" in result.output and "Feb 09 15:00" in result.output and "Feb 16 15:00" in result.output
    assert "re_entry 35" in result.output
