"""Every shipped journey, simulated on its example data, does what its `examples/<id>/expected.md` says.

The tables below are written out by hand from the expected.md files (which state what
docs/journeys.md and docs/policy.md require); they are never derived from the simulator's output.
For each journey they list every message in the order it is sent (user, channel, step, message,
UTC time), the channels refused for it and why, SMS encoding and segment counts, every skipped
send with its decisions, each instance's final status and path, and the summary counts and cost.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from typer.testing import CliRunner

from channels import load_policy
from engine.cli import app
from engine.compiler import load_file
from engine.simulator import parse_events, parse_profiles, read_jsonl, simulate

ROOT = Path(__file__).resolve().parent.parent
JOURNEYS = ROOT / "journeys"
EXAMPLES = ROOT / "examples"

# The default policy (docs/policy.md): cost per message (sms: per segment).
PRICE = {"push": 0.0001, "in_app": 0.0, "email": 0.001, "sms": 0.0083, "mms": 0.022, "rcs": 0.0083, "webhook": 0.0}

GSM7_1 = ("GSM-7", 1)
GSM7_2 = ("GSM-7", 2)


class Sent(NamedTuple):
    """One sent message: who, where, from which step, which message, when (UTC)."""

    user_id: str
    channel: str
    step: str | None
    message: str
    at: str
    refused: Mapping[str, str] = {}  # candidate channel -> reason code, for every candidate that was not eligible
    sms: tuple[str, int] | None = None  # (encoding, segments) of an SMS


class Skipped(NamedTuple):
    """A send that sent nothing, with every candidate's decision (channel, reason code)."""

    user_id: str
    step: str
    message: str
    at: str
    reason: str
    decisions: tuple[tuple[str, str], ...]


class Journey(NamedTuple):
    messages: list[Sent]
    skipped: list[Skipped]
    instances: dict[tuple[str, str | None], tuple[str, list[str]]]  # (user_id, key) -> (status, path)
    summary: dict[str, Any]


