"""Consent derived from the ledger, and the STOP / START / HELP keywords."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from channels import (
    ConsentRecord,
    Keyword,
    KeywordMatch,
    apply_keyword,
    classify_keyword,
    consent_reason,
    consent_status,
    load_policy,
)

POLICY = load_policy()
ENGLISH = POLICY.keywords["en"].replies
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
    found = classify_keyword(text)
    assert (found.kind if found else None) is keyword
    assert found is None or found.language == "en"


def test_stop_revokes_every_phone_channel_and_category() -> None:
    outcome = apply_keyword(Keyword.STOP, GRANTED, T0, POLICY)
    revoked = {(r.channel, r.category) for r in outcome.records}
    assert revoked == {(ch, cat) for ch in ("sms", "mms", "rcs") for cat in ("marketing", "transactional")}
    assert all(not r.granted and r.source == "keyword:STOP" and r.at == T0 for r in outcome.records)
    assert (outcome.reply_message, outcome.reply_text) == ("stop_confirmation", ENGLISH.stop_confirmation)


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
    assert outcome.reply_text == ENGLISH.start_confirmation


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
    assert (outcome.reply_message, outcome.reply_text) == ("help", ENGLISH.help)


@pytest.mark.parametrize(
    ("text", "kind", "language"),
    [
        ("arret", Keyword.STOP, "fr"),
        ("ARRET", Keyword.STOP, "fr"),
        (" Arrêt\n", Keyword.STOP, "fr"),
        ("arrêt", Keyword.STOP, "fr"),
        ("aide", Keyword.HELP, "fr"),
        ("Alto", Keyword.STOP, "es"),
        ("detener", Keyword.STOP, "es"),
        ("inicio", Keyword.START, "es"),
        ("AYUDA", Keyword.HELP, "es"),
        ("stop", Keyword.STOP, "en"),  # French senders use STOP too: English is listed first
    ],
)
def test_keywords_in_other_languages(text: str, kind: Keyword, language: str) -> None:
    assert classify_keyword(text, POLICY) == KeywordMatch(kind, language)


@pytest.mark.parametrize("text", ["arret svp", "je veux arrêter", "arrete", "alto ahí"])
def test_a_sentence_is_not_a_keyword_in_any_language(text: str) -> None:
    assert classify_keyword(text, POLICY) is None


def test_arret_revokes_like_stop_and_the_reply_is_french() -> None:
    match = classify_keyword("arret", POLICY)
    assert match is not None
    french = apply_keyword(match, GRANTED, T0, POLICY)
    english = apply_keyword(Keyword.STOP, GRANTED, T0, POLICY)
    assert [(r.channel, r.category, r.granted) for r in french.records] == \
        [(r.channel, r.category, r.granted) for r in english.records]
    assert {r.source for r in french.records} == {"keyword:STOP:fr"}  # the START that undoes it answers in French
    assert (french.reply_message, french.reply_text) == (
        "stop_confirmation", POLICY.keywords["fr"].replies.stop_confirmation)
    assert french.reply_text != english.reply_text


def test_start_after_arret_is_answered_in_french_and_grants_back_what_it_revoked() -> None:
    stopped = GRANTED + apply_keyword(classify_keyword("ARRÊT", POLICY), GRANTED, T0, POLICY).records
    start = classify_keyword("START", POLICY)
    assert start is not None and start.language == "en"  # no French re-opt-in word: START it is
    outcome = apply_keyword(start, stopped, T0, POLICY)
    assert (outcome.reply_message, outcome.reply_text) == (
        "start_confirmation", POLICY.keywords["fr"].replies.start_confirmation)
    assert {(r.channel, r.category) for r in outcome.records} == {(c.channel, c.category) for c in GRANTED
                                                                  if c.channel in ("sms", "mms", "rcs")}
    after_english_stop = GRANTED + apply_keyword(Keyword.STOP, GRANTED, T0, POLICY).records
    assert apply_keyword(start, after_english_stop, T0, POLICY).reply_text == \
        POLICY.keywords["en"].replies.start_confirmation
    inicio = classify_keyword("INICIO", POLICY)
    assert inicio is not None and apply_keyword(inicio, stopped, T0, POLICY).reply_text == \
        POLICY.keywords["es"].replies.start_confirmation  # a word of its own language: answered in it


def test_start_after_arret_regrants_what_it_revoked() -> None:
    ledger = GRANTED + apply_keyword(KeywordMatch(Keyword.STOP, "fr"), GRANTED, T0, POLICY).records
    outcome = apply_keyword(KeywordMatch(Keyword.START, "es"), ledger, T0 + timedelta(hours=1), POLICY)
    assert {(r.channel, r.category) for r in outcome.records} == {("sms", "marketing")}
    assert outcome.reply_text == POLICY.keywords["es"].replies.start_confirmation
