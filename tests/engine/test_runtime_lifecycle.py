"""Instance lifecycle, escalation chains, STOP keywords, quiet hours, idempotency, versions."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from channels import Profile, load_policy
from engine.clock import VirtualClock
from engine.compiler import load_text
from engine.events import Event
from engine.runtime import Runtime
from engine.service import Engine
from engine.state import Send
from engine.stores.memory import MemoryStore
from tests.engine.conftest import Simulate, event, profile, sent, statuses

CART = """
id: cart
trigger: {event: cart.abandoned}
exit_on: [cart.emptied, order.placed]
goal: {event: order.placed, within: 1d}
steps:
  - {id: wait_1h, type: wait, duration: 1h}
  - {id: nudge, type: send, message: reminder, channels: [push, sms], strategy: escalate, escalate_after: 2h}
  - {id: later, type: wait, duration: 2d}
  - {id: again, type: send, message: reminder, channels: [push]}
messages:
  reminder:
    push: {title: Cart, body: "Your cart"}
    sms: {text: "Your cart is waiting"}
"""
SHOPPER = ("push:marketing", "sms:marketing")


def test_exit_on_event_exits_and_cancels_the_pending_timer(simulate: Simulate) -> None:
    result = simulate(CART, [event("cart.abandoned", "u1"), event("cart.emptied", "u1", "2026-01-05T10:30:00Z")],
                      [profile("u1", *SHOPPER)])
    assert statuses(result) == {"u1": "exited"}
    assert result["messages"] == []
    assert result["instances"][0]["path"] == ["wait_1h"]


def test_goal_within_window_converts(simulate: Simulate) -> None:
    """order.placed is both an exit and the goal: the goal wins."""
    result = simulate(CART, [event("cart.abandoned", "u1"), event("order.placed", "u1", "2026-01-05T12:00:00Z")],
                      [profile("u1", *SHOPPER)])
    assert statuses(result) == {"u1": "converted"}
    assert result["summary"]["converted"] == 1
    assert sent(result) == [("u1", "push", "2026-01-05T11:00:00Z")]


def test_goal_after_its_window_is_only_an_exit(simulate: Simulate) -> None:
    result = simulate(CART, [event("cart.abandoned", "u1"), event("order.placed", "u1", "2026-01-06T12:00:00Z")],
                      [profile("u1", *SHOPPER)])
    assert statuses(result) == {"u1": "exited"}


def test_escalate_stops_at_engagement(simulate: Simulate) -> None:
    result = simulate(CART, [event("cart.abandoned", "u1"), event("push.opened", "u1", "2026-01-05T11:20:00Z")],
                      [profile("u1", *SHOPPER)])
    assert sent(result) == [("u1", "push", "2026-01-05T11:00:00Z"), ("u1", "push", "2026-01-07T11:20:00Z")]


def test_escalate_moves_on_when_ignored(simulate: Simulate) -> None:
    result = simulate(CART, [event("cart.abandoned", "u1")], [profile("u1", *SHOPPER)])
    assert sent(result) == [("u1", "push", "2026-01-05T11:00:00Z"), ("u1", "sms", "2026-01-05T13:00:00Z"),
                            ("u1", "push", "2026-01-07T13:00:00Z")]
    assert statuses(result) == {"u1": "completed"}


def test_escalate_moves_on_at_once_when_the_channel_fails(simulate: Simulate) -> None:
    result = simulate(CART, [event("cart.abandoned", "u1"), event("push.failed", "u1", "2026-01-05T11:00:05Z")],
                      [profile("u1", *SHOPPER)])
    assert sent(result)[:2] == [("u1", "push", "2026-01-05T11:00:00Z"), ("u1", "sms", "2026-01-05T11:00:05Z")]


def test_feedback_pinned_to_another_message_does_not_escalate(simulate: Simulate) -> None:
    result = simulate(CART, [event("cart.abandoned", "u1"),
                             event("push.failed", "u1", "2026-01-05T11:00:05Z", message_id="some-older-message")],
                      [profile("u1", *SHOPPER)])
    assert sent(result)[:2] == [("u1", "push", "2026-01-05T11:00:00Z"), ("u1", "sms", "2026-01-05T13:00:00Z")]


def test_stop_before_a_scheduled_sms_means_it_is_not_sent(simulate: Simulate) -> None:
    """The push went out at 11:00 with SMS next in line for 13:00; STOP at 11:30 cancels that SMS."""
    result = simulate(CART, [event("cart.abandoned", "u1"),
                             event("sms.inbound", "u1", "2026-01-05T11:30:00Z", text="  stop ")],
                      [profile("u1", *SHOPPER)])
    by_message = [(m["message"], m["channel"], m["step"], m["at"]) for m in result["messages"]]
    assert by_message[:2] == [("reminder", "push", "nudge", "2026-01-05T11:00:00Z"),
                              ("stop_confirmation", "sms", None, "2026-01-05T11:30:00Z")]
    assert all(m["channel"] != "sms" or m["step"] is None for m in result["messages"])
    escalation_decisions = [t for t in result["timeline"] if t["action"] == "escalation_exhausted"]
    assert escalation_decisions, "the sms escalation was considered and refused"


def test_escalation_chain_holds_only_channels_eligible_at_send_time(simulate: Simulate) -> None:
    """Without SMS consent the push is the last channel: the step ends at once, no 2h wait."""
    result = simulate(CART, [event("cart.abandoned", "u1")], [profile("u1", "push:marketing")])
    assert sent(result) == [("u1", "push", "2026-01-05T11:00:00Z"), ("u1", "push", "2026-01-07T11:00:00Z")]


def test_a_sentence_containing_stop_is_not_a_stop(simulate: Simulate) -> None:
    result = simulate(CART, [event("cart.abandoned", "u1"),
                             event("sms.inbound", "u1", "2026-01-05T10:10:00Z", text="please don't stop")],
                      [profile("u1", *SHOPPER)])
    assert ("u1", "sms", "2026-01-05T13:00:00Z") in sent(result)
    assert all(m["step"] is not None for m in result["messages"])


def test_start_after_stop_grants_again(simulate: Simulate) -> None:
    result = simulate(CART, [event("sms.inbound", "u1", "2026-01-05T09:00:00Z", text="STOP"),
                             event("sms.inbound", "u1", "2026-01-05T09:30:00Z", text="Start"),
                             event("cart.abandoned", "u1")], [profile("u1", *SHOPPER)])
    assert [m["message"] for m in result["messages"]][:2] == ["stop_confirmation", "start_confirmation"]
    assert ("u1", "sms", "2026-01-05T13:00:00Z") in sent(result)


def test_help_gets_the_help_text(simulate: Simulate) -> None:
    result = simulate(CART, [event("sms.inbound", "u1", text="help")], [profile("u1", *SHOPPER)])
    assert [(m["message"], m["channel"], m["encoding"], m["segments"]) for m in result["messages"]] == [
        ("help", "sms", "GSM-7", 1)]


def test_arret_revokes_like_stop_and_is_answered_in_french(simulate: Simulate) -> None:
    """The SMS due at 13:00 is not sent after `arret` at 11:30; the one confirmation is in French."""
    result = simulate(CART, [event("cart.abandoned", "u1"),
                             event("sms.inbound", "u1", "2026-01-05T11:30:00Z", text="arret")],
                      [profile("u1", *SHOPPER)])
    replies = [(m["message"], m["channel"], m["content"]["text"]) for m in result["messages"] if m["step"] is None]
    assert replies == [("stop_confirmation", "sms", load_policy().keywords["fr"].replies.stop_confirmation)]
    assert replies[0][2].startswith("Vous avez été désabonné")
    assert all(m["channel"] != "sms" or m["step"] is None for m in result["messages"])


def test_spanish_keywords_are_answered_in_spanish(simulate: Simulate) -> None:
    result = simulate(CART, [event("sms.inbound", "u1", "2026-01-05T09:00:00Z", text="ALTO"),
                             event("sms.inbound", "u1", "2026-01-05T09:10:00Z", text="Inicio"),
                             event("sms.inbound", "u1", "2026-01-05T09:20:00Z", text=" ayuda "),
                             event("cart.abandoned", "u1")], [profile("u1", *SHOPPER)])
    spanish = load_policy().keywords["es"].replies
    assert [(m["message"], m["content"]["text"]) for m in result["messages"] if m["step"] is None] == [
        ("stop_confirmation", spanish.stop_confirmation), ("start_confirmation", spanish.start_confirmation),
        ("help", spanish.help)]
    assert ("u1", "sms", "2026-01-05T13:00:00Z") in sent(result)


QUIET = """
id: promo
trigger: {event: promo}
steps:
  - {id: offer, type: send, message: offer, channels: [push]}