EXPECTED: dict[str, Journey] = {
    "fraud-alert": Journey(
        messages=[
            Sent("u2", "sms", "alert", "fraud_alert", "2026-01-05T02:30:00Z", sms=GSM7_2),
            Sent("u2", "push", "alert", "fraud_alert", "2026-01-05T02:30:00Z"),
            Sent("u2", "sms", "lock_card", "card_locked", "2026-01-05T03:00:00Z", sms=GSM7_1),
            Sent("u2", "push", "lock_card", "card_locked", "2026-01-05T03:00:00Z"),
            Sent("u1", "sms", "alert", "fraud_alert", "2026-01-05T15:00:00Z", sms=GSM7_1),
            Sent("u1", "push", "alert", "fraud_alert", "2026-01-05T15:00:00Z"),
            Sent("u1", "push", "thank_you", "transaction_confirmed", "2026-01-05T15:04:00Z"),
            Sent("u3", "push", "alert", "fraud_alert", "2026-01-05T16:00:00Z", {"sms": "no_consent"}),
            Sent("u4", "sms", "alert", "fraud_alert", "2026-01-05T17:00:00Z", {"push": "no_address"}, GSM7_1),
            Sent("u4", "sms", "alert", "fraud_alert", "2026-01-05T17:02:00Z", {"push": "no_address"}, GSM7_1),
            Sent("u4", "sms", "thank_you", "transaction_confirmed", "2026-01-05T17:10:00Z", {"push": "no_address"},
                 GSM7_1),
            Sent("u4", "sms", "lock_card", "card_locked", "2026-01-05T17:32:00Z", {"push": "no_address"}, GSM7_1),
        ],
        skipped=[],
        instances={
            ("u2", "t-2001"): ("completed", ["alert", "await_confirmation", "lock_card", "done"]),
            ("u1", "t-1001"): ("completed", ["alert", "await_confirmation", "thank_you", "done"]),
            ("u3", "t-3001"): ("exited", ["alert", "await_confirmation"]),
            ("u4", "t-4001"): ("completed", ["alert", "await_confirmation", "thank_you", "done"]),
            ("u4", "t-4002"): ("completed", ["alert", "await_confirmation", "lock_card", "done"]),
        },
        summary={"users": 4, "entered": 5, "completed": 4, "exited": 1, "converted": 0, "conversions": 0,
                 "active": 0, "failed": 0, "messages": {"sms": 7, "push": 5},
                 "cost": 0.0669},  # 8 sms segments x 0.0083 + 5 push
    ),
    "one-time-password": Journey(
        messages=[
            Sent("u3", "sms", None, "stop_confirmation", "2026-01-05T09:00:00Z", sms=GSM7_1),
            Sent("u1", "sms", "send_code", "otp_code", "2026-01-05T10:00:00Z", sms=GSM7_1),
            Sent("u1", "sms", "send_code", "otp_code", "2026-01-05T10:01:00Z", sms=GSM7_1),
            Sent("u4", "sms", "send_code", "otp_code", "2026-01-05T23:30:00Z", sms=GSM7_1),
        ],
        skipped=[
            Skipped("u2", "send_code", "otp_code", "2026-01-05T10:05:00Z", "no_eligible_channel",
                    (("sms", "no_consent"),)),
            Skipped("u3", "send_code", "otp_code", "2026-01-05T10:06:00Z", "no_eligible_channel",
                    (("sms", "opted_out"),)),
        ],
        instances={
            ("u1", "r-1001"): ("completed", ["send_code"]),
            ("u1", "r-1002"): ("completed", ["send_code"]),
            ("u2", "r-2001"): ("completed", ["send_code"]),
            ("u3", "r-3001"): ("completed", ["send_code"]),
            ("u4", "r-4001"): ("completed", ["send_code"]),
        },
        summary={"users": 4, "entered": 5, "completed": 5, "exited": 0, "converted": 0, "conversions": 0,
                 "active": 0, "failed": 0, "messages": {"sms": 4}, "cost": 0.0332},
    ),
    "appointment-confirmation": Journey(
        messages=[
            Sent("u1", "email", "confirm", "booking_confirmed", "2026-01-05T10:00:00Z"),
            Sent("u1", "sms", "confirm", "booking_confirmed", "2026-01-05T10:00:00Z", sms=GSM7_1),
            Sent("u2", "email", "confirm", "booking_confirmed", "2026-01-05T11:00:00Z"),
            Sent("u2", "sms", "confirm", "booking_confirmed", "2026-01-05T11:00:00Z", sms=GSM7_1),
            Sent("u3", "email", "confirm", "booking_confirmed", "2026-01-05T12:00:00Z", {"sms": "no_consent"}),
            Sent("u4", "email", "confirm", "booking_confirmed", "2026-01-05T13:00:00Z"),
            Sent("u4", "sms", "confirm", "booking_confirmed", "2026-01-05T13:00:00Z", sms=GSM7_1),
            Sent("u3", "email", "remind", "appointment_reminder", "2026-01-06T14:30:00Z", {"sms": "no_consent"}),
            Sent("u1", "sms", "remind", "appointment_reminder", "2026-01-07T15:00:00Z", sms=GSM7_1),
        ],
        skipped=[],
        instances={
            ("u1", "a-101"): ("completed", ["confirm", "day_before", "remind"]),
            ("u2", "a-201"): ("exited", ["confirm", "day_before"]),
            ("u3", "a-301"): ("completed", ["confirm", "day_before", "remind"]),
            ("u4", "a-401"): ("exited", ["confirm", "day_before"]),  # the day before had passed: expired
        },
        summary={"users": 4, "entered": 4, "completed": 2, "exited": 2, "converted": 0, "conversions": 0,
                 "active": 0, "failed": 0, "messages": {"email": 5, "sms": 4}, "cost": 0.0382},
    ),
    "order-updates": Journey(
        messages=[
            Sent("u1", "sms", "tell", "order_updates", "2026-01-05T10:30:00Z", {"push": "no_address"}, GSM7_1),
            Sent("u2", "push", "tell", "order_updates", "2026-01-05T11:30:00Z"),
            Sent("u2", "push", "tell", "order_updates", "2026-01-05T11:31:00Z"),
            Sent("u3", "email", "tell", "order_updates", "2026-01-05T12:30:00Z",
                 {"push": "no_address", "sms": "no_consent"}),
        ],
        skipped=[],
        instances={
            ("u1", "O-1001"): ("completed", ["gather", "tell"]),
            ("u2", "O-2001"): ("completed", ["gather", "tell"]),
            ("u2", "O-2002"): ("completed", ["gather", "tell"]),
            ("u3", "O-3001"): ("completed", ["gather", "tell"]),
        },
        summary={"users": 3, "entered": 4, "completed": 4, "exited": 0, "converted": 0, "conversions": 0,
                 "active": 0, "failed": 0, "messages": {"sms": 1, "push": 2, "email": 1}, "cost": 0.0095},
    ),
    "delivery-status": Journey(
        messages=[
            Sent("u1", "push", "shipped_notice", "order_shipped", "2026-01-05T10:00:00Z"),
            Sent("u1", "push", "shipped_notice", "order_shipped", "2026-01-05T10:30:00Z"),
            Sent("u2", "email", "shipped_notice", "order_shipped", "2026-01-05T11:00:00Z", {"push": "no_address"}),
            Sent("u3", "email", "shipped_notice", "order_shipped", "2026-01-05T11:30:00Z"),  # never opens a push
            Sent("u2", "sms", "out_for_delivery_notice", "out_for_delivery", "2026-01-06T09:00:00Z",
                 {"push": "no_address"}, GSM7_1),
            Sent("u1", "push", "out_for_delivery_notice", "out_for_delivery", "2026-01-07T08:00:00Z"),
            Sent("u2", "email", "delivery_issue", "delivery_attempt_failed", "2026-01-07T09:00:00Z"),
            Sent("u1", "push", "delivered_notice", "delivered", "2026-01-07T13:00:00Z"),
            Sent("u1", "email", "delayed_notice", "order_delayed", "2026-01-09T10:30:00Z"),
            Sent("u1", "push", "delivered_notice", "delivered", "2026-01-10T12:00:00Z"),
        ],
        skipped=[],
        instances={
            ("u1", "A-1001"): ("completed", ["shipped_notice", "wait_out_for_delivery", "out_for_delivery_notice",
                                             "wait_delivered", "delivered_notice", "done"]),
            ("u1", "A-1002"): ("completed", ["shipped_notice", "wait_out_for_delivery", "delayed_notice",
                                             "wait_delivered_late", "delivered_notice", "done"]),
            ("u2", "B-2001"): ("completed", ["shipped_notice", "wait_out_for_delivery", "out_for_delivery_notice",
                                             "wait_delivered", "delivery_issue", "done"]),
            ("u3", "C-3001"): ("exited", ["shipped_notice", "wait_out_for_delivery"]),
        },
        summary={"users": 3, "entered": 4, "completed": 3, "exited": 1, "converted": 0, "conversions": 0,
                 "active": 0, "failed": 0, "messages": {"push": 5, "email": 4, "sms": 1}, "cost": 0.0128},
    ),
    "flash-sale": Journey(
        messages=[
            Sent("u1", "mms", "coupon", "flash_coupon", "2026-01-05T20:30:00Z"),
            Sent("u3", "mms", "coupon", "flash_coupon", "2026-01-05T20:30:00Z"),
            Sent("u2", "sms", "coupon", "flash_coupon", "2026-01-06T07:00:00Z", {"mms": "no_consent"}, GSM7_1),
            Sent("u5", "sms", "coupon", "flash_coupon", "2026-01-06T07:00:00Z", {"mms": "no_consent"}, GSM7_1),
            Sent("u1", "push", "last_chance", "last_chance", "2026-01-06T14:00:00Z"),
            Sent("u2", "sms", "last_chance", "last_chance", "2026-01-07T08:00:00Z", {"push": "no_consent"}, GSM7_1),
            Sent("u5", "sms", "last_chance", "last_chance", "2026-01-07T08:00:00Z", {"push": "no_address"}, GSM7_1),
        ],
        skipped=[
            Skipped("u4", "coupon", "flash_coupon", "2026-01-05T20:30:00Z", "no_eligible_channel",
                    (("mms", "no_consent"), ("sms", "no_consent"))),
            Skipped("u4", "last_chance", "last_chance", "2026-01-06T14:00:00Z", "no_eligible_channel",
                    (("push", "no_consent"), ("sms", "no_consent"))),
        ],
        instances={
            ("u1", None): ("completed", ["coupon", "overnight", "next_morning", "last_chance"]),
            ("u2", None): ("completed", ["coupon", "overnight", "next_morning", "last_chance"]),
            ("u3", None): ("converted", ["coupon", "overnight"]),
            ("u4", None): ("completed", ["coupon", "overnight", "next_morning", "last_chance"]),
            ("u5", None): ("completed", ["coupon", "overnight", "next_morning", "last_chance"]),
        },
        summary={"users": 6, "entered": 5, "completed": 4, "exited": 0, "converted": 1, "conversions": 1,
                 "active": 0, "failed": 0, "messages": {"mms": 2, "sms": 4, "push": 1}, "cost": 0.0773},
    ),
    "event-invitation": Journey(
        messages=[
            Sent("u1", "rcs", "invite", "invitation", "2026-01-05T15:00:00Z"),
            Sent("u2", "sms", "invite", "invitation", "2026-01-05T15:00:00Z", {"rcs": "not_capable"}, GSM7_1),
            Sent("u3", "rcs", "invite", "invitation", "2026-01-05T15:00:00Z", {"sms": "no_consent"}),
            Sent("u4", "sms", "invite", "invitation", "2026-01-05T15:00:00Z", {"rcs": "no_consent"}, GSM7_1),
            Sent("u1", "rcs", "confirmed", "rsvp_confirmed", "2026-01-05T15:20:00Z"),
            Sent("u2", "sms", "declined", "rsvp_declined", "2026-01-05T16:00:00Z", {"rcs": "not_capable"}, GSM7_1),
            Sent("u3", "rcs", "nudge", "invitation_reminder", "2026-01-08T15:00:00Z", {"sms": "no_consent"}),
            Sent("u4", "sms", "nudge", "invitation_reminder", "2026-01-08T15:00:00Z", {"rcs": "no_consent"}, GSM7_1),
            Sent("u3", "rcs", "confirmed", "rsvp_confirmed", "2026-01-08T18:00:00Z", {"sms": "no_consent"}),
        ],
        skipped=[],
        instances={
            ("u1", None): ("completed", ["invite", "await_rsvp", "check_answer", "confirmed", "done"]),
            ("u2", None): ("completed", ["invite", "await_rsvp", "check_answer", "declined", "done"]),
            ("u3", None): ("completed", ["invite", "await_rsvp", "nudge", "await_rsvp_again", "check_answer",
                                         "confirmed", "done"]),
            ("u4", None): ("completed", ["invite", "await_rsvp", "nudge", "await_rsvp_again", "done"]),
        },
        summary={"users": 4, "entered": 4, "completed": 4, "exited": 0, "converted": 0, "conversions": 0,
                 "active": 0, "failed": 0, "messages": {"rcs": 5, "sms": 4}, "cost": 0.0747},
    ),
    "win-back": Journey(
        messages=[
            Sent("u1", "email", "percent_offer", "percent_offer", "2026-01-05T15:00:00Z"),
            Sent("u2", "email", "free_shipping_offer", "free_shipping_offer", "2026-01-05T15:00:00Z"),
            Sent("u3", "email", "vip_offer", "vip_offer", "2026-01-05T15:00:00Z"),
            Sent("u4", "email", "percent_offer", "percent_offer", "2026-01-05T15:00:00Z", {"sms": "no_consent"}),
            Sent("u2", "sms", "free_shipping_offer", "free_shipping_offer", "2026-01-08T15:00:00Z", sms=GSM7_1),
            Sent("u4", "email", "last_call", "last_call", "2026-01-12T15:00:00Z"),
            Sent("u1", "email", "last_call", "last_call", "2026-01-12T18:00:00Z"),
            Sent("u2", "email", "last_call", "last_call", "2026-01-15T15:00:00Z"),
        ],
        skipped=[],
        instances={
            ("u1", None): ("completed", ["vip_check", "offer_test", "percent_offer", "cool_off", "last_call"]),
            ("u2", None): ("completed", ["vip_check", "offer_test", "free_shipping_offer", "cool_off", "last_call"]),
            ("u3", None): ("converted", ["vip_check", "vip_offer"]),
            ("u4", None): ("completed", ["vip_check", "offer_test", "percent_offer", "cool_off", "last_call"]),
        },
        summary={"users": 6, "entered": 4, "completed": 3, "exited": 0, "converted": 1, "conversions": 1,
                 "active": 0, "failed": 0, "messages": {"email": 7, "sms": 1}, "cost": 0.0153},
    ),
    "payment-overdue": Journey(
        messages=[
            Sent("u1", "push", "first_notice", "payment_overdue", "2026-01-05T14:00:00Z"),
            Sent("u2", "push", "first_notice", "payment_overdue", "2026-01-05T14:00:00Z"),
            Sent("u3", "email", "first_notice", "payment_overdue", "2026-01-05T14:00:00Z",
                 {"push": "no_address", "sms": "no_consent"}),
            Sent("u4", "push", "first_notice", "payment_overdue", "2026-01-05T14:00:00Z"),
            Sent("u2", "email", "first_notice", "payment_overdue", "2026-01-05T18:00:00Z"),
            Sent("u2", "sms", "first_notice", "payment_overdue", "2026-01-05T22:00:00Z", sms=GSM7_1),
            Sent("u1", "email", "second_notice", "second_reminder", "2026-01-08T15:00:00Z"),
            Sent("u1", "sms", "second_notice", "second_reminder", "2026-01-08T15:00:00Z", sms=GSM7_1),
            Sent("u2", "email", "second_notice", "second_reminder", "2026-01-09T10:00:00Z"),
            Sent("u2", "sms", "second_notice", "second_reminder", "2026-01-09T10:00:00Z", sms=GSM7_1),
        ],
        skipped=[],
        instances={
            ("u1", "inv-1001"): ("completed", ["first_notice", "grace_period", "business_hours", "second_notice"]),
            ("u2", "inv-2001"): ("completed", ["first_notice", "grace_period", "business_hours", "second_notice"]),
            ("u3", "inv-3001"): ("converted", ["first_notice", "grace_period"]),
            ("u4", "inv-4001"): ("converted", ["first_notice"]),
        },
        summary={"users": 4, "entered": 4, "completed": 2, "exited": 0, "converted": 2, "conversions": 2,
                 "active": 0, "failed": 0, "messages": {"push": 3, "email": 4, "sms": 3}, "cost": 0.0292},
    ),
    "table-ready": Journey(
        messages=[
            Sent("u2", "sms", "notify", "table_ready", "2026-01-05T19:30:00Z", {"push": "no_address"}, GSM7_1),
            Sent("u2", "sms", "final_call", "final_call", "2026-01-05T19:40:00Z", {"push": "no_address"}, GSM7_1),
            Sent("u3", "push", "notify", "table_ready", "2026-01-05T20:00:00Z", {"sms": "no_consent"}),
            Sent("u1", "sms", "notify", "table_ready", "2026-01-05T23:00:00Z", sms=GSM7_1),
            Sent("u1", "push", "notify", "table_ready", "2026-01-05T23:00:00Z"),
        ],
        skipped=[
            Skipped("u4", "notify", "table_ready", "2026-01-05T21:00:00Z", "no_eligible_channel",
                    (("sms", "no_consent"), ("push", "no_address"))),
            Skipped("u4", "final_call", "final_call", "2026-01-05T21:10:00Z", "no_eligible_channel",
                    (("sms", "no_consent"), ("push", "no_address"))),
        ],
        instances={
            ("u2", None): ("completed", ["notify", "await_seating", "final_call", "done"]),
            ("u3", None): ("completed", ["notify", "await_seating", "done"]),
            ("u4", None): ("completed", ["notify", "await_seating", "final_call", "done"]),
            ("u1", None): ("completed", ["notify", "await_seating", "done"]),
        },
        summary={"users": 4, "entered": 4, "completed": 4, "exited": 0, "converted": 0, "conversions": 0,
                 "active": 0, "failed": 0, "messages": {"sms": 3, "push": 2}, "cost": 0.0251},
    ),
    "cart-abandonment": Journey(
        messages=[
            Sent("u1", "push", "nudge", "cart_reminder", "2026-01-05T16:00:00Z"),
            Sent("u2", "sms", "nudge", "cart_reminder", "2026-01-05T16:10:00Z", sms=GSM7_1),  # reads texts, not pushes
            Sent("u3", "push", "nudge", "cart_reminder", "2026-01-05T16:20:00Z"),
            Sent("u4", "push", "nudge", "cart_reminder", "2026-01-05T16:30:00Z", {"sms": "no_consent"}),
            Sent("u2", "push", "nudge", "cart_reminder", "2026-01-05T18:10:00Z"),
            Sent("u4", "email", "discount", "cart_discount", "2026-01-06T16:30:00Z"),
        ],
        skipped=[],
        instances={
            ("u1", None): ("completed", ["wait_1h", "nudge", "big_cart", "done"]),
            ("u2", None): ("completed", ["wait_1h", "nudge", "big_cart", "done"]),
            ("u3", None): ("converted", ["wait_1h", "nudge"]),
            ("u4", None): ("completed", ["wait_1h", "nudge", "big_cart", "wait_1d", "discount", "done"]),
        },
        summary={"users": 5, "entered": 4, "completed": 3, "exited": 0, "converted": 1, "conversions": 1,
                 "active": 0, "failed": 0, "messages": {"push": 4, "sms": 1, "email": 1}, "cost": 0.0097},
    ),
}

