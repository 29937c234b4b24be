"""Tracked links in the evaluator, as `journey simulate` shows it: an SMS is measured (segments, cost)
with its links already short, a dry run's links are as long as the server's, and a machine's open
(a mail proxy, `machine: true`) is no engagement: the escalation goes on; a person's stops it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from channels import Policy, Profile, load_policy, sms_encoding
from engine import load_text, simulate
from engine.events import Event
from engine.runtime import Runtime
from engine.simulator import parse_profiles
from engine.state import Send

T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
LONG_URL = "https://shop.example.com/checkout/cart/resume?session=8f2a61c0d9b34e7a&utm_source=sms&utm_campaign=cart"
SMS = """\
id: cart
category: transactional
trigger: {event: cart.abandoned}
steps:
  - {id: nudge, type: send, message: nudge, channels: [sms]}
messages:
  nudge:
    sms:
      text: >-
        Hi {{ event.properties.name }}, the 3 items in your cart are still waiting for you:
        {{ event.properties.url }}
"""
ESCALATE = """\
id: receipt
category: transactional
trigger: {event: order.placed}
steps:
  - {id: tell, type: send, message: receipt, channels: [email, sms], strategy: escalate, escalate_after: 2h}
messages:
  receipt:
    email: {subject: "Your order", body: "Thanks", html: "<p>Thanks</p>"}
    sms: {text: "Thanks for your order"}
"""


RCS = """\
id: promo
category: transactional
trigger: {event: go}
steps:
  - {id: tell, type: send, message: promo, channels: [rcs, sms], strategy: first}
messages:
  promo:
    rcs: {text: "{{ event.properties.text }}"}
    sms: {text: "See the app"}
"""


def policy(tmp_path: Path, text: str) -> Policy:
    path = tmp_path / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    return load_policy(path)


def people(*user_ids: str) -> list[Profile]:
    grant = {"channel": "sms", "category": "transactional", "granted": True, "source": "test",
             "at": "2026-01-01T00:00:00Z"}
    rows = [{"user_id": u, "phone": "+14155550100", "email": f"{u}@example.com", "timezone": "UTC",
             "rcs_capable": True, "consents": [grant, {**grant, "channel": "rcs"}]} for u in user_ids]
    return parse_profiles((f"profiles[{n}]", row) for n, row in enumerate(rows))


def sent(document: dict[str, Any], user_id: str) -> list[dict[str, Any]]:
    return [m for m in document["messages"] if m["user_id"] == user_id]


def test_an_sms_is_measured_and_priced_with_its_links_short(tmp_path: Path) -> None:
    """160 characters and more with the long link (2 segments); with the policy's base URL the same
    message is sent with a 35-character link: one segment, half the price."""
    journey = load_text(SMS, "cart.yaml")
    event = Event("cart.abandoned", "ann", T0, {"name": "Ann", "url": LONG_URL})
    plain = sent(simulate(journey, [event], people("ann"), load_policy()), "ann")
    tracked = sent(simulate(journey, [event], people("ann"),
                            policy(tmp_path, "links: {base_url: 'https://go.example.com'}\n")), "ann")
    long_text, short_text = plain[0]["content"]["text"], tracked[0]["content"]["text"]
    assert LONG_URL in long_text and (plain[0]["segments"], plain[0]["cost"]) == (2, 0.0166)
    assert LONG_URL not in short_text and short_text.startswith("Hi Ann, the 3 items")
    link = short_text.rsplit(" ", 1)[1]
    assert link.startswith("https://go.example.com/l/") and len(link) == len("https://go.example.com/l/") + 10
    assert (tracked[0]["segments"], tracked[0]["cost"]) == (sms_encoding(short_text).segments, 0.0083) == (1, 0.0083)


def test_a_machines_open_does_not_stop_an_escalation_a_persons_does(tmp_path: Path) -> None:
    """Both people's email is opened 5 minutes after it went: ann's by her mail's proxy (`machine`),
    bob himself. ann still gets the SMS when the 2 hours are up; bob does not."""
    journey = load_text(ESCALATE, "receipt.yaml")
    opened = T0 + timedelta(minutes=5)
    events = [Event("order.placed", "ann", T0, {}), Event("order.placed", "bob", T0, {}),
              Event("email.opened", "ann", opened, {"machine": True, "first": True}),
              Event("email.opened", "bob", opened, {"machine": False, "first": True})]
    document = simulate(journey, events, people("ann", "bob"), load_policy())
    assert [m["channel"] for m in sent(document, "ann")] == ["email", "sms"]
    assert [m["channel"] for m in sent(document, "bob")] == ["email"]


def test_an_rcs_text_is_held_to_rbms_limit_with_its_links_short(tmp_path: Path) -> None:
    """3,070 characters with a 19-character link fit RBM's 3,072 as written; with the link made
    35 characters the text would be 3,086: RBM would refuse it, so the RCS is a template error and
    the SMS goes instead."""
    journey = load_text(RCS, "promo.yaml")
    event = Event("go", "ann", T0, {"text": "x" * 3050 + " https://a.example/x"})
    [plain] = sent(simulate(journey, [event], people("ann"), load_policy()), "ann")
    [tracked] = sent(simulate(journey, [event], people("ann"),
                              policy(tmp_path, "links: {base_url: 'https://go.example.com'}\n")), "ann")
    assert plain["channel"] == "rcs" and len(plain["content"]["text"]) == 3070
    rcs = next(d for d in tracked["decisions"] if d["channel"] == "rcs")
    assert tracked["channel"] == "sms" and rcs["reason"] == "template_error"


LINKED = """\
id: receipt
category: transactional
trigger: {event: order.placed}
steps:
  - {id: tell, type: send, message: receipt, channels: [CHANNELS], strategy: escalate, escalate_after: 2h}