messages:
  offer:
    push: {body: "Sale!"}
"""


def test_marketing_send_in_quiet_hours_is_deferred_to_local_morning(simulate: Simulate) -> None:
    """22:30 in New York (03:30Z) is quiet: the push goes at 08:00 New York = 13:00Z."""
    result = simulate(QUIET, [event("promo", "u1", "2026-01-06T03:30:00Z")],
                      [profile("u1", "push:marketing", timezone="America/New_York")])
    assert sent(result) == [("u1", "push", "2026-01-06T13:00:00Z")]
    assert any(t["action"] == "deferred" for t in result["timeline"])


def test_critical_transactional_send_is_not_deferred(simulate: Simulate) -> None:
    policy = load_policy()
    policy = policy.model_copy(update={"quiet_hours": policy.quiet_hours.model_copy(
        update={"categories": ["marketing", "transactional"]})})
    journey = QUIET.replace("id: promo", "id: fraud\ncategory: transactional").replace(
        "channels: [push]", "channels: [push], urgency: critical")
    result = simulate(journey, [event("promo", "u1", "2026-01-06T03:30:00Z")],
                      [profile("u1", timezone="America/New_York")], policy)
    assert sent(result) == [("u1", "push", "2026-01-06T03:30:00Z")]


def test_frequency_cap_stops_the_fourth_marketing_push_in_a_day(simulate: Simulate) -> None:
    events = [event("promo", "u1", f"2026-01-05T1{h}:00:00Z") for h in range(4)]
    result = simulate(QUIET, events, [profile("u1", "push:marketing")])
    assert len(result["messages"]) == 3
    assert result["skipped"][0]["decisions"] == [{"channel": "push", "eligible": False, "reason": "frequency_cap"}]
    assert result["skipped"][0]["reason"] == "no_eligible_channel"


REENTRY = """
id: r
trigger: {event: go}
re_entry: {mode}
steps:
  - {id: pause, type: wait, duration: 1d}
