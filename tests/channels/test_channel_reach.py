"""strategy auto at the channel layer: reach from a person's history shrunk towards the policy's
prior and decayed, the order by urgency, the figures and the one-line reason of every choice, and
the engagement counts that feed it (docs/policy.md, docs/formats.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from channels import (
    ChannelEngagement,
    ConsentRecord,
    Policy,
    Profile,
    ProfileError,
    SendRequest,
    best_time,
    load_policy,
    reach,
    select,
)
from channels.engagement import TRACKED, best_hours
from channels.selection import shown

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
POLICY = load_policy()
CONTENTS = {"push": {"body": "Your code"}, "sms": {"text": "Your code"}, "in_app": {"body": "Your code"},
            "email": {"subject": "Code", "body": "Your code"}}


def person(engagement: dict[str, Any] | None = None, user_id: str = "u1") -> Profile:
    doc: dict[str, Any] = {"user_id": user_id, "push_token": "tok", "phone": "+14155550123", "email": "u@example.com",
                           "consents": [{"channel": c, "category": "transactional", "granted": True,
                                         "at": "2026-01-01T00:00:00Z"} for c in ("sms", "push", "in_app")]}
    if engagement is not None:
        doc["engagement"] = engagement
    return Profile.from_dict(doc)


def choose(profile: Profile, urgency: str, candidates: tuple[str, ...] = ("push", "sms"), strategy: str | None = "auto",
           policy: Policy = POLICY) -> Any:
    request = SendRequest(profile=profile, category="transactional", urgency=urgency, candidates=candidates,
                          contents=CONTENTS, template_errors={}, sent=(), now=NOW, strategy=strategy)
    return select(request, policy)


def figures(selection: Any) -> dict[str, tuple[float, float, float]]:
    """Each decision's reach, cost and score as the outputs show them."""
    return {d["channel"]: (d["reach"], d["cost"], d["score"]) for d in shown(selection.decisions, selection.choice)}


FAN = {"push": {"sent": 20, "engaged": 18}, "sms": {"sent": 10, "engaged": 1}}
TEXTER = {"push": {"sent": 20, "engaged": 0}, "sms": {"sent": 10, "engaged": 9}}


def test_a_new_person_gets_the_prior_and_a_well_known_one_their_own_rate() -> None:
    fast = POLICY.fast
    assert reach(None, "push", NOW, fast) == 0.3
    assert reach(person().engagement, "sms", NOW, fast) == 0.9
    # (4 x 0.3 + 18) / (4 + 20): the prior counts as four messages
    assert reach(person(FAN).engagement, "push", NOW, fast) == pytest.approx(0.8)
    many = person({"push": {"sent": 2000, "engaged": 100}}).engagement
    assert reach(many, "push", NOW, fast) == pytest.approx(0.05, abs=0.001)


def test_old_history_counts_less_a_half_every_half_life() -> None:
    """Twenty pushes never opened, as of one half-life ago, weigh as ten: (1.2 + 0) / (4 + 10)."""
    month_ago = (NOW - timedelta(days=30)).isoformat()
    stale = person({"push": {"sent": 20, "engaged": 0, "recent": {"sent": 20, "engaged": 0, "as_of": month_ago}}})
    fresh = person({"push": {"sent": 20, "engaged": 0}})
    assert reach(stale.engagement, "push", NOW, POLICY.fast) == round(1.2 / 14, 4)  # to 4 decimals, as shown
    assert reach(fresh.engagement, "push", NOW, POLICY.fast) == round(1.2 / 24, 4)


def test_a_channel_with_no_engagement_event_keeps_its_prior() -> None:
    sent = person({"webhook": {"sent": 50, "engaged": 0}}).engagement
    assert reach(sent, "webhook", NOW, POLICY.fast) == 1.0


