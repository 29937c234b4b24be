"""Consent derived from the ledger, and the STOP / START / HELP keywords."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from channels import (
    ConsentRecord,
    Keyword,
    apply_keyword,
    classify_keyword,
    consent_reason,
    consent_status,
    load_policy,
)

POLICY = load_policy()
T0 = datetime(2026, 1, 5, 10, tzinfo=UTC)


def record(channel: str, granted: bool, minutes: int = 0, category: str = "marketing") -> ConsentRecord:
    return ConsentRecord(channel, category, granted, "test", T0 + timedelta(minutes=minutes))


GRANTED = (record("sms", True),)
REVOKED = (record("sms", True), record("sms", False, 1))


@pytest.mark.parametrize(
    ("channel", "category", "ledger", "reason"),
    [
        ("sms", "marketing", (), "no_consent"),
        ("sms", "transactional", (), "no_consent"),
        ("mms", "transactional", (), "no_consent"),
        ("rcs", "marketing", (), "no_consent"),
        ("sms", "marketing", GRANTED, None),
        ("sms", "marketing", REVOKED, "opted_out"),
        ("sms", "transactional", GRANTED, "no_consent"),
        ("push", "transactional", (), None),
        ("email", "transactional", (), None),
        ("in_app", "transactional", (), None),
        ("push", "transactional", (record("push", False, category="transactional"),), "opted_out"),
        ("push", "marketing", (), "no_consent"),
        ("email", "marketing", (record("email", True),), None),
        ("email", "marketing", (record("email", False),), "opted_out"),
        ("webhook", "marketing", (), None),
        ("webhook", "marketing", (record("webhook", False),), None),
    ],
)
def test_consent_reason(channel: str, category: str, ledger: tuple[ConsentRecord, ...], reason: str | None) -> None:
    assert consent_reason(ledger, channel, category) == reason


@pytest.mark.parametrize(
    ("ledger", "status"),
    [
        ((), "none"),
        (GRANTED, "granted"),
        (REVOKED, "revoked"),
        # the latest by time wins, whatever the ledger order
        ((record("sms", False, 5), record("sms", True, 1)), "revoked"),
        # equal times: the later ledger entry wins
        ((record("sms", False), record("sms", True)), "granted"),
        ((record("sms", True), record("sms", False)), "revoked"),
    ],
)
def test_consent_status_is_the_latest_record(ledger: tuple[ConsentRecord, ...], status: str) -> None:
    assert consent_status(ledger, "sms", "marketing") == status


def test_lists_and_tuples_give_the_same_state() -> None:
    assert consent_status(list(REVOKED), "sms", "marketing") == consent_status(REVOKED, "sms", "marketing")


@pytest.mark.parametrize(
    ("text", "keyword"),
    [
        ("STOP", Keyword.STOP),
        (" stop ", Keyword.STOP),
        ("Stop", Keyword.STOP),
        ("STOPALL", Keyword.STOP),
        ("unsubscribe", Keyword.STOP),
        ("Cancel\n", Keyword.STOP),
        ("end", Keyword.STOP),
        ("QUIT", Keyword.STOP),
        ("revoke", Keyword.STOP),
        ("opt out", Keyword.STOP),
        ("Opt Out", Keyword.STOP),
        ("OPT   OUT", Keyword.STOP),
        ("start", Keyword.START),
        (" UNSTOP", Keyword.START),
        ("Help", Keyword.HELP),
        ("stop it", None),
        ("please STOP", None),
        ("please stop texting me", None),
        ("STOP!", None),
        ("", None),
        ("yes", None),
    ],
)
def test_classify_keyword(text: str, keyword: Keyword | None) -> None:
    assert classify_keyword(text) is keyword


def test_stop_revokes_every_phone_channel_and_category() -> None:
    outcome = apply_keyword(Keyword.STOP, GRANTED, T0, POLICY)
    revoked = {(r.channel, r.category) for r in outcome.records}
    assert revoked == {(ch, cat) for ch in ("sms", "mms", "rcs") for cat in ("marketing", "transactional")}
    assert all(not r.granted and r.source == "keyword:STOP" and r.at == T0 for r in outcome.records)
    assert (outcome.reply_message, outcome.reply_text) == ("stop_confirmation", POLICY.keywords.stop_confirmation)


def test_stop_takes_effect_even_at_the_same_instant_as_a_grant() -> None:
    ledger = GRANTED + apply_keyword(Keyword.STOP, GRANTED, T0, POLICY).records
    assert consent_reason(ledger, "sms", "marketing") == "opted_out"
    assert consent_reason(ledger, "email", "transactional") is None


def test_start_regrants_exactly_what_the_last_stop_revoked() -> None:
    ledger: tuple[ConsentRecord, ...] = (
        record("sms", True),
        record("mms", True, category="transactional"),
        record("rcs", False, 1),
    )
    ledger += apply_keyword(Keyword.STOP, ledger, T0 + timedelta(hours=1), POLICY).records
    outcome = apply_keyword(Keyword.START, ledger, T0 + timedelta(hours=2), POLICY)
    assert {(r.channel, r.category) for r in outcome.records} == {
        ("sms", "marketing"),
        ("mms", "transactional"),
    }
    assert all(r.granted and r.source == "keyword:START" for r in outcome.records)
    assert outcome.reply_message == "start_confirmation"
    after = ledger + outcome.records
    assert consent_status(after, "sms", "marketing") == "granted"
    assert consent_status(after, "rcs", "marketing") == "revoked"
    assert consent_status(after, "sms", "transactional") == "revoked"


def test_start_without_a_stop_grants_nothing() -> None:
    outcome = apply_keyword(Keyword.START, (), T0, POLICY)
    assert outcome.records == ()
    assert outcome.reply_text == POLICY.keywords.start_confirmation


def test_start_uses_the_most_recent_stop() -> None:
    ledger: tuple[ConsentRecord, ...] = (record("sms", True),)
    ledger += apply_keyword(Keyword.STOP, ledger, T0 + timedelta(hours=1), POLICY).records
    ledger += (record("mms", True, 120),)
    ledger += apply_keyword(Keyword.STOP, ledger, T0 + timedelta(hours=3), POLICY).records
    outcome = apply_keyword(Keyword.START, ledger, T0 + timedelta(hours=4), POLICY)
    assert {(r.channel, r.category) for r in outcome.records} == {("mms", "marketing")}


def test_help_changes_no_consent() -> None:
    outcome = apply_keyword(Keyword.HELP, GRANTED, T0, POLICY)
    assert outcome.records == ()
    assert (outcome.reply_message, outcome.reply_text) == ("help", POLICY.keywords.help)