"""


def _entries(simulate: Simulate, mode: str) -> list[str]:
    events = [event("go", "u1", "2026-01-01T00:00:00Z"), event("go", "u1", "2026-01-01T12:00:00Z"),
              event("go", "u1", "2026-01-03T00:00:00Z"), event("go", "u1", "2026-01-09T00:00:00Z")]
    result = simulate(REENTRY.replace("{mode}", mode), events, [profile("u1")])
    return [t["at"] for t in result["timeline"] if t["action"] == "enter"]


def test_re_entry_always_waits_for_the_active_instance_to_end(simulate: Simulate) -> None:
    assert _entries(simulate, "always") == ["2026-01-01T00:00:00Z", "2026-01-03T00:00:00Z", "2026-01-09T00:00:00Z"]


def test_re_entry_never(simulate: Simulate) -> None:
    assert _entries(simulate, "never") == ["2026-01-01T00:00:00Z"]


def test_re_entry_after_counts_from_the_last_entry(simulate: Simulate) -> None:
    assert _entries(simulate, '"after 7d"') == ["2026-01-01T00:00:00Z", "2026-01-09T00:00:00Z"]


ORDERS = """
id: orders
category: transactional
trigger: {event: order.shipped}
instance_key: "event.properties.order_id"
steps:
  - id: arrive
    type: wait_for
    event: order.delivered
    timeout: 3d
    on_event: done
    on_timeout: late
  - {id: late, type: send, message: late, channels: [push]}
  - {id: done, type: exit}
messages:
  late:
    push: {body: "Order {{ event.properties.order_id }} is late"}