def test_high_sends_the_most_likely_first_and_says_so_with_numbers() -> None:
    fan, texter, new = choose(person(FAN), "high"), choose(person(TEXTER), "high"), choose(person(), "high")
    assert [d.channel for d in fan.deliveries] == ["push", "sms"]
    assert [d.channel for d in texter.deliveries] == ["sms", "push"]
    assert [d.channel for d in new.deliveries] == ["sms", "push"]  # the priors: sms 0.9, push 0.3
    assert texter.choice.reason == "sms first: reach 0.90 at 0.0083 beats push 0.05 at 0.0001 for urgency high"
    assert figures(texter) == {"push": (0.05, 0.0001, 0.05), "sms": (0.9, 0.0083, 0.9)}
    assert fan.escalate_after == timedelta(minutes=15)
    assert texter.choice.order == ("sms", "push")


def test_normal_orders_by_reach_per_unit_cost_and_escalates_after_two_hours() -> None:
    selection = choose(person(), "normal")
    assert [d.channel for d in selection.deliveries] == ["push", "sms"]  # 0.3 / 0.0001 beats 0.9 / 0.0083
    assert selection.escalate_after == timedelta(hours=2)
    assert figures(selection)["push"] == (0.3, 0.0001, 3000.0)
    assert selection.choice.reason == ("push first: 3,000 reach per unit cost (0.30 at 0.0001) beats sms 108 reach "
                                       "per unit cost (0.90 at 0.0083) for urgency normal")


def test_normal_puts_a_channel_below_the_floor_last_however_cheap() -> None:
    never_opens_app = person({"in_app": {"sent": 20, "engaged": 0}})
    selection = choose(never_opens_app, "normal", ("in_app", "push", "sms"))
    assert selection.choice.order == ("push", "sms", "in_app")
    assert "in_app 0.02 below the floor 0.10" in selection.choice.reason


def test_low_takes_the_cheapest_channel_above_the_floor() -> None:
    assert [d.channel for d in choose(person(), "low", ("in_app", "push")).deliveries] == ["in_app"]
    never_opens_app = person({"in_app": {"sent": 20, "engaged": 0}, "push": {"sent": 20, "engaged": 17}})
    selection = choose(never_opens_app, "low", ("in_app", "push"))
    assert [d.channel for d in selection.deliveries] == ["push"]
    assert selection.escalate_after is None
    assert selection.choice.reason == ("push: the cheapest with reach at least 0.10: 0.76 at 0.0001; in_app 0.02 "
                                       "below it for urgency low")


def test_low_takes_the_most_likely_when_none_reaches_the_floor() -> None:
    cold = person({"in_app": {"sent": 40, "engaged": 0}, "push": {"sent": 40, "engaged": 1}})
    selection = choose(cold, "low", ("in_app", "push"))
    assert [d.channel for d in selection.deliveries] == ["push"]
    assert "no channel reaches the floor" in selection.choice.reason


def test_critical_adds_channels_until_the_chance_of_reaching_is_above_the_target() -> None:
    sure = person({"sms": {"sent": 100, "engaged": 100}})  # (3.6 + 100) / 104 = 0.996
    selection = choose(sure, "critical", ("push", "sms", "email"))
    assert [d.channel for d in selection.deliveries] == ["sms"]
    assert selection.escalate_after is None
    assert selection.choice.reason.startswith("sms at once: chance of reaching 1.00 (sms 1.00), at least the target")
    unsure = choose(person(), "critical", ("push", "sms", "email"))
    assert [d.channel for d in unsure.deliveries] == ["sms", "push", "email"]
    assert "short of the target 0.99 with every eligible channel" in unsure.choice.reason