messages:
  receipt:
    email: {subject: "Your order", body: "Track it: {{ event.properties.url }}"}
    sms: {text: "SMS_TEXT{{ event.properties.url }}"}
"""


def test_an_escalations_later_channel_gets_its_tracked_link_when_its_turn_comes(tmp_path: Path) -> None:
    """The email goes with its one short link, stored with it; the SMS is not rendered (no code
    made) until its turn, then goes with its own. A first channel that cannot go (an SMS too
    long) is rendered once, not again with the email: one code each."""
    made: list[str] = []

    def codes(length: int) -> str:
        made.append(f"c{len(made):0{length - 1}d}")
        return made[-1]

    runtime = Runtime(policy(tmp_path, "links: {base_url: 'https://go.example.com'}\n"), trace=False, codes=codes)
    journey = load_text(LINKED.replace("CHANNELS", "email, sms").replace("SMS_TEXT", ""), "receipt.yaml")
    [ann] = people("ann")
    order = Event("order.placed", "ann", T0, {"url": LONG_URL})
    entered = runtime.enter(journey, order, ann, None, "i1", [], T0)
    [email] = [c for c in entered.commands if isinstance(c, Send)]
    assert email.channel == "email" and [link.code for link in email.links] == made == [made[0]]
    assert f"https://go.example.com/l/{made[0]}" in email.content["body"]
    assert entered.instance is not None and entered.instance.timer is not None
    timer = entered.instance.timer
    [sms] = [c for c in runtime.on_timer(entered.instance, journey, timer.timer_id, ann, [], timer.due).commands
             if isinstance(c, Send)]
    assert sms.channel == "sms" and [(link.code, link.url) for link in sms.links] == [(made[1], LONG_URL)]
    assert sms.content["text"] == f"https://go.example.com/l/{made[1]}" and len(made) == 2

    made.clear()
    journey = load_text(LINKED.replace("CHANNELS", "sms, email").replace("SMS_TEXT", "x" * 1600 + " "), "r.yaml")
    [email] = [c for c in runtime.enter(journey, order, ann, None, "i2", [], T0).commands if isinstance(c, Send)]
    assert email.channel == "email" and len(made) == 2 and [link.code for link in email.links] == [made[1]]


def test_an_escalations_later_channel_is_rendered_in_the_readers_variant_with_its_link(tmp_path: Path) -> None:
    """The SMS rendered at its turn reads the `fr` variant for a fr-CA reader, with its own short
    link, and records the variant; the email before it had none in French: the default content."""
    made: list[str] = []

    def codes(length: int) -> str:
        made.append(f"c{len(made):0{length - 1}d}")
        return made[-1]

    runtime = Runtime(policy(tmp_path, "links: {base_url: 'https://go.example.com'}\n"), trace=False, codes=codes)
    french = LINKED.replace("CHANNELS", "email, sms").replace("SMS_TEXT", "") + (
        "    locales:\n      fr: {sms: {text: \"Suivez-la : {{ event.properties.url }}\"}}\n")
    journey = load_text(french, "receipt.yaml")
    [ann] = people("ann")
    ann = Profile.from_dict({**ann.to_dict(), "locale": "fr-CA"})
    entered = runtime.enter(journey, Event("order.placed", "ann", T0, {"url": LONG_URL}), ann, None, "i1", [], T0)
    [email] = [c for c in entered.commands if isinstance(c, Send)]
    assert (email.channel, email.locale, len(made)) == ("email", None, 1)
    assert entered.instance is not None and entered.instance.timer is not None
    timer = entered.instance.timer
    [sms] = [c for c in runtime.on_timer(entered.instance, journey, timer.timer_id, ann, [], timer.due).commands
             if isinstance(c, Send)]
    assert (sms.channel, sms.locale) == ("sms", "fr")
    assert sms.content["text"] == f"Suivez-la : https://go.example.com/l/{made[1]}"
    assert [(link.code, link.url) for link in sms.links] == [(made[1], LONG_URL)] and len(made) == 2


def test_a_policy_default_of_auto_weighs_every_channel_when_the_step_runs(tmp_path: Path) -> None:
    """A step that names no strategy at urgency high escalates by default, its later channels
    rendered at their turn; with the policy's `default_strategy: auto` it is auto's, which weighs
    every channel now: a reader who clicks texts and never opens email gets the SMS first, the
    choice explained, the email next."""
    text = LINKED.replace("CHANNELS", "email, sms").replace("SMS_TEXT", "").replace(
        "strategy: escalate, escalate_after: 2h", "urgency: high")
    journey = load_text(text, "receipt.yaml")
    [ann] = people("ann")
    ann = Profile.from_dict({**ann.to_dict(), "engagement": {"email": {"sent": 20, "engaged": 0},
                                                             "sms": {"sent": 10, "engaged": 9}}})
    order = Event("order.placed", "ann", T0, {"url": LONG_URL})
    by_urgency = Runtime(load_policy(), trace=False).enter(journey, order, ann, None, "i1", [], T0)
    assert [c.channel for c in by_urgency.commands if isinstance(c, Send)] == ["email"]
    auto = Runtime(policy(tmp_path, "default_strategy: auto\n"), trace=False).enter(journey, order, ann, None, "i1",
                                                                                   [], T0)
    [first] = [c for c in auto.commands if isinstance(c, Send)]
    assert first.channel == "sms" and first.choice is not None and first.choice.order == ("sms", "email")
    assert first.choice.reason.startswith("sms first: reach 0.90 at 0.0083 beats email")
    assert auto.instance is not None and auto.instance.escalation is not None
    assert auto.instance.escalation.remaining == ("email",)