"""


def test_instance_key_runs_one_instance_per_order(simulate: Simulate) -> None:
    events = [event("order.shipped", "u1", order_id="A"), event("order.shipped", "u1", order_id="B"),
              event("order.delivered", "u1", "2026-01-06T10:00:00Z", order_id="A")]
    result = simulate(ORDERS, events, [profile("u1")])
    assert statuses(result) == {"u1/A": "completed", "u1/B": "completed"}
    late = [(m["content"]["body"], m["at"]) for m in result["messages"]]
    assert late == [("Order B is late", "2026-01-08T10:00:00Z")]
    paths = {i["key"]: i["path"] for i in result["instances"]}
    assert paths == {"A": ["arrive", "done"], "B": ["arrive", "late", "done"]}


def test_duplicate_event_ids_are_applied_once(simulate: Simulate) -> None:
    first = {**event("promo", "u1"), "id": "evt-1"}
    result = simulate(QUIET, [first, dict(first)], [profile("u1", "push:marketing")])
    assert len(result["messages"]) == 1
    assert result["summary"]["entered"] == 1


def test_running_instances_keep_the_version_they_entered_with() -> None:
    v1 = load_text(CART, "cart.yaml")
    v2 = load_text(CART.replace("escalate_after: 2h", "escalate_after: 5h").replace('"Your cart"', '"New copy"'),
                   "cart.yaml")
    clock = VirtualClock(datetime(2026, 1, 5, 10, tzinfo=UTC))
    store = MemoryStore()
    with store.transaction() as tx:
        tx.put_profile(Profile.from_dict(profile("old", *SHOPPER)))
        tx.put_profile(Profile.from_dict(profile("new", *SHOPPER)))
    engine = Engine([v1], load_policy(), store, clock)
    engine.ingest(event("cart.abandoned", "old"))
    engine.load(v2)
    engine.ingest(event("cart.abandoned", "new"))
    for hour in range(11, 17):
        clock.advance_to(datetime(2026, 1, 5, hour, tzinfo=UTC))
        engine.fire_due()
    got = [(m.user_id, m.channel, m.at.hour, m.content.get("body")) for m in store.data.messages]
    assert got == [("old", "push", 11, "Your cart"), ("new", "push", 11, "New copy"),
                   ("old", "sms", 13, None), ("new", "sms", 16, None)]
    assert {i.user_id: i.version for i in store.data.instances.values()} == {"old": v1.version, "new": v2.version}


NAMED = CART.replace('sms: {text: "Your cart is waiting"}', 'sms: {text: "{{ profile.attributes.name }}, your cart"}')


def test_an_escalations_later_channel_is_rendered_when_its_turn_comes() -> None:
    """The SMS after the push is decided on what needs no message (address, consent, caps) when
    the step runs, and rendered when its turn comes, from the profile as it is then: an SMS that
    could not render at the push (no name yet) goes out once the name is known."""
    journey = load_text(NAMED, "named.yaml")
    runtime = Runtime(load_policy(), trace=False)
    nameless = Profile.from_dict(profile("u1", *SHOPPER))
    at = datetime(2026, 1, 5, 11, tzinfo=UTC)
    cart = Event("cart.abandoned", "u1", at, {})
    waiting = runtime.enter(journey, cart, nameless, None, "i1", [], at).instance
    assert waiting is not None and waiting.step == "wait_1h" and waiting.timer is not None
    pushed = runtime.on_timer(waiting, journey, waiting.timer.timer_id, nameless, [], at)
    assert pushed.instance is not None and pushed.instance.escalation is not None
    assert pushed.instance.escalation.remaining == ("sms",)
    [push] = [c for c in pushed.commands if isinstance(c, Send)]
    assert push.channel == "push" and {"channel": "sms", "eligible": True, "reason": None} in [
        d.to_dict() for d in push.decisions]
    named = replace(nameless, attributes={"name": "Ada"})
    timer = pushed.instance.timer
    assert timer is not None
    escalated = runtime.on_timer(pushed.instance, journey, timer.timer_id, named, [], timer.due)
    assert [(c.channel, dict(c.content)) for c in escalated.commands if isinstance(c, Send)] == [
        ("sms", {"text": "Ada, your cart"})]


FEED_FIRST = """
id: nudge
category: transactional
trigger: {event: go}
steps:
  - {id: tell, type: send, message: hi, channels: [in_app, sms], strategy: escalate, escalate_after: 1h}
messages:
  hi: {in_app: {title: Hi, body: "Your order"}, sms: {text: "Your order"}}
"""


@pytest.mark.parametrize("state", ["seen", "read"])
def test_reading_the_in_app_message_in_the_feed_is_engagement(simulate: Simulate, state: str) -> None:
    """The feed's `in_app.seen` and `in_app.read` stop an escalation as an open does (the default policy)."""
    people = [profile("u1", "sms:transactional")]
    result = simulate(FEED_FIRST, [event("go", "u1"), event(f"in_app.{state}", "u1", "2026-01-05T10:20:00Z")], people)
    assert sent(result) == [("u1", "in_app", "2026-01-05T10:00:00Z")]
    ignored = simulate(FEED_FIRST, [event("go", "u1"), event("in_app.archived", "u1", "2026-01-05T10:20:00Z")], people)
    assert [s[1] for s in sent(ignored)] == ["in_app", "sms"]  # archiving unread is no engagement
