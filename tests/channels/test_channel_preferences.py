"""Preferences in the channel choice: a channel turned off for a category, or a journey turned off
where it may be, is `preference_off`; consent is decided first and stays the legal record."""

from __future__ import annotations

from dataclasses import replace

import pytest

from channels import Profile, SendRequest, select
from channels.preferences import Preferences, PreferencesError
from tests.channels.test_channel_selection import CONTENTS, FULL, NOW, POLICY, grants


def _reasons(profile: Profile, category: str = "marketing", muted: bool = False) -> dict[str, str | None]:
    request = SendRequest(profile=profile, category=category, urgency="normal", candidates=("sms", "email", "push"),
                          contents=CONTENTS, template_errors={}, sent=(), now=NOW, strategy="all", muted=muted)
    return {d.channel: d.reason for d in select(request, POLICY).decisions}


OFF = Preferences.from_dict({"categories": {"marketing": {"sms": False, "email": True}}})


def test_a_channel_off_for_a_category_is_preference_off_for_that_category_only() -> None:
    person = replace(FULL, preferences=OFF)
    assert _reasons(person) == {"sms": "preference_off", "email": None, "push": None}
    assert _reasons(person, "transactional") == {"sms": None, "email": None, "push": None}


def test_consent_is_decided_first() -> None:
    withdrawn = replace(FULL, preferences=OFF, consents=FULL.consents + grants("sms", granted=False))
    assert _reasons(withdrawn)["sms"] == "opted_out"


def test_a_muted_journey_is_preference_off_on_every_channel() -> None:
    assert set(_reasons(FULL, muted=True).values()) == {"preference_off"}


def test_a_profile_document_round_trips_its_preferences() -> None:
    doc = {**{k: v for k, v in FULL.to_dict().items() if k != "consents"}, "preferences": OFF.to_dict()}
    assert Profile.from_dict(doc).preferences == OFF
    assert "preferences" not in Profile("u2").to_dict()


@pytest.mark.parametrize(("doc", "message"), [
    ({"categories": {"marketing": {"fax": False}}}, "categories.marketing.fax: unknown channel"),
    ({"categories": {"marketing": {"sms": "no"}}}, "categories.marketing.sms: expected true or false"),
    ({"journeys": {"win-back": 0}}, "journeys.win-back: expected true or false"),
    ({"channels": {}}, "preferences.channels: unknown member"),
])
def test_a_bad_document_names_the_member(doc: object, message: str) -> None:
    with pytest.raises(PreferencesError, match=message):
        Preferences.from_dict(doc)
