"""`journey forecast`'s core: a push-then-SMS journey over 10,000 people, through the same
evaluator, with each message's outcome drawn from the reach model; history moves it; two versions
compared on the same draws."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from channels import Policy, Profile, load_policy
from engine.compiler import CompiledJourney, load_text
from engine.events import Event
from engine.forecast.classes import Reads
from engine.forecast.population import Population
from engine.forecast.runner import Options, Version, forecast

PUSH, SMS = 0.0001, 0.0083
AT = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)  # noon UTC: no quiet hours
CONSENTS = [{"channel": c, "category": "marketing", "granted": True, "source": "form", "at": "2025-12-01T00:00:00Z"}
            for c in ("push", "sms")]


def push_then_sms_yaml(after: str, journey_id: str = "push-then-sms", sms: str = "Your cart is waiting") -> str:
    """The push; the SMS if the push is not opened within `after`."""
    return f"""
id: {journey_id}
category: marketing
trigger: {{event: cart.abandoned}}
steps:
  - {{id: nudge, type: send, message: nudge, channels: [push, sms], strategy: escalate, escalate_after: {after}}}
messages:
  nudge:
    push: {{title: "Still thinking?", body: "Your cart is waiting"}}
    sms: {{text: "{sms}"}}
"""


def push_then_sms(after: str, journey_id: str = "push-then-sms") -> CompiledJourney:
    return load_text(push_then_sms_yaml(after, journey_id), f"{journey_id}.yaml")


@pytest.fixture(scope="module")
def policy() -> Policy:
    chosen = load_policy(None)
    assert (chosen.channels["push"].reach, chosen.cost("push"), chosen.cost("sms")) == (0.3, PUSH, SMS)
    return chosen


def population(n: int, history: dict[str, Any] | None = None, at: datetime = AT) -> Population:
    """`n` people who abandon a cart at `at`; the odd ones with `history` as their engagement."""
    profiles, events = [], []
    for i in range(n):
        engaged = history is not None and i % 2 == 1
        profiles.append(Profile.from_dict({
            "user_id": f"u{i}", "timezone": "UTC", "phone": "+14155550100", "push_token": f"t{i}",
            "attributes": {"cohort": "history" if engaged else "new"}, "consents": CONSENTS,
            **({"engagement": history} if engaged else {})}))
        events.append(Event("cart.abandoned", f"u{i}", at))
    return Population(profiles, events)


def run(versions: list[CompiledJourney], policy: Policy, people: Population, **options: Any) -> dict[str, Any]:
    return forecast([Version(j, policy) for j in versions], people, Options(**{"runs": 20, "seed": 7, **options}))


def covers(figure: dict[str, float], exact: float) -> bool:
    return figure["p5"] <= exact <= figure["p95"]


def test_ten_thousand_new_people_get_seven_thousand_texts(policy: Policy) -> None:
    document = run([push_then_sms("1h")], policy, population(10_000))
    sms, push = document["channels"]["sms"]["messages"], document["channels"]["push"]["messages"]
    assert push == {"mean": 10_000, "p5": 10_000, "p95": 10_000}
    assert abs(sms["mean"] - 7000) <= 0.02 * 7000 and covers(sms, 7000)
    exact_cost = 10_000 * PUSH + 7000 * SMS
    assert abs(document["cost"]["mean"] - exact_cost) <= 0.02 * exact_cost and covers(document["cost"], exact_cost)
    assert abs(document["channels"]["push"]["reached"]["mean"] - 3000) <= 0.02 * 3000
    assert document["never_reached"]["mean"] < 10_000 - document["reached"]["mean"] + 1
    assert document["time_to_engagement"]["p50"] is not None
    assert document["evaluated_paths"] < 50  # 200,000 person-runs, a few paths each evaluated once
    assert run([push_then_sms("1h")], policy, population(10_000)) == document  # the seed decides every draw


def test_history_moves_the_forecast_half_at_push_0_of_20(policy: Policy) -> None:
    """A person who opened none of 20 pushes opens the next one with (4 x 0.3 + 0) / (4 + 20) = 0.05."""
    document = run([push_then_sms("1h")], policy, population(10_000, {"push": {"sent": 20, "engaged": 0}}),
                   by="attributes.cohort")
    expected = 5000 * 0.7 + 5000 * 0.95
    assert abs(document["channels"]["sms"]["messages"]["mean"] - expected) <= 0.02 * expected
    cohorts = document["segments"]["values"]
    assert document["segments"]["by"] == "attributes.cohort" and set(cohorts) == {"new", "history"}
    assert abs(cohorts["history"]["channels"]["sms"]["messages"]["mean"] - 4750) <= 0.02 * 4750
    assert abs(cohorts["new"]["channels"]["sms"]["messages"]["mean"] - 3500) <= 0.02 * 3500
    assert cohorts["history"]["profiles"] == cohorts["new"]["profiles"] == 5000


def test_waiting_four_hours_sends_fewer_texts_and_the_interval_says_so(policy: Policy) -> None:
    """The few who open a push two to four hours late get no text when the journey waits 4 h."""
    document = run([push_then_sms("2h"), push_then_sms("4h", "push-then-sms-4h")], policy, population(10_000))
    difference = document["difference"]["channels"]["sms"]["messages"]
    assert document["vs"]["journey"] == "push-then-sms-4h"
    assert difference["p95"] < 0 and difference["mean"] < 0  # excludes zero
    assert document["vs"]["channels"]["sms"]["messages"]["mean"] - document["channels"]["sms"]["messages"]["mean"] \
        == pytest.approx(difference["mean"])


def test_two_identical_files_differ_by_nothing(policy: Policy) -> None:
    document = run([push_then_sms("2h"), push_then_sms("2h")], policy, population(2000))
    difference = document["difference"]
    assert difference["channels"]["sms"]["messages"] == {"mean": 0, "p5": 0, "p95": 0}
    assert covers(difference["cost"], 0) and covers(difference["reached"], 0)


def test_quiet_hours_and_missing_consent_are_counted_as_the_evaluator_decides(policy: Policy) -> None:
    """At 23:00 UTC a marketing push waits for 08:00: every send deferred once; without SMS consent
    the escalation's text is skipped (`no_consent`)."""
    people = population(200, at=datetime(2026, 1, 5, 23, 0, tzinfo=UTC))
    document = run([push_then_sms("1h")], policy, people)
    assert document["deferred_quiet_hours"]["mean"] >= 200
    no_sms = Population([Profile.from_dict({**p.to_dict(), "consents": CONSENTS[:1], "engagement": {}})
                         for p in people.profiles], people.events)  # type: ignore[union-attr]
    skipped = run([push_then_sms("1h")], policy, no_sms)
    assert "sms" not in skipped["channels"] or skipped["channels"]["sms"]["messages"]["mean"] == 0
    assert skipped["never_reached"]["mean"] > 100


