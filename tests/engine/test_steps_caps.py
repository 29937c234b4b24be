"""How much one person is sent: a throttle step (N entries per period pass), a journey's own
`limits`, and the policy's cap across every channel (run plain and with state round-trips)."""

from __future__ import annotations

from pathlib import Path

from channels import load_policy
from tests.engine.conftest import Simulate, event, profile, sent

DEAL = """
id: deal
category: transactional
trigger: {event: deal.viewed}
steps:
  - {id: once_a_day, type: throttle, limit: 1, period: 1d THROTTLE}
  - {id: tell, type: send, message: deal, channels: [sms]}
messages:
  deal: {sms: {text: "Today's deal"}}
  later: {email: {subject: "Deals", body: "Come back tomorrow"}}
"""
SMS = "sms:transactional"


def _hour(h: int) -> str:
    return f"2026-01-{5 + h // 24:02d}T{h % 24:02d}:00:00Z"


def test_throttle_three_entries_in_a_day_pass_once_and_two_are_throttled(simulate: Simulate) -> None:
    result = simulate(DEAL.replace(" THROTTLE", ""), [event("deal.viewed", "u1", _hour(h)) for h in (0, 5, 10, 24)],
                      [profile("u1", SMS)])
    assert sent(result) == [("u1", "sms", _hour(0)), ("u1", "sms", _hour(24))]
    assert [(i["status"], i.get("reason")) for i in result["instances"]] == [
        ("completed", None), ("exited", "throttled"), ("exited", "throttled"), ("completed", None)]


def test_throttle_per_key_and_on_throttled(simulate: Simulate) -> None:
    """Keyed by product: a second product passes; over the limit, on_throttled goes to its step."""
    journey = DEAL.replace(" THROTTLE", ", key: event.properties.product, on_throttled: quiet").replace(
        "channels: [sms]}",
        "channels: [sms], next: done}\n  - {id: quiet, type: send, message: later, channels: [email]}\n"
        "  - {id: done, type: exit}")
    events = [event("deal.viewed", "u1", _hour(0), product="a"), event("deal.viewed", "u1", _hour(1), product="b"),
              event("deal.viewed", "u1", _hour(2), product="a")]
    result = simulate(journey, events, [profile("u1", SMS, "email:transactional")])
    assert [(m["channel"], m["at"]) for m in result["messages"]] == [
        ("sms", _hour(0)), ("sms", _hour(1)), ("email", _hour(2))]
    assert [i["path"] for i in result["instances"]][2] == ["once_a_day", "quiet", "done"]


NEWS = """
id: news
category: marketing
trigger: {event: news}
limits: {messages: 2, per: 7d}
steps:
  - {id: tell, type: send, message: news, channels: [sms, email], strategy: first}
messages:
  news: {sms: {text: "News"}, email: {subject: "News", body: "News"}}
"""
MARKETING = ("sms:marketing", "email:marketing")


def test_journey_limits_send_two_and_record_journey_cap_for_the_third(simulate: Simulate) -> None:
    events = [event("news", "u1", _hour(h)) for h in (9, 33, 57, 9 + 24 * 7)]
    result = simulate(NEWS, events, [profile("u1", *MARKETING)])
    assert [m["at"] for m in result["messages"]] == [_hour(9), _hour(33), _hour(9 + 24 * 7)]
    (skip,) = result["skipped"]
    assert (skip["at"], skip["reason"]) == (_hour(57), "journey_cap")
    assert [(d["channel"], d["reason"]) for d in skip["decisions"]] == [("sms", "journey_cap"),
                                                                        ("email", "journey_cap")]


SPREAD = """
id: spread
category: marketing
trigger: {event: news}
steps:
  - {id: first, type: send, message: news, channels: [sms]}
  - {id: pause, type: wait, duration: 1h}
  - {id: second, type: send, message: news, channels: [email]}
  - {id: again, type: wait, duration: 1h}
  - {id: third, type: send, message: news, channels: [sms, email], strategy: first}
messages:
  news: {sms: {text: "News"}, email: {subject: "News", body: "News"}}
"""


def test_all_channels_cap_holds_across_sms_and_email(simulate: Simulate, tmp_path: Path) -> None:
    """Two marketing messages a day whatever the channel: an SMS and an email use the day up, and
    the third is refused on both (each channel's own cap, 3 a day, would let it through)."""
    policy = tmp_path / "policy.yaml"
    policy.write_text("caps: {all_channels: {marketing: {per_day: 2}}}\n", encoding="utf-8")
    capped = simulate(SPREAD, [event("news", "u1", _hour(9))], [profile("u1", *MARKETING)], load_policy(policy))
    assert [(m["step"], m["channel"]) for m in capped["messages"]] == [("first", "sms"), ("second", "email")]
    (skip,) = capped["skipped"]
    assert (skip["step"], skip["reason"], skip["at"]) == ("third", "global_cap", _hour(11))
    assert [(d["channel"], d["reason"]) for d in skip["decisions"]] == [("sms", "global_cap"), ("email", "global_cap")]
    free = simulate(SPREAD, [event("news", "u1", _hour(9))], [profile("u1", *MARKETING)])
    assert [m["step"] for m in free["messages"]] == ["first", "second", "third"]
