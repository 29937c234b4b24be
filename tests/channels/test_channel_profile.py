"""Profiles at the JSON edge: the docs/formats.md shape in and out, errors naming the field."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from channels import ConsentRecord, Profile, ProfileError
from channels.profile import format_timestamp

DOC: dict[str, Any] = {
    "user_id": "u1",
    "timezone": "Europe/Berlin",
    "locale": "de-DE",
    "email": "u1@example.com",
    "phone": "+4930123456",
    "push_token": "tok",
    "rcs_capable": True,
    "attributes": {"tier": "gold"},
    "consents": [
        {
            "channel": "sms",
            "category": "marketing",
            "granted": True,
            "source": "web_form",
            "at": "2026-01-05T10:00:00Z",
        }
    ],
    "rcs_capability": {"capable": True, "checked_at": "2026-01-05T09:00:00Z", "source": "rbm"},
    "engagement": {
        "push": {"sent": 20, "delivered": 19, "failed": 1, "engaged": 18, "last_engaged_at": "2026-01-04T19:10:00Z",
                 "by_hour": {"8": 2, "19": 16},
                 "recent": {"sent": 14.5, "engaged": 13.25, "as_of": "2026-01-04T19:10:00Z"}},
    },
}


def test_round_trip_keeps_the_spec_shape() -> None:
    assert Profile.from_dict(DOC).to_dict() == DOC
    assumed = {k: v for k, v in DOC.items() if k != "rcs_capability"}
    assert Profile.from_dict(assumed).to_dict() == {**assumed, "rcs_capability": None}


def test_a_providers_answer_is_what_the_profile_believes() -> None:
    """`rcs_capability` is the cached answer of a capability check: `rcs_capable` follows it."""
    doc = {**DOC, "rcs_capable": True, "rcs_capability": {"capable": False, "checked_at": "2026-01-05T09:00:00+01:00",
                                                          "source": "rbm"}}
    profile = Profile.from_dict(doc)
    assert profile.rcs_capable is False
    assert profile.to_dict()["rcs_capability"] == {"capable": False, "checked_at": "2026-01-05T08:00:00Z",
                                                   "source": "rbm"}
    with pytest.raises(ProfileError, match="rcs_capability.checked_at: .* has no time zone offset"):
        Profile.from_dict({**doc, "rcs_capability": {"capable": False, "checked_at": "2026-01-05T09:00",
                                                     "source": "x"}})


def test_consent_timestamps_are_aware_utc() -> None:
    record = Profile.from_dict(DOC).consents[0]
    assert record == ConsentRecord("sms", "marketing", True, "web_form", datetime(2026, 1, 5, 10, tzinfo=UTC))


def test_offsets_are_normalised_to_z() -> None:
    doc = {**DOC, "consents": [{**DOC["consents"][0], "at": "2026-01-05T11:00:00+01:00"}]}
    assert Profile.from_dict(doc).to_dict()["consents"][0]["at"] == "2026-01-05T10:00:00Z"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"phone": "0301234567"}, "phone"),
        ({"phone": "+1 212 555 0123"}, "phone"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"locale": "de_DE"}, "locale"),
        ({"locale": "klingon"}, "locale"),
        ({"locale": 7}, "locale"),
        ({"user_id": ""}, "user_id"),
        ({"rcs_capable": "perhaps"}, "rcs_capable"),
        ({"colour": "blue"}, "colour"),
        ({"consents": [{"channel": "sms", "category": "marketing", "granted": True}]}, "consents[0].at"),
        (
            {"consents": [{"channel": "sms", "category": "marketing", "granted": True, "at": "2026-01-05T10:00:00"}]},
            "consents[0].at",
        ),
    ],
)
def test_bad_input_names_the_field(change: dict[str, object], field: str) -> None:
    with pytest.raises(ProfileError, match=rf"^{re.escape(field)}: |; {re.escape(field)}: "):
        Profile.from_dict({**DOC, **change})


def test_with_consents_appends_and_keeps_history() -> None:
    profile = Profile.from_dict(DOC)
    revoke = ConsentRecord("sms", "marketing", False, "support", datetime(2026, 2, 1, tzinfo=UTC))
    updated = profile.with_consents([revoke])
    assert updated.consents == (*profile.consents, revoke)
    assert profile.consents == Profile.from_dict(DOC).consents


def test_minimal_profile_has_defaults() -> None:
    profile = Profile.from_dict({"user_id": "u9"})
    assert (profile.phone, profile.rcs_capable, dict(profile.attributes), profile.consents) == (
        None,
        False,
        {},
        (),
    )


@given(st.lists(st.tuples(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)),
                          st.sampled_from([0, 0, 60, -300, 330])), min_size=1, max_size=20))
def test_timestamps_print_as_utc_with_z_whatever_came_before(stamps: list[tuple[datetime, int]]) -> None:
    """format_timestamp keeps the last result; a sequence with repeats and zone changes still prints
    every instant as itself (equal instants in two zones print alike)."""
    for naive, offset in stamps:
        at = naive.replace(tzinfo=timezone(timedelta(minutes=offset)))
        fraction = f".{at.microsecond:06d}" if at.microsecond else ""
        assert format_timestamp(at) == at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z"


@pytest.mark.parametrize(("written", "hint"), [("de_DE", "did you mean 'de-DE'?"), ("fr-ca", "did you mean 'fr-CA'?"),
                                               ("tlh", "a BCP 47 tag such as")])
def test_a_locale_is_a_tag_cldr_knows_spelt_as_it_spells_it(written: str, hint: str) -> None:
    """The locale picks a message's variant and formats its dates: one that Babel cannot format in is refused,
    with the spelling it would take."""
    with pytest.raises(ProfileError, match=f"^locale: unknown locale '{written}' .*{re.escape(hint)}"):
        Profile.from_dict({**DOC, "locale": written})
    assert Profile.from_dict({**DOC, "locale": "zh-Hant-TW"}).locale == "zh-Hant-TW"