def test_ineligible_channels_carry_no_figures_and_a_fallback_carries_its_own() -> None:
    profile = Profile.from_dict({"user_id": "u", "phone": "+14155550123", "consents": [
        {"channel": c, "category": "transactional", "granted": True, "at": "2026-01-01T00:00:00Z"}
        for c in ("sms", "rcs")]})
    request = SendRequest(profile=profile, category="transactional", urgency="high", candidates=("push", "rcs"),
                          contents={"push": {"body": "x"}, "rcs": {"text": "x"}}, template_errors={}, sent=(),
                          now=NOW, strategy="auto")
    selection = select(request, POLICY)
    decisions = {d["channel"]: d for d in shown(selection.decisions, selection.choice)}
    assert decisions["push"] == {"channel": "push", "eligible": False, "reason": "no_address"}
    assert decisions["rcs"] == {"channel": "rcs", "eligible": False, "reason": "not_capable", "fallback": "sms",
                                "capability": "assumed", "reach": 0.9, "cost": 0.0083, "score": 0.9}


def test_the_policy_default_strategy_makes_auto_the_default_and_without_it_nothing_changes() -> None:
    texter = person(TEXTER)
    before = choose(texter, "high", strategy=None)
    assert before.strategy == "escalate" and before.choice is None
    assert [d.channel for d in before.deliveries] == ["push", "sms"]  # candidate order, as always
    assert all("reach" not in d for d in shown(before.decisions, before.choice))
    auto = POLICY.model_copy(update={"default_strategy": "auto"})
    after = choose(texter, "high", strategy=None, policy=auto)
    assert after.strategy == "auto" and [d.channel for d in after.deliveries] == ["sms", "push"]
    assert choose(texter, "high", strategy="first", policy=auto).strategy == "first"


