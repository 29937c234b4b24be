"""select(): a decision with its reason for every candidate, RCS fallback, strategies."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from channels import (
    ConsentRecord,
    Profile,
    SelectionError,
    SendRequest,
    SentRecord,
    load_policy,
    select,
)
from channels.profile import RcsCapability

POLICY = load_policy()
NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)  # 10:00 in New York: outside quiet hours
ALL = ("push", "in_app", "email", "sms", "mms", "rcs", "webhook")
CONTENTS: dict[str, dict[str, Any]] = {
    "push": {"title": "Hi", "body": "Your cart"},
    "in_app": {"title": "Hi", "body": "Your cart"},
    "email": {"subject": "Your cart", "body": "..."},
    "sms": {"text": "Your cart: https://example.com/c"},
    "mms": {"text": "Your cart", "media_url": "https://example.com/c.png"},
    "rcs": {"text": "Your cart (rcs)"},
    "webhook": {"payload": {"cart": 1}},
}


def grants(*channels: str, category: str = "marketing", granted: bool = True) -> tuple[ConsentRecord, ...]:
    return tuple(ConsentRecord(ch, category, granted, "web", NOW - timedelta(days=1)) for ch in channels)


FULL = Profile(
    "u1",
    timezone="America/New_York",
    email="u1@example.com",
    phone="+12125550123",
    push_token="tok",
    rcs_capable=True,
    consents=grants(*ALL) + grants(*ALL, category="transactional"),
)


def request(
    candidates: tuple[str, ...] = ALL,
    profile: Profile = FULL,
    contents: Mapping[str, Mapping[str, Any]] = CONTENTS,
    **changes: Any,
) -> SendRequest:
    base = SendRequest(profile=profile, category="marketing", urgency="normal", candidates=candidates,
                       contents=contents,
                       template_errors={}, sent=(), now=NOW)
    return replace(base, **changes)


def reasons(req: SendRequest) -> dict[str, str | None]:
    return {d.channel: d.reason for d in select(req, POLICY).decisions}


def test_everything_available_is_eligible_in_candidate_order() -> None:
    selection = select(request(), POLICY)
    assert [d.to_dict() for d in selection.decisions] == [
        {"channel": ch, "eligible": True, "reason": None, **({"capability": "assumed"} if ch == "rcs" else {})}
        for ch in ALL
    ]
    assert [d.channel for d in selection.deliveries] == list(ALL)


@pytest.mark.parametrize(
    ("channel", "profile_change", "reason"),
    [
        ("push", {"push_token": None}, "no_address"),
        ("email", {"email": None}, "no_address"),
        ("sms", {"phone": None}, "no_address"),
        ("mms", {"phone": None}, "no_address"),
        ("rcs", {"phone": None}, "no_address"),
        ("in_app", {"push_token": None, "email": None, "phone": None}, None),
        ("webhook", {"push_token": None, "email": None, "phone": None}, None),
        ("sms", {"consents": ()}, "no_consent"),
        ("push", {"consents": ()}, "no_consent"),
        ("webhook", {"consents": ()}, None),
        ("sms", {"consents": FULL.consents + grants("sms", granted=False)}, "opted_out"),
        ("email", {"consents": FULL.consents + grants("email", granted=False)}, "opted_out"),
        ("rcs", {"rcs_capable": False}, "not_capable"),
    ],
)
def test_profile_reasons(channel: str, profile_change: dict[str, Any], reason: str | None) -> None:
    req = request((channel,), profile=replace(FULL, **profile_change))
    decision = select(req, POLICY).decisions[0]
    assert (decision.channel, decision.eligible, decision.reason) == (channel, reason is None, reason)


def test_transactional_push_needs_no_opt_in_but_sms_does() -> None:
    req = request(("push", "email", "in_app", "sms"), profile=replace(FULL, consents=()), category="transactional")
    assert reasons(req) == {"push": None, "email": None, "in_app": None, "sms": "no_consent"}


def test_no_content_and_template_error() -> None:
    contents = {k: v for k, v in CONTENTS.items() if k != "email"}
    req = request(("email", "push", "sms"), contents=contents, template_errors={"push": "'first_name' is undefined"})
    assert reasons(req) == {"email": "no_content", "push": "template_error", "sms": None}


@pytest.mark.parametrize(
    ("text", "reason", "segments", "encoding"),
    [
        ("a" * 918, None, 6, "GSM-7"),
        ("a" * 919, "too_long", None, None),
        ("Ж" * 402, None, 6, "UCS-2"),
        ("Ж" * 403, "too_long", None, None),
    ],
)
def test_sms_length(text: str, reason: str | None, segments: int | None, encoding: str | None) -> None:
    selection = select(request(("sms",), contents={"sms": {"text": text}}), POLICY)
    assert selection.decisions[0].reason == reason
    if reason is None:
        delivery = selection.deliveries[0]
        assert (delivery.encoding, delivery.segments) == (encoding, segments)


def test_multi_segment_sms_costs_per_segment() -> None:
    selection = select(request(("sms",), contents={"sms": {"text": "a" * 307}}), POLICY)
    delivery = selection.deliveries[0]
    assert (delivery.segments, delivery.encoding) == (3, "GSM-7")
    assert delivery.cost == pytest.approx(3 * 0.0083)


def test_flat_costs_for_other_channels() -> None:
    costs = {d.channel: d.cost for d in select(request(), POLICY).deliveries}
    assert costs == {
        "push": 0.0001,
        "in_app": 0.0,
        "email": 0.001,
        "sms": 0.0083,
        "mms": 0.022,
        "rcs": 0.0083,
        "webhook": 0.0,
    }


def test_only_sms_reports_encoding_and_segments() -> None:
    deliveries = {d.channel: (d.encoding, d.segments) for d in select(request(), POLICY).deliveries}
    assert deliveries.pop("sms") == ("GSM-7", 1)
    assert set(deliveries.values()) == {(None, None)}


def test_frequency_cap_is_per_channel() -> None:
    sent = [SentRecord("sms", "marketing", NOW - timedelta(hours=h)) for h in (1, 2, 3)]
    assert reasons(request(("sms", "push"), sent=sent)) == {"sms": "frequency_cap", "push": None}


def test_capped_transactional_is_not_limited_by_marketing_caps() -> None:
    sent = [SentRecord("sms", "marketing", NOW - timedelta(hours=h)) for h in (1, 2, 3)]
    assert reasons(request(("sms",), sent=sent, category="transactional")) == {"sms": None}


# --- RCS fallback -----------------------------------------------------------------

NOT_CAPABLE = replace(FULL, rcs_capable=False)


@pytest.mark.parametrize(
    ("candidates", "profile", "contents", "fallback", "chain"),
    [
        (("rcs",), NOT_CAPABLE, CONTENTS, "mms", ["mms"]),
        (("rcs",), NOT_CAPABLE, {**CONTENTS, "mms": {"text": "no media"}}, "sms", ["sms"]),
        (("rcs",), replace(NOT_CAPABLE, consents=grants("sms")), CONTENTS, "sms", ["sms"]),
        (("rcs",), replace(NOT_CAPABLE, consents=grants("push")), CONTENTS, None, []),
        (("push", "rcs", "email"), NOT_CAPABLE, CONTENTS, "mms", ["push", "mms", "email"]),
        # the fallback takes rcs's place and is not sent twice
        (
            ("rcs", "push", "sms"),
            replace(NOT_CAPABLE, consents=grants("sms", "push")),
            CONTENTS,
            "sms",
            ["sms", "push"],
        ),
        # sms already used earlier: no second sms
        (("sms", "rcs"), replace(NOT_CAPABLE, consents=grants("sms")), CONTENTS, None, ["sms"]),
        (("rcs",), FULL, CONTENTS, None, ["rcs"]),
    ],
)
def test_rcs_fallback(
    candidates: tuple[str, ...],
    profile: Profile,
    contents: Mapping[str, Mapping[str, Any]],
    fallback: str | None,
    chain: list[str],
) -> None:
    selection = select(request(candidates, profile=profile, contents=contents, strategy="all"), POLICY)
    rcs = next(d for d in selection.decisions if d.channel == "rcs")
    assert rcs.fallback == fallback
    assert [d.channel for d in selection.deliveries] == chain
    assert [d.channel for d in selection.decisions] == list(candidates)


def test_rcs_fallback_is_recorded_in_the_decision_dict() -> None:
    decision = select(request(("rcs",), profile=NOT_CAPABLE), POLICY).decisions[0]
    assert decision.to_dict() == {"channel": "rcs", "eligible": False, "reason": "not_capable", "fallback": "mms",
                                  "capability": "assumed"}


def test_a_providers_answer_decides_rcs_and_the_decision_says_so() -> None:
    """The profile's `rcs_capable` alone is assumed; a capability check's cached answer is known,
    with the provider that gave it. A 'not capable' answer falls back like any other."""
    answer = RcsCapability(False, NOW, "rbm")
    decision = select(request(("rcs", "sms"), profile=FULL.with_capability(answer)), POLICY).decisions[0]
    assert decision.to_dict() == {"channel": "rcs", "eligible": False, "reason": "not_capable", "fallback": "mms",
                                  "capability": "known", "capability_source": "rbm"}
    capable = select(request(("rcs",), profile=NOT_CAPABLE.with_capability(RcsCapability(True, NOW, "rbm"))), POLICY)
    assert capable.decisions[0].to_dict() == {"channel": "rcs", "eligible": True, "reason": None,
                                              "capability": "known", "capability_source": "rbm"}


def test_sms_fallback_uses_the_rcs_text_when_there_is_no_sms_content() -> None:
    contents = {"rcs": {"text": "Only rcs text", "suggestions": [{"reply": "Yes"}]}}
    profile = replace(NOT_CAPABLE, consents=grants("sms"))
    delivery = select(request(("rcs",), profile=profile, contents=contents), POLICY).deliveries[0]
    assert (delivery.channel, dict(delivery.content), delivery.segments) == ("sms", {"text": "Only rcs text"}, 1)


def test_sms_fallback_uses_the_messages_own_sms_content() -> None:
    profile = replace(NOT_CAPABLE, consents=grants("sms"))
    delivery = select(request(("rcs",), profile=profile), POLICY).deliveries[0]
    assert delivery.content == CONTENTS["sms"]


def test_no_fallback_to_an_sms_whose_template_failed() -> None:
    profile = replace(NOT_CAPABLE, consents=grants("sms"))
    req = request(("rcs",), profile=profile, contents={"rcs": {"text": "x"}}, template_errors={"sms": "boom"})
    assert select(req, POLICY).decisions[0].fallback is None


# --- strategies --------------------------------------------------------------------

CHEAP_LAST = ("mms", "email", "push")


@pytest.mark.parametrize(
    ("strategy", "urgency", "chosen", "effective", "after"),
    [
        ("first", "normal", ["mms"], "first", None),
        ("cheapest", "normal", ["push"], "cheapest", None),
        ("all", "normal", ["mms", "email", "push"], "all", None),
        ("escalate", "normal", ["mms", "email", "push"], "escalate", timedelta(hours=2)),
        ("escalate", "low", ["mms", "email", "push"], "escalate", timedelta(hours=2)),
        ("escalate", "high", ["mms", "email", "push"], "escalate", timedelta(minutes=15)),
        ("escalate", "critical", ["mms", "email", "push"], "escalate", timedelta(minutes=15)),
        (None, "critical", ["mms", "email", "push"], "all", None),
        (None, "high", ["mms", "email", "push"], "escalate", timedelta(minutes=15)),
        (None, "normal", ["mms", "email", "push"], "escalate", timedelta(hours=2)),
        (None, "low", ["push"], "cheapest", None),
    ],
)
def test_strategies_and_urgency_defaults(
    strategy: str | None, urgency: str, chosen: list[str], effective: str, after: timedelta | None
) -> None:
    selection = select(request(CHEAP_LAST, strategy=strategy, urgency=urgency), POLICY)
    assert [d.channel for d in selection.deliveries] == chosen
    assert (selection.strategy, selection.escalate_after) == (effective, after)


def test_explicit_escalate_after_wins() -> None:
    selection = select(request(strategy="escalate", escalate_after=timedelta(minutes=5)), POLICY)
    assert selection.escalate_after == timedelta(minutes=5)


def test_cheapest_ties_go_to_the_earlier_candidate() -> None:
    selection = select(request(("webhook", "in_app"), strategy="cheapest"), POLICY)
    assert [d.channel for d in selection.deliveries] == ["webhook"]


def test_strategies_skip_ineligible_channels() -> None:
    profile = replace(FULL, push_token=None)
    selection = select(request(("push", "email"), profile=profile, strategy="first"), POLICY)
    assert [d.channel for d in selection.deliveries] == ["email"]


def test_nothing_eligible_gives_no_deliveries() -> None:
    selection = select(request(("sms", "push"), profile=replace(FULL, consents=())), POLICY)
    assert (selection.deliveries, selection.defer_until) == ((), None)
    assert [d.reason for d in selection.decisions] == ["no_consent", "no_consent"]


@pytest.mark.parametrize(("field", "value"), [("strategy", "loudest"), ("urgency", "urgent")])
def test_unknown_strategy_or_urgency_is_rejected(field: str, value: str) -> None:
    changes: dict[str, Any] = {field: value}
    with pytest.raises(SelectionError, match=value):
        select(request(**changes), POLICY)


# --- quiet hours ---------------------------------------------------------------------

NIGHT = datetime(2026, 3, 3, 3, 0, tzinfo=UTC)  # 22:00 EST in New York, 19:00 in Los Angeles


@pytest.mark.parametrize(
    ("profile", "category", "urgency", "defer_until"),
    [
        (FULL, "marketing", "normal", datetime(2026, 3, 3, 13, 0, tzinfo=UTC)),
        (FULL, "marketing", "critical", datetime(2026, 3, 3, 13, 0, tzinfo=UTC)),
        (FULL, "transactional", "normal", None),
        (replace(FULL, timezone=None, phone="+14155550123"), "marketing", "normal", None),
        (replace(FULL, timezone=None), "marketing", "normal", datetime(2026, 3, 3, 13, 0, tzinfo=UTC)),
    ],
)
def test_quiet_hours_defer_but_do_not_drop(
    profile: Profile, category: str, urgency: str, defer_until: datetime | None
) -> None:
    selection = select(request(("email",), profile=profile, category=category, urgency=urgency, now=NIGHT), POLICY)
    assert selection.defer_until == defer_until
    assert [d.channel for d in selection.deliveries] == ["email"]
