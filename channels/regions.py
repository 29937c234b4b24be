"""The jurisdiction of a recipient, which picks the policy's `regions:` rules.

A profile's `attributes.region` (ISO 3166-2 `US-FL`, or a country `FR`) wins. Otherwise the
phone number tells: its country, and for a US number its state, from the area code, as
phonenumbers' geocoder names it ("Florida", "Miami, FL"). The geocoder's data is large (about
100 MB and 0.4 s to load), so it is only loaded for a policy with rules for a state, and then
with the policy (`load_policy`), not on the first send.
"""

from __future__ import annotations

from functools import lru_cache

import phonenumbers

from channels.policy import REGION_CODE, Policy
from channels.profile import Profile

US_STATES: dict[str, str] = {
    "Alabama": "AL", "Alaska": "AK", "Arizona": "AZ", "Arkansas": "AR", "California": "CA", "Colorado": "CO",
    "Connecticut": "CT", "Delaware": "DE", "District of Columbia": "DC", "Florida": "FL", "Georgia": "GA",
    "Hawaii": "HI", "Idaho": "ID", "Illinois": "IL", "Indiana": "IN", "Iowa": "IA", "Kansas": "KS",
    "Kentucky": "KY", "Louisiana": "LA", "Maine": "ME", "Maryland": "MD", "Massachusetts": "MA",
    "Michigan": "MI", "Minnesota": "MN", "Mississippi": "MS", "Missouri": "MO", "Montana": "MT",
    "Nebraska": "NE", "Nevada": "NV", "New Hampshire": "NH", "New Jersey": "NJ", "New Mexico": "NM",
    "New York": "NY", "North Carolina": "NC", "North Dakota": "ND", "Ohio": "OH", "Oklahoma": "OK",
    "Oregon": "OR", "Pennsylvania": "PA", "Rhode Island": "RI", "South Carolina": "SC", "South Dakota": "SD",
    "Tennessee": "TN", "Texas": "TX", "Utah": "UT", "Vermont": "VT", "Virginia": "VA", "Washington": "WA",
    "West Virginia": "WV", "Wisconsin": "WI", "Wyoming": "WY",
}
"""The 50 states and DC, by name, as ISO 3166-2 subdivision codes (`US-` + the postal code)."""

_GEOCODER_NAMES = {"Washington State": "WA", "Washington D.C.": "DC"}  # how the geocoder spells these two
_STATE_CODES = frozenset(US_STATES.values())


def recipient_region(profile: Profile, policy: Policy) -> str | None:
    """`attributes.region` when it is an ISO 3166 code, else the phone number's country, or its
    US state (`US-FL`) when the policy has rules for a state; None when nothing tells."""
    declared = profile.attributes.get("region")
    if isinstance(declared, str) and REGION_CODE.match(code := declared.strip().upper()):
        return code
    if not profile.phone:
        return None
    country = phone_country(profile.phone)
    if country == "US" and country in policy.fast.subdivided:
        return phone_us_state(profile.phone) or country
    return country


@lru_cache(maxsize=65536)
def phone_country(phone: str) -> str | None:
    """The ISO 3166 country of an E.164 number; None if unknown."""
    number = _parse(phone)
    region = phonenumbers.region_code_for_number(number) if number is not None else None
    return region if region and REGION_CODE.match(region) else None  # not "001" (non-geographic)


@lru_cache(maxsize=65536)
def phone_us_state(phone: str) -> str | None:
    """`US-FL` for a Florida number, from its area code; None when the geocoder names no state."""
    number = _parse(phone)
    if number is None:
        return None
    from phonenumbers import geocoder  # loaded on first use: its data is large

    place = geocoder.description_for_number(number, "en")
    code = _GEOCODER_NAMES.get(place) or US_STATES.get(place)
    if code is None and ", " in place:  # "Miami, FL"
        code = place.rsplit(", ", 1)[1]
    return f"US-{code}" if code in _STATE_CODES else None


def load_geocoder() -> None:
    """Load phonenumbers' geocoder data now rather than on the first send that needs it."""
    from phonenumbers import geocoder  # noqa: F401


def _parse(phone: str) -> phonenumbers.PhoneNumber | None:
    try:
        return phonenumbers.parse(phone, None)
    except phonenumbers.NumberParseException:
        return None