IDS = sorted(EXPECTED)


@cache
def _simulate(journey_id: str) -> dict[str, Any]:
    """The simulate document for a shipped journey on its example data, through the Python API."""
    journey = load_file(JOURNEYS / f"{journey_id}.yaml")
    folder = EXAMPLES / journey_id
    events = parse_events((f"events.jsonl:{n}", row) for n, row in read_jsonl(folder / "events.jsonl"))
    profiles = parse_profiles((f"profiles.jsonl:{n}", row) for n, row in read_jsonl(folder / "profiles.jsonl"))
    return simulate(journey, events, profiles, load_policy())


def _messages(journey_id: str, user_id: str | None = None, message: str | None = None) -> list[dict[str, Any]]:
    return [m for m in _simulate(journey_id)["messages"]
            if (user_id is None or m["user_id"] == user_id) and (message is None or m["message"] == message)]


def test_every_shipped_journey_has_an_expected_table() -> None:
    assert sorted(p.stem for p in JOURNEYS.glob("*.yaml")) == IDS
    assert sorted(p.name for p in EXAMPLES.iterdir() if (p / "expected.md").is_file()) == IDS


@pytest.mark.parametrize("journey_id", IDS)
def test_messages_are_sent_one_by_one_as_expected(journey_id: str) -> None:
    sent = [(m["user_id"], m["channel"], m["step"], m["message"], m["at"]) for m in _simulate(journey_id)["messages"]]
    expected = [(e.user_id, e.channel, e.step, e.message, e.at) for e in EXPECTED[journey_id].messages]
    assert sent == expected


