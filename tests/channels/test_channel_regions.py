"""Jurisdiction rules (`regions:`): a recipient's region, its quiet window and its caps."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import phonenumbers
import pytest

from channels import (
    ConsentRecord,
    Profile,
    SendRequest,
    SentRecord,
    cap_reached,
    load_policy,
    quiet_until,
    recipient_region,
    recipient_zone,
    regions,
    select,
)
from channels.regions import US_STATES, geocoder_state, phone_us_state

POLICY = load_policy()
NEW_YORK = ZoneInfo("America/New_York")
MIAMI = "+13055550123"  # the geocoder says "Florida"
MIAMI_BEACH = "+13052345678"  # "Miami, FL"
MANHATTAN = "+12125550123"
AT_2030_EDT = datetime(2026, 7, 2, 0, 30, tzinfo=UTC)  # 20:30 EDT on 1 July


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("profile", "region"),
    [
        (Profile("u", phone=MIAMI), "US-FL"),
        (Profile("u", phone=MIAMI_BEACH), "US-FL"),
        (Profile("u", phone=MANHATTAN), "US-NY"),
        (Profile("u", phone="+12025550123"), "US-DC"),  # "Washington D.C."
        (Profile("u", phone="+12065550123"), "US-WA"),  # Seattle
        (Profile("u", phone="+18005550123"), "US"),  # toll-free: no state
        (Profile("u", phone="+442079460000"), "GB"),
        (Profile("u", phone="+33612345678"), "FR"),
        (Profile("u", phone=MANHATTAN, attributes={"region": "us-fl"}), "US-FL"),  # the profile says so
        (Profile("u", phone=MIAMI, attributes={"region": "FR"}), "FR"),
        (Profile("u", phone=MIAMI, attributes={"region": "Florida"}), "US-FL"),  # not a code: the phone tells
        (Profile("u", attributes={"region": "US-TX"}), "US-TX"),
        (Profile("u"), None),
    ],
)
def test_recipient_region(profile: Profile, region: str | None) -> None:
    assert recipient_region(profile, POLICY) == region


def test_no_state_is_looked_up_without_rules_for_a_state(tmp_path: Path) -> None:
    policy = load_policy(write(tmp_path, "regions: {US-FL: null}\n"))
    assert recipient_region(Profile("u", phone=MIAMI), policy) == "US"
    assert policy.fast.rules_for("US-FL") == policy.fast.rules


def us_numbers_with_a_state() -> list[phonenumbers.PhoneNumber]:
    """One valid geographic number for each US area code."""
    found = []
    for npa in range(200, 1000):
        number = next((n for n in (phonenumbers.parse(f"+1{npa}{rest}") for rest in ("2345678", "5550123", "2000000"))
                       if phonenumbers.is_valid_number(n) and phonenumbers.region_code_for_number(n) == "US"), None)
        if number is not None and phonenumbers.is_number_geographical(number):
            found.append(number)
    return found


def test_every_us_area_code_has_the_state_the_geocoder_names() -> None:
    """The shipped area-code table says what phonenumbers' geocoder says, and covers every area code."""
    assert len(US_STATES) == 51 and len(set(US_STATES.values())) == 51
    numbers = us_numbers_with_a_state()
    assert len(numbers) > 350
    for number in numbers:
        e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        state = geocoder_state(number)
        assert state is not None and phone_us_state(e164) == f"US-{state}", e164


def test_an_area_code_newer_than_the_table_is_asked_of_the_geocoder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(regions._STATE_OF_AREA_CODE, "786")
    phone_us_state.cache_clear()
    assert phone_us_state("+17865550199") == "US-FL"
    phone_us_state.cache_clear()


