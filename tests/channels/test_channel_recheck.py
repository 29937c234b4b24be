"""`recheck`: what must still hold when a message is handed to a provider; `with_suppression`:
a suppressed number is opted out of the phone channels whatever the profile's own ledger says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from channels import ConsentRecord, Profile, consent_reason, load_policy
from channels.recheck import Recheck, recheck, with_suppression

NOON = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
POLICY = load_policy()


def person(*grants: tuple[str, str, bool], **fields: object) -> Profile:
    records = tuple(ConsentRecord(c, cat, ok, "test", NOON - timedelta(days=1)) for c, cat, ok in grants)
    base = {"user_id": "u1", "timezone": "UTC", "phone": "+14155550100", "email": "a@example.com",
            "consents": records}
    return Profile(**{**base, **fields})  # type: ignore[arg-type]


def test_a_message_that_may_go_goes() -> None:
    assert recheck(person(("sms", "marketing", True)), "sms", "marketing", POLICY, NOON).go


def test_consent_revoked_or_never_given_cancels() -> None:
    revoked = person(("sms", "marketing", True), ("sms", "marketing", False))
    assert recheck(revoked, "sms", "marketing", POLICY, NOON) == Recheck(cancel="opted_out")
    assert recheck(person(), "sms", "marketing", POLICY, NOON) == Recheck(cancel="no_consent")


def test_a_missing_address_or_profile_cancels() -> None:
    assert recheck(person(("sms", "marketing", True), phone=None), "sms", "marketing", POLICY, NOON).cancel == \
        "no_address"
    assert recheck(None, "email", "transactional", POLICY, NOON).cancel == "no_address"


def test_a_suppressed_number_cancels_the_phone_channels_only() -> None:
    granted = person(("sms", "marketing", True), ("email", "marketing", True))
    assert recheck(granted, "sms", "marketing", POLICY, NOON, NOON).cancel == "opted_out"
    assert recheck(granted, "email", "marketing", POLICY, NOON, NOON).go


def test_quiet_hours_defer_marketing_to_the_end_of_the_window_but_not_transactional() -> None:
    night = datetime(2026, 1, 5, 23, 30, tzinfo=UTC)
    granted = person(("sms", "marketing", True), ("sms", "transactional", True))
    verdict = recheck(granted, "sms", "marketing", POLICY, night)
    assert verdict.cancel is None and verdict.defer_until is not None and verdict.defer_until > night
    assert recheck(granted, "sms", "transactional", POLICY, night).go


def test_with_suppression_wins_over_a_later_opt_in_and_adds_nothing_without_it() -> None:
    later = ConsentRecord("sms", "marketing", True, "web form", NOON + timedelta(hours=1))
    granted = person(("sms", "marketing", True))
    opted_in_again = Profile(**{**granted.to_dict(), "consents": ()})  # type: ignore[arg-type]
    opted_in_again = opted_in_again.with_consents([*granted.consents, later])
    seen = with_suppression(opted_in_again, NOON)
    for channel in ("sms", "mms", "rcs"):
        assert consent_reason(seen.consents, channel, "marketing") == "opted_out"
    assert consent_reason(seen.consents, "email", "transactional") is None
    assert with_suppression(granted, None) is granted


def test_a_florida_number_waits_for_florida_quiet_hours_at_dispatch() -> None:
    """20:30 in Miami (01:30 UTC the next day): outside the global window's start (21:00), inside Florida's."""
    at = datetime(2026, 6, 2, 0, 30, tzinfo=UTC)  # 20:30 EDT on June 1
    miami = person(("sms", "marketing", True), timezone=None, phone="+13055550123")
    verdict = recheck(miami, "sms", "marketing", POLICY, at)
    assert verdict.defer_until == datetime(2026, 6, 2, 12, 0, tzinfo=UTC)  # 08:00 EDT
    ohio = person(("sms", "marketing", True), timezone=None, phone="+16145550123")
    assert recheck(ohio, "sms", "marketing", POLICY, at).go