def test_a_policy_file_sets_priors_and_thresholds(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("default_strategy: auto\nchannels: {push: {reach: 0.95}}\n"
                    "auto: {floor: 0.5, escalate_after: {high: 5m}}\n", encoding="utf-8")
    policy = load_policy(path)
    assert policy.fast.reach["push"] == 0.95 and policy.fast.reach["sms"] == 0.9
    assert policy.fast.auto.floor == 0.5
    assert policy.fast.auto.escalate_after == {"high": timedelta(minutes=5), "normal": timedelta(hours=2)}
    assert [d.channel for d in choose(person(), "high", strategy=None, policy=policy).deliveries] == ["push", "sms"]


def test_a_bad_threshold_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("auto:\n  half_life: soon\n  target: 1.5\n", encoding="utf-8")
    with pytest.raises(ValueError) as caught:
        load_policy(path)
    message = str(caught.value)
    assert f"{path}:2:" in message and "half_life" in message and "'soon' is not a duration" in message
    assert f"{path}:3:" in message and "target" in message


# --- the counts that feed it ---------------------------------------------------------------------------------

HALF = timedelta(days=30)


def test_feedback_counts_once_per_message_and_kind_and_only_for_messages_sent() -> None:
    counts = ChannelEngagement().after_send("m1", NOW, HALF)
    assert counts.after_feedback("m2", "engaged", NOW, 19, HALF) is None  # never sent on this channel
    delivered = counts.after_feedback("m1", "delivered", NOW, 15, HALF)
    assert delivered is not None and (delivered.sent, delivered.delivered, delivered.engaged) == (1, 1, 0)
    assert delivered.after_feedback("m1", "delivered", NOW, 15, HALF) is None
    engaged = delivered.after_feedback("m1", "engaged", NOW + timedelta(minutes=5), 19, HALF)
    assert engaged is not None and engaged.engaged == 1 and engaged.by_hour[19] == 1
    assert engaged.last_engaged_at == NOW + timedelta(minutes=5)
    assert engaged.after_feedback("m1", "engaged", NOW + timedelta(minutes=9), 19, HALF) is None  # a second click


def test_only_the_latest_messages_are_tracked() -> None:
    counts = ChannelEngagement()
    for n in range(TRACKED + 1):
        counts = counts.after_send(f"m{n}", NOW, HALF)
    assert counts.sent == TRACKED + 1
    assert counts.after_feedback("m0", "engaged", NOW, 10, HALF) is None
    assert counts.after_feedback(f"m{TRACKED}", "engaged", NOW, 10, HALF) is not None


def test_recent_figures_decay_and_events_out_of_order_count_at_their_own_time() -> None:
    counts = ChannelEngagement().after_send("m1", NOW - HALF, HALF).after_send("m2", NOW, HALF)
    assert counts.recent(NOW, HALF) == pytest.approx((1.5, 0.0))
    late = counts.after_feedback("m1", "engaged", NOW - HALF, 9, HALF)  # an open from a month ago, told now
    assert late is not None and late.recent(NOW, HALF) == pytest.approx((1.5, 0.5))
    assert late.recent(NOW + HALF, HALF) == pytest.approx((0.75, 0.25))


def test_the_profile_document_round_trips_and_refuses_what_cannot_be_counts() -> None:
    doc = person({"sms": {"sent": 3, "engaged": 1, "by_hour": {"19": 1}}}).to_dict()["engagement"]
    assert doc == {"sms": {"sent": 3, "delivered": 0, "failed": 0, "engaged": 1, "last_engaged_at": None,
                           "by_hour": {"19": 1}, "recent": {"sent": 3.0, "engaged": 1.0, "as_of": None}}}
    for bad, field in (({"fax": {"sent": 1}}, "engagement.fax"), ({"sms": {"sent": -1}}, "engagement.sms.sent"),
                       ({"sms": {"by_hour": {"24": 1}}}, "engagement.sms.by_hour"),
                       ({"sms": {"sent": "3"}}, "engagement.sms.sent"),
                       ({"sms": {"last_engaged_at": "yesterday"}}, "engagement.sms.last_engaged_at")):
        with pytest.raises(ProfileError, match=rf"^{field}: "):
            person(bad)


# --- best_time ------------------------------------------------------------------------------------------------

CHICAGO = ZoneInfo("America/Chicago")


def test_best_time_is_the_most_engaged_local_hour_within_the_window() -> None:
    evenings = person({"push": {"sent": 20, "engaged": 14, "by_hour": {"19": 12, "8": 2}}}).engagement
    nine_am = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)  # 09:00 in Chicago (CST, UTC-6)
    at = best_time(nine_am, CHICAGO, best_hours(evenings), timedelta(hours=24), "10:00")
    assert at == datetime(2026, 1, 6, 1, 0, tzinfo=UTC)  # 19:00 in Chicago
    assert best_time(nine_am, CHICAGO, best_hours(evenings), timedelta(hours=6), "10:00") == \
        datetime(2026, 1, 5, 16, 0, tzinfo=UTC)  # no engagement in the window: the policy's 10:00


def test_best_time_without_history_is_the_policy_default_or_now() -> None:
    nine_am = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)
    assert best_time(nine_am, CHICAGO, best_hours(None), timedelta(hours=24), "10:00") == \
        datetime(2026, 1, 5, 16, 0, tzinfo=UTC)
    assert best_time(nine_am, CHICAGO, best_hours(None), timedelta(minutes=30), "10:00") == nine_am


def test_best_time_is_now_when_this_hour_is_the_best() -> None:
    evenings = person({"push": {"sent": 5, "engaged": 5, "by_hour": {"19": 5}}}).engagement
    at = datetime(2026, 1, 6, 1, 20, tzinfo=UTC)  # 19:20 in Chicago
    assert best_time(at, CHICAGO, best_hours(evenings), timedelta(hours=24), "10:00") == at


def test_consents_are_what_make_a_candidate_eligible_not_history() -> None:
    no_sms = Profile("u", push_token="tok", phone="+14155550123", consents=(
        ConsentRecord("push", "transactional", True, None, NOW),), engagement=person(TEXTER).engagement)
    selection = choose(no_sms, "high")
    assert [d.channel for d in selection.deliveries] == ["push"]
    assert selection.choice.reason == "push only: reach 0.05 at 0.0001 for urgency high"