@pytest.mark.parametrize("journey_id", IDS)
def test_each_message_records_why_other_channels_were_refused(journey_id: str) -> None:
    messages = _simulate(journey_id)["messages"]
    assert len(messages) == len(EXPECTED[journey_id].messages)
    for message, expected in zip(messages, EXPECTED[journey_id].messages, strict=True):
        where = f"{expected.user_id} {expected.step} {expected.channel} at {expected.at}"
        refused = {d["channel"]: d["reason"] for d in message["decisions"] if not d["eligible"]}
        assert refused == dict(expected.refused), where
        chosen = [d for d in message["decisions"] if d["channel"] == expected.channel]
        capability = {"capability": "assumed"} if expected.channel == "rcs" else {}  # the profile's rcs_capable
        figures = ("reach", "cost", "score")  # strategy auto's, checked below
        assert [{k: v for k, v in d.items() if k not in figures} for d in chosen] == [
            {"channel": expected.channel, "eligible": True, "reason": None, **capability}], where
        if "choice" in message:  # strategy auto: the chosen channel's figures are its own, and it is first
            assert chosen[0]["cost"] == message["cost"] and 0 <= chosen[0]["reach"] <= 1, where
            assert message["choice"]["order"][0] == expected.channel, where
        else:
            assert not any(figure in chosen[0] for figure in figures), where