def test_a_send_put_off_by_quiet_hours_and_cancelled_by_an_exit_is_counted_cancelled(policy: Policy) -> None:
    """Carts left at 23:00 UTC: the push waits for 08:00; those who order at 01:00 leave the journey."""
    journey = load_text(push_then_sms_yaml("1h").replace("steps:", "exit_on: [order.placed]\nsteps:"), "exit.yaml")
    people = population(100, at=datetime(2026, 1, 5, 23, 0, tzinfo=UTC))
    orders = [Event("order.placed", f"u{i}", datetime(2026, 1, 6, 1, 0, tzinfo=UTC)) for i in range(0, 100, 4)]
    events = sorted([*people.events, *orders], key=lambda e: e.timestamp)  # type: ignore[misc]
    document = run([journey], policy, Population(people.profiles, events))
    assert document["skipped"]["cancelled"] == {"mean": 25, "p5": 25, "p95": 25}
    assert document["channels"]["push"]["messages"]["mean"] == 75
    assert document["ended"]["exited"]["mean"] == 25


def test_people_alike_by_what_the_journey_reads_share_paths_and_only_they(policy: Policy) -> None:
    """A first name only written out tells people apart by its length and characters: 150
    characters and a 2-letter name is one SMS segment, an 11-letter name two; a condition on
    the name reads its value."""
    text = "x" * 150 + " {{ profile.attributes.first_name }}"
    journey = load_text(f"""
id: text-only
category: transactional
trigger: {{event: cart.abandoned}}
steps:
  - {{id: text, type: send, message: m, channels: [sms]}}
messages:
  m:
    sms: {{text: "{text}"}}
""", "text-only.yaml")
    names = ["Al", "Bo", "Alexandrina", "Bartholomew"]
    profiles = [Profile.from_dict({"user_id": f"u{i}", "timezone": "UTC", "phone": "+14155550100",
                                   "attributes": {"first_name": names[i % 4]},
                                   "consents": [{**CONSENTS[1], "category": "transactional"}]}) for i in range(400)]
    people = Population(profiles, [Event("cart.abandoned", f"u{i}", AT) for i in range(400)])
    document = run([journey], policy, people, runs=3)
    assert document["cost"]["mean"] == pytest.approx(200 * SMS + 200 * 2 * SMS)
    assert document["evaluated_paths"] <= 2 * 4  # two lengths of name, each text's four outcomes at most
    reads = Reads(journey)
    key = {name: reads.key(p, [Event("cart.abandoned", p.user_id, AT)], AT, policy)
           for name, p in zip(names, profiles, strict=False)}
    assert key["Al"] == key["Bo"] and key["Alexandrina"] == key["Bartholomew"] and key["Al"] != key["Alexandrina"]
    asked = load_text(push_then_sms_yaml("1h").replace("steps:", "steps:\n  - {id: gate, type: branch, branches: "
                                                       "[{when: \"profile.attributes.first_name == 'Al'\", next: "
                                                       "nudge}], default: nudge}"), "asked.yaml")
    reads = Reads(asked)
    assert reads.key(profiles[0], [], AT, policy) != reads.key(profiles[1], [], AT, policy)