def test_choosing_a_channel_does_not_load_the_geocoder() -> None:
    """Its data takes ~100 MB and 0.4 s to load: the area-code table answers instead."""
    code = ("import sys; from channels import Profile, load_policy, recipient_region; "
            "print(recipient_region(Profile('u', phone='+13055550123'), load_policy()), "
            "'phonenumbers.geocoder' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["US-FL", "False"]


def test_a_miami_number_without_a_time_zone_is_in_new_york_time() -> None:
    assert recipient_zone(Profile("u", phone=MIAMI), POLICY).key == "America/New_York"


def test_florida_quiet_hours_start_at_eight_pm() -> None:
    """20:30 local is outside the policy-wide 21:00-08:00 window but inside Florida's 20:00-08:00."""
    at_0800_edt = datetime(2026, 7, 2, 12, 0, tzinfo=UTC)
    assert quiet_until(AT_2030_EDT, NEW_YORK, POLICY, "marketing", "normal", "US-FL") == at_0800_edt
    assert quiet_until(AT_2030_EDT - timedelta(minutes=31), NEW_YORK, POLICY, "marketing", "normal",
                       "US-FL") is None  # 19:59
    assert quiet_until(AT_2030_EDT, NEW_YORK, POLICY, "marketing", "normal", "US-NY") is None
    assert quiet_until(AT_2030_EDT, NEW_YORK, POLICY, "marketing", "normal") is None
    assert quiet_until(AT_2030_EDT, NEW_YORK, POLICY, "transactional", "normal", "US-FL") is None


def texts(*spec: tuple[str, float], now: datetime) -> list[SentRecord]:
    return [SentRecord(channel, "marketing", now - timedelta(hours=hours)) for channel, hours in spec]


def test_florida_caps_texts_over_sms_mms_and_rcs_together() -> None:
    now = datetime(2026, 7, 1, 16, 0, tzinfo=UTC)
    three = texts(("sms", 1), ("mms", 2), ("rcs", 3), now=now)
    assert cap_reached(three, "sms", "marketing", now, POLICY, region="US-FL")
    assert cap_reached(three, "mms", "marketing", now, POLICY, region="US-FL")
    assert not cap_reached(three, "push", "marketing", now, POLICY, region="US-FL")
    assert not cap_reached(three, "sms", "marketing", now, POLICY, region="US-NY")  # 1 sms: per channel
    assert not cap_reached(three, "sms", "transactional", now, POLICY, region="US-FL")
    aged = texts(("sms", 1), ("mms", 2), ("rcs", 24), now=now)  # rolling 24 h: exactly 24 h ago is out
    assert not cap_reached(aged, "sms", "marketing", now, POLICY, region="US-FL")


def test_a_miami_recipient_gets_florida_rules_in_select() -> None:
    def request(phone: str, now: datetime, sent: list[SentRecord]) -> SendRequest:
        consents = (ConsentRecord("sms", "marketing", True, "test", now - timedelta(days=30)),)
        profile = Profile("u", phone=phone, consents=consents)
        return SendRequest(profile=profile, category="marketing", urgency="normal", candidates=("sms",),
                           contents={"sms": {"text": "Sale!"}}, template_errors={}, sent=sent, now=now,
                           strategy="first")

    deferred = select(request(MIAMI, AT_2030_EDT, []), POLICY)
    assert deferred.defer_until == datetime(2026, 7, 2, 12, 0, tzinfo=UTC)
    assert select(request(MANHATTAN, AT_2030_EDT, []), POLICY).defer_until is None
    noon = datetime(2026, 7, 1, 16, 0, tzinfo=UTC)
    three = texts(("sms", 1), ("mms", 2), ("sms", 3), now=noon)
    assert [d.reason for d in select(request(MIAMI, noon, three), POLICY).decisions] == ["frequency_cap"]
    assert [d.reason for d in select(request(MANHATTAN, noon, three), POLICY).decisions] == [None]


def test_a_subdivision_adds_to_its_country_and_leaves_out_keys_keep_the_policy_wide_values(tmp_path: Path) -> None:
    policy = load_policy(write(tmp_path, (
        "regions:\n"
        "  US:\n    caps: [{category: marketing, per_week: 20}]\n"
        "  US-TX:\n    quiet_hours: {start: '21:00', end: '09:00'}\n"
        "  FR:\n    quiet_hours: {start: '20:00'}\n")))
    fast = policy.fast
    texas, us, france = fast.rules_for("US-TX"), fast.rules_for("US-CA"), fast.rules_for("FR")
    assert (texas.quiet_start, texas.quiet_end) == (21 * 60, 9 * 60)
    assert texas.caps["marketing"] == us.caps["marketing"] and len(us.caps["marketing"]) == 2
    assert us.quiet_end == fast.rules.quiet_end
    assert (france.quiet_start, france.quiet_end, france.quiet_categories) == (
        20 * 60, 8 * 60, frozenset({"marketing"}))
    assert fast.rules_for("CA") == fast.rules  # Canada: no rules of its own
    florida = fast.rules_for("US-FL")  # the shipped Florida rules, now on top of the US caps
    assert len(florida.caps["marketing"]) == 3 and florida.quiet_start == 20 * 60