@pytest.mark.parametrize("journey_id", IDS)
def test_sms_messages_report_encoding_and_segments(journey_id: str) -> None:
    for message, expected in zip(_simulate(journey_id)["messages"], EXPECTED[journey_id].messages, strict=True):
        where = f"{expected.user_id} {expected.step} {expected.channel} at {expected.at}"
        if expected.channel == "sms":
            assert expected.sms is not None, f"table gap: {where}"
            assert (message["encoding"], message["segments"]) == expected.sms, where
        else:
            assert (message["encoding"], message["segments"]) == (None, None), where


@pytest.mark.parametrize("journey_id", IDS)
def test_each_message_costs_the_policy_price(journey_id: str) -> None:
    for message, expected in zip(_simulate(journey_id)["messages"], EXPECTED[journey_id].messages, strict=True):
        units = expected.sms[1] if expected.sms else 1
        assert message["cost"] == pytest.approx(PRICE[expected.channel] * units, abs=1e-9), expected


@pytest.mark.parametrize("journey_id", IDS)
def test_skipped_sends_carry_their_reason_and_decisions(journey_id: str) -> None:
    skipped = [
        Skipped(s["user_id"], s["step"], s["message"], s["at"], s["reason"],
                tuple((d["channel"], d["reason"]) for d in s["decisions"]))
        for s in _simulate(journey_id)["skipped"]
    ]
    assert skipped == EXPECTED[journey_id].skipped
    for row in _simulate(journey_id)["skipped"]:
        assert all(d["eligible"] is False for d in row["decisions"]), row


