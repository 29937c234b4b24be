"""strategy auto and best_time in `journey simulate`, as a user runs it: the profiles file brings
each person's engagement, every decision shows its numbers and its reason, the counts grow as the
simulated events arrive, and `wait: {until: best_time}` waits for the person's evening."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from engine.cli import app

ALERT = """
id: account-alert
category: transactional
trigger: {event: account.alert}
steps:
  - {id: warn, type: send, message: warning, channels: [push, sms], strategy: auto, urgency: high}
messages:
  warning:
    push: {title: "Account", body: "Something needs your attention"}
    sms: {text: "Something needs your attention"}
"""
SMS_OK = [{"channel": "sms", "category": "transactional", "granted": True}]


def person(user_id: str, engagement: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    doc = {"user_id": user_id, "push_token": f"tok-{user_id}", "phone": f"+1415555010{len(user_id)}",
           "consents": SMS_OK, **fields}
    if engagement is not None:
        doc["engagement"] = engagement
    return doc


def simulate(tmp_path: Path, journey: str, profiles: list[dict[str, Any]], events: list[dict[str, Any]],
             *args: str) -> dict[str, Any]:
    (tmp_path / "j.yaml").write_text(journey, encoding="utf-8")
    (tmp_path / "p.jsonl").write_text("\n".join(json.dumps(p) for p in profiles) + "\n", encoding="utf-8")
    (tmp_path / "e.jsonl").write_text("\n".join(json.dumps(e) for e in events) + "\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["simulate", str(tmp_path / "j.yaml"), "--events", str(tmp_path / "e.jsonl"),
                                      "--profiles", str(tmp_path / "p.jsonl"), "--json", *args])
    assert result.exit_code == 0, result.output
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def alert(user_id: str, at: str = "2026-01-05T15:00:00Z") -> dict[str, Any]:
    return {"type": "account.alert", "user_id": user_id, "timestamp": at}


def first_message(document: dict[str, Any], user_id: str) -> dict[str, Any]:
    return next(m for m in document["messages"] if m["user_id"] == user_id)


def test_three_profiles_with_auto_at_urgency_high_each_get_their_most_likely_channel_first(tmp_path: Path) -> None:
    """One opened 18 of 20 pushes and clicked 1 of 10 texts: push first. One opened no push in 20
    and clicked 9 texts in 10: sms first. One has no history: the priors (sms 0.9, push 0.3)."""
    profiles = [person("fan", {"push": {"sent": 20, "engaged": 18}, "sms": {"sent": 10, "engaged": 1}}),
                person("texter", {"push": {"sent": 20, "engaged": 0}, "sms": {"sent": 10, "engaged": 9}}),
                person("newcomer")]
    document = simulate(tmp_path, ALERT, profiles, [alert(p["user_id"]) for p in profiles])
    first = {user: first_message(document, user) for user in ("fan", "texter", "newcomer")}
    assert {user: m["channel"] for user, m in first.items()} == {"fan": "push", "texter": "sms", "newcomer": "sms"}
    figures = {user: {d["channel"]: (d["reach"], d["cost"]) for d in m["decisions"]} for user, m in first.items()}
    assert figures == {"fan": {"push": (0.8, 0.0001), "sms": (0.3286, 0.0083)},
                       "texter": {"push": (0.05, 0.0001), "sms": (0.9, 0.0083)},
                       "newcomer": {"push": (0.3, 0.0001), "sms": (0.9, 0.0083)}}
    assert first["texter"]["choice"] == {
        "strategy": "auto", "order": ["sms", "push"],
        "reason": "sms first: reach 0.90 at 0.0083 beats push 0.05 at 0.0001 for urgency high"}
    assert first["fan"]["choice"]["order"] == ["push", "sms"]
    escalated = document["messages"][3:]
    assert [(m["user_id"], m["channel"], m["at"]) for m in escalated] == [
        (user, channel, "2026-01-05T15:15:00Z")  # no engagement within 15 m: the next channel
        for user, channel in (("fan", "sms"), ("texter", "push"), ("newcomer", "push"))]
    assert escalated[1]["choice"]["reason"] == "no engagement on sms within 15m; push only: reach 0.05 at 0.0001 " \
                                               "for urgency high"


def test_the_tables_show_every_reach_and_each_reason(tmp_path: Path) -> None:
    profiles = [person("texter", {"push": {"sent": 20, "engaged": 0}, "sms": {"sent": 10, "engaged": 9}})]
    simulate(tmp_path, ALERT, profiles, [alert("texter")])
    result = CliRunner().invoke(app, ["simulate", str(tmp_path / "j.yaml"), "--events", str(tmp_path / "e.jsonl"),
                                      "--profiles", str(tmp_path / "p.jsonl")], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "push ok (reach 0.05), sms ok (reach 0.90)" in result.output
    assert "sms first: reach 0.90 at 0.0083 beats push 0.05 at 0.0001 for urgency high" in result.output


DIGEST = """
id: weekly-digest
category: transactional
trigger: {event: digest.ready}
steps:
  - {id: tell, type: send, message: digest, channels: [in_app, push], strategy: auto, urgency: low}