@pytest.mark.parametrize("journey_id", IDS)
def test_instances_end_with_the_expected_status_and_path(journey_id: str) -> None:
    instances = _simulate(journey_id)["instances"]
    got = {(i["user_id"], i["key"]): (i["status"], i["path"]) for i in instances}
    assert len(got) == len(instances), "one row per (user, key)"
    assert got == EXPECTED[journey_id].instances


@pytest.mark.parametrize("journey_id", IDS)
def test_summary_counts_and_cost(journey_id: str) -> None:
    summary = dict(_simulate(journey_id)["summary"])
    expected = dict(EXPECTED[journey_id].summary)
    assert summary.pop("cost") == pytest.approx(expected.pop("cost"), abs=1e-9)
    assert summary == expected
    assert _simulate(journey_id)["journey"] == journey_id


def test_auto_sends_a_texter_the_sms_first_and_someone_who_never_opens_a_push_an_email() -> None:
    """The expected.md files' reasons, word for word: u2 of cart-abandonment opened none of 20
    pushes and clicked 8 of 10 texts; u3 of delivery-status opened none of 12 pushes, 4 of 6 emails."""
    [texter, later] = _messages("cart-abandonment", "u2")
    assert texter["choice"] == {"strategy": "auto", "order": ["sms", "push"], "reason": (
        "sms first: 100 reach per unit cost (0.83 at 0.0083); push 0.05 below the floor 0.10 for urgency normal")}
    assert later["choice"]["reason"].startswith("no engagement on sms within 2h; push only")
    [reader] = _messages("delivery-status", "u3")
    assert reader["choice"]["reason"] == ("email: the cheapest with reach at least 0.10: 0.48 at 0.0010; push 0.07 "
                                          "below it for urgency low")


def test_rcs_not_capable_falls_back_to_sms_without_mms_content() -> None:
    for message in _messages("event-invitation", "u2"):
        rcs = next(d for d in message["decisions"] if d["channel"] == "rcs")
        assert rcs["reason"] == "not_capable"
        assert rcs.get("fallback") == "sms"
        assert message["channel"] == "sms"


def test_stop_keyword_gets_one_confirmation_and_later_sms_is_opted_out() -> None:
    replies = _messages("one-time-password", "u3")
    assert [(m["step"], m["message"], m["channel"]) for m in replies] == [(None, "stop_confirmation", "sms")]
    skipped = [s for s in _simulate("one-time-password")["skipped"] if s["user_id"] == "u3"]
    assert [d["reason"] for s in skipped for d in s["decisions"]] == ["opted_out"]