messages:
  digest:
    in_app: {title: "Your week", body: "Three things happened"}
    push: {title: "Your week", body: "Three things happened"}
"""


def test_urgency_low_sends_push_to_someone_who_never_opens_in_app_but_reliably_opens_push(tmp_path: Path) -> None:
    in_app_ok = [{"channel": "in_app", "category": "transactional", "granted": True}]
    profiles = [person("pusher", {"in_app": {"sent": 30, "engaged": 0}, "push": {"sent": 30, "engaged": 27}},
                       consents=in_app_ok),
                person("newcomer", consents=in_app_ok)]
    events = [{"type": "digest.ready", "user_id": p["user_id"], "timestamp": "2026-01-05T15:00:00Z"} for p in profiles]
    document = simulate(tmp_path, DIGEST, profiles, events)
    assert [(m["user_id"], m["channel"]) for m in document["messages"]] == [("pusher", "push"),
                                                                          ("newcomer", "in_app")]
    pusher = document["messages"][0]
    assert {d["channel"]: d["reach"] for d in pusher["decisions"]} == {"in_app": 0.0118, "push": 0.8294}
    assert pusher["choice"]["reason"] == ("push: the cheapest with reach at least 0.10: 0.83 at 0.0001; in_app 0.01 "
                                          "below it for urgency low")


ASK_TWICE = """
id: survey
category: transactional
trigger: {event: visit.ended}
steps:
  - {id: ask, type: send, message: ask, channels: [push, sms], strategy: auto, urgency: high}
  - {id: later, type: wait, duration: 1d}
  - {id: again, type: send, message: ask, channels: [push, sms], strategy: auto, urgency: high}
messages:
  ask:
    push: {title: "How was it?", body: "Tell us in one tap"}
    sms: {text: "How was it? Tell us in one tap"}
"""


def test_the_counts_from_the_profiles_file_grow_as_simulated_events_arrive(tmp_path: Path) -> None:
    """Two pushes opened in the run (history: 3 of 10) make push the more likely channel for the
    second ask: the counts the second decision reads are those the first events left."""
    profiles = [person("ann", {"push": {"sent": 10, "engaged": 3}, "sms": {"sent": 10, "engaged": 5}})]
    events = [{"type": "visit.ended", "user_id": "ann", "timestamp": "2026-01-05T15:00:00Z"},
              {"type": "push.opened", "user_id": "ann", "timestamp": "2026-01-05T15:20:00Z"},
              {"type": "sms.clicked", "user_id": "ann", "timestamp": "2026-01-05T15:21:00Z"}]
    document = simulate(tmp_path, ASK_TWICE, profiles, events)
    sent = [(m["step"], m["channel"]) for m in document["messages"]]
    assert sent[:2] == [("ask", "sms"), ("ask", "push")]  # sms (8.6 / 14 = 0.61) then push, 15 m later
    reach = {d["channel"]: d["reach"] for d in document["messages"][2]["decisions"]}
    # Before the run: push (1.2 + 3) / 14 = 0.30, sms (3.6 + 5) / 14 = 0.61. In it, each was sent once
    # and engaged with once; a day later every count weighs 2^(-1/30) (the half-life is 30 days).
    day = 0.5 ** (1 / 30)
    assert reach["push"] == pytest.approx((1.2 + 4 * day) / (4 + 11 * day), abs=0.002)
    assert reach["sms"] == pytest.approx((3.6 + 6 * day) / (4 + 11 * day), abs=0.002)


EVENING = """
id: evening-reminder
category: marketing
trigger: {event: plan.renewed}
steps:
  - {id: best, type: wait, until: best_time, within: 24h}
  - {id: remind, type: send, message: remind, channels: [push]}
messages:
  remind:
    push: {title: "Renewed", body: "Your plan runs another year"}
"""


def test_best_time_sends_at_the_persons_most_engaged_local_hour(tmp_path: Path) -> None:
    """History concentrated at 19:00 in America/Chicago: a renewal at 09:00 there waits till 19:00
    (01:00 UTC the next day, CST); someone without history waits for the policy's 10:00."""
    push_ok = [{"channel": "push", "category": "marketing", "granted": True}]
    evenings = {"push": {"sent": 20, "engaged": 15, "by_hour": {"19": 12, "20": 2, "8": 1}}}
    profiles = [person("night", evenings, timezone="America/Chicago", consents=push_ok),
                person("new", timezone="America/Chicago", consents=push_ok)]
    events = [{"type": "plan.renewed", "user_id": p["user_id"], "timestamp": "2026-01-05T15:00:00Z"}
              for p in profiles]
    document = simulate(tmp_path, EVENING, profiles, events)
    assert {m["user_id"]: m["at"] for m in document["messages"]} == {"night": "2026-01-06T01:00:00Z",
                                                                     "new": "2026-01-05T16:00:00Z"}