def test_otp_codes_are_sent_as_strings_with_leading_zero() -> None:
    sent = _messages("one-time-password", message="otp_code")
    codes = [(m["user_id"], m["content"]["text"].split()[0]) for m in sent]
    assert codes == [("u1", "482913"), ("u1", "105738"), ("u4", "068312")]
    assert [m["content"]["text"].rsplit("#", 1)[1] for m in sent] == ["482913", "105738", "068312"]


def test_fraud_alert_sms_renders_amount_and_reaches_two_segments() -> None:
    (alert,) = [m for m in _messages("fraud-alert", "u2", "fraud_alert") if m["channel"] == "sms"]
    assert "GBP 849.00" in alert["content"]["text"]
    assert "ELECTRO-MART ONLINE" in alert["content"]["text"]
    assert alert["segments"] == 2 and alert["cost"] == pytest.approx(2 * PRICE["sms"])


def test_mms_coupon_carries_its_media_url() -> None:
    for message in _messages("flash-sale", message="flash_coupon"):
        if message["channel"] == "mms":
            assert message["content"]["media_url"] == "https://cdn.example.com/campaigns/fs-2026-01/coupon.jpg"
            assert "FLASH30" in message["content"]["text"]


def test_rcs_invitation_holds_the_carousel_and_the_chips_in_the_json() -> None:
    folder = EXAMPLES / "event-invitation"
    result = CliRunner().invoke(app, ["simulate", str(JOURNEYS / "event-invitation.yaml"), "--json",
                                      "--events", str(folder / "events.jsonl"),
                                      "--profiles", str(folder / "profiles.jsonl")])
    assert result.exit_code == 0, result.output
    messages = json.loads(result.stdout)["messages"]
    [invite] = [m for m in messages if (m["user_id"], m["message"]) == ("u1", "invitation")]
    carousel = invite["content"]["carousel"]
    assert carousel["width"] == "medium"
    assert [card["title"] for card in carousel["cards"]] == ["Spring Collection Preview Night", "Meet the designers",
                                                             "Drinks and music"]
    assert carousel["cards"][0]["media"] == {"url": "https://cdn.example.com/events/ev-42/banner.jpg",
                                             "height": "medium"}
    assert invite["content"]["suggestions"] == [
        {"reply": "Yes, I'll come", "postback": "rsvp_yes"}, {"reply": "No, thanks", "postback": "rsvp_no"},
        {"open_url": "https://shop.example.com/events/ev-42", "text": "Details"},
        {"dial": "+12125550199", "text": "Call the store"},
        {"calendar_event": {"title": "Spring Collection Preview Night", "start": "2026-01-15T23:00:00Z",
                            "end": "2026-01-16T02:00:00Z"}, "text": "Add to calendar"},
    ]


def test_appointment_booked_too_late_for_a_reminder_ends_expired() -> None:
    (late,) = [i for i in _simulate("appointment-confirmation")["instances"] if i["user_id"] == "u4"]
    assert (late["status"], late["reason"]) == ("exited", "expired")


def test_order_updates_are_one_message_per_order_listing_every_update() -> None:
    texts = [(m["user_id"], m["content"].get("text") or m["content"].get("body")) for m in _messages("order-updates")]
    assert texts[:3] == [
        ("u1", "Order O-1001: confirmed, paid, packed, label printed, handed to the carrier. "
               "Track: https://shop.example.com/track/O-1001"),
        ("u2", "2 updates: confirmed, paid"), ("u2", "2 updates: confirmed, paid")]
    assert [m["digest"]["count"] for m in _messages("order-updates")] == [5, 2, 2, 2]
    assert "- confirmed (2026-01-05T12:00:00Z)\n- paid (2026-01-05T12:20:00Z)\n" in texts[3][1]


def _invitation_with(replies: list[dict[str, Any]]) -> dict[str, Any]:
    """The event invitation for u1 alone (RCS capable), with these replies after the invitation."""
    folder = EXAMPLES / "event-invitation"
    rows = [row for _, row in read_jsonl(folder / "events.jsonl")]
    invited = [r for r in rows if (r["type"], r["user_id"]) == ("event.invited", "u1")]
    events = parse_events((f"e{n}", row) for n, row in enumerate(invited + replies))
    profiles = parse_profiles((f"p{n}", row) for n, row in read_jsonl(folder / "profiles.jsonl"))
    return simulate(load_file(JOURNEYS / "event-invitation.yaml"), events, profiles, load_policy())


def _path(document: dict[str, Any]) -> tuple[str, list[str]]:
    [instance] = document["instances"]
    return instance["status"], instance["path"]


def test_an_rcs_reply_with_the_yes_postback_takes_the_yes_path() -> None:
    tap = {"type": "rcs.reply", "user_id": "u1", "timestamp": "2026-01-06T15:20:00Z",
           "properties": {"postback": "rsvp_yes", "text": "Yes, I'll come"}}
    document = _invitation_with([tap])
    assert _path(document) == ("completed", ["invite", "await_rsvp", "check_answer", "confirmed", "done"])
    assert [(m["message"], m["channel"], m["at"]) for m in document["messages"]] == [
        ("invitation", "rcs", "2026-01-05T15:00:00Z"), ("rsvp_confirmed", "rcs", "2026-01-06T15:20:00Z")]
    no = _invitation_with([{**tap, "properties": {"postback": "rsvp_no", "text": "No, thanks"}}])
    assert _path(no)[1][-2:] == ["declined", "done"]
    other_chip = _invitation_with([{**tap, "properties": {"postback": "Details", "text": "Details"}}])
    assert _path(other_chip)[1] == ["invite", "await_rsvp", "nudge", "await_rsvp_again", "done"]


def test_without_a_reply_the_invitation_is_nudged_and_ends_as_before() -> None:
    document = _invitation_with([])
    assert _path(document) == ("completed", ["invite", "await_rsvp", "nudge", "await_rsvp_again", "done"])
    assert [(m["message"], m["channel"], m["at"]) for m in document["messages"]] == [
        ("invitation", "rcs", "2026-01-05T15:00:00Z"), ("invitation_reminder", "rcs", "2026-01-08T15:00:00Z")]


def test_vip_offer_uses_the_customers_code() -> None:
    (offer,) = _messages("win-back", "u3", "vip_offer")
    assert "VIP25-U3" in offer["content"]["body"]


def test_split_gives_a_user_the_same_variant_on_both_channels() -> None:
    assert [(m["channel"], m["message"]) for m in _messages("win-back", "u2") if m["step"] != "last_call"] == [
        ("email", "free_shipping_offer"), ("sms", "free_shipping_offer"),
    ]


@pytest.mark.parametrize("journey_id", ["one-time-password", "fraud-alert", "event-invitation", "flash-sale",
                                        "win-back"])
def test_cli_simulate_json_prints_the_same_document(journey_id: str) -> None:
    folder = EXAMPLES / journey_id
    result = CliRunner().invoke(app, [
        "simulate", str(JOURNEYS / f"{journey_id}.yaml"),
        "--events", str(folder / "events.jsonl"), "--profiles", str(folder / "profiles.jsonl"), "--json",
    ])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document == _simulate(journey_id)
    assert [(m["user_id"], m["channel"], m["step"], m["message"], m["at"]) for m in document["messages"]] == [
        (e.user_id, e.channel, e.step, e.message, e.at) for e in EXPECTED[journey_id].messages
    ]


@pytest.mark.parametrize(("journey_id", "run"), [
    ("flash-sale", {"run_id": "r1", "trigger": "at", "scheduled_at": "2026-01-05T20:30:00Z", "profiles": 6,
                    "matched": 5, "entered": 5, "skipped": {}}),
    ("win-back", {"run_id": "r1", "trigger": "schedule", "scheduled_at": "2026-01-05T15:00:00Z", "profiles": 6,
                  "matched": 4, "entered": 4, "skipped": {}}),
])
def test_audience_journeys_enter_their_audience_in_one_run(journey_id: str, run: dict[str, Any]) -> None:
    document = _simulate(journey_id)
    assert document["runs"] == [run]
    entry = document["instances"][0]
    assert entry["user_id"] == "u1"
    assert "runs" not in _simulate("cart-abandonment")  # an event-triggered journey has none


def test_appointment_times_are_in_each_patients_zone_and_language() -> None:
    """The UTC `starts_at` written for the reader: u1 in New York (en-US) reads the English content, u4
    (fr-CA, New York) the `fr` variant of the confirmation (booked the same day: no reminder), u3
    (es-ES, Berlin) the `es` variant of the email."""
    texts = {(m["user_id"], m["channel"], m["message"]): (m["locale"], m["content"].get("text") or m["content"]["body"])
             for m in _simulate("appointment-confirmation")["messages"]}
    assert texts["u1", "sms", "appointment_reminder"] == (None, "Reminder: Dr. Patel at Midtown Dental tomorrow, "
                                                          "Thursday, January 8 at 10:00 AM. Can't make it? "
                                                          "https://care.example.com/a/a-101")
    assert texts["u4", "sms", "booking_confirmed"] == ("fr", "Midtown Dental : votre rendez-vous avec Dr. Patel est "
                                                       "confirmé pour le lundi 5 janvier à 13:00. Gérer : "
                                                       "https://care.example.com/a/a-401")
    locale, body = texts["u3", "email", "appointment_reminder"]
    assert locale == "es" and "Praxis Mitte el miércoles 7 de enero, 15:30." in body
    assert texts["u2", "sms", "booking_confirmed"][1].endswith("for Friday, January 9 at 9:00 am. Manage: "
                                                               "https://care.example.com/a/a-201")
