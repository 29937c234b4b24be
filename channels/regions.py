"""The jurisdiction of a recipient, which picks the policy's `regions:` rules.

A profile's `attributes.region` (ISO 3166-2 `US-FL`, or a country `FR`) wins. Otherwise the
phone number tells: its country, and for a US number its state from the area code, as
phonenumbers' geocoder names it ("Florida", "Miami, FL"). The geocoder's data takes about
100 MB and 0.4 s to load, too much for a send, so its answer for every US area code is kept
below (`_AREA_CODES`, checked against the geocoder by the tests); the geocoder itself is asked
only about an area code newer than that table.
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

_AREA_CODES: dict[str, str] = {  # state -> its geographic area codes, from phonenumbers' geocoder
    "AK": "907",
    "AL": "205 251 256 334 659 938",
    "AR": "327 479 501 870",
    "AZ": "480 520 602 623 928",
    "CA": "209 213 279 310 323 341 350 369 408 415 424 442 510 530 559 562 619 626 628 650 657 661 669 707 714 738 "
          "747 760 805 818 820 831 840 858 909 916 925 949 951",
    "CO": "303 719 720 748 970 983",
    "CT": "203 475 860 959",
    "DC": "202 771",
    "DE": "302",
    "FL": "239 305 321 324 352 386 407 448 561 645 656 689 727 728 754 772 786 813 850 863 904 941 954",
    "GA": "229 404 470 478 678 706 762 770 912 943",
    "HI": "808",
    "IA": "319 515 563 641 712",
    "ID": "208 986",
    "IL": "217 224 309 312 331 447 464 618 630 708 730 773 779 815 847 872",
    "IN": "219 260 317 463 574 765 812 930",
    "KS": "316 620 785 913",
    "KY": "270 364 502 606 859",
    "LA": "225 318 337 504 985",
    "MA": "339 351 413 508 617 774 781 857 978",
    "MD": "227 240 301 410 443 667",
    "ME": "207",
    "MI": "231 248 269 313 517 586 616 734 810 906 947 989",
    "MN": "218 320 507 612 651 763 952",
    "MO": "235 314 417 557 573 636 660 816 975",
    "MS": "228 601 662 769",
    "MT": "406",
    "NC": "252 336 472 704 743 828 910 919 980 984",
    "ND": "701",
    "NE": "308 402 531",
    "NH": "603",
    "NJ": "201 551 609 640 732 848 856 862 908 973",
    "NM": "505 575",
    "NV": "702 725 775",
    "NY": "212 315 329 332 347 363 516 518 585 607 631 646 680 716 718 838 845 914 917 929 934",
    "OH": "216 220 234 283 326 330 380 419 440 513 567 614 740 937",
    "OK": "405 539 572 580 918",
    "OR": "458 503 541 971",
    "PA": "215 223 267 272 412 445 484 570 582 610 717 724 814 835 878",
    "RI": "401",
    "SC": "803 821 839 843 854 864",
    "SD": "605",
    "TN": "423 615 629 731 865 901 931",
    "TX": "210 214 254 281 325 346 361 409 430 432 469 512 682 713 726 737 806 817 830 832 903 915 936 940 945 956 "
          "972 979",
    "UT": "385 435 801",
    "VA": "276 434 540 571 686 703 757 804 826 948",
    "VT": "802",
    "WA": "206 253 360 425 509 564",
    "WI": "262 274 353 414 534 608 715 920",
    "WV": "304 681",
    "WY": "307",
}
_STATE_OF_AREA_CODE = {npa: state for state, npas in _AREA_CODES.items() for npa in npas.split()}


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
    if _us_area_state(phone):
        return "US"
    number = _parse(phone)
    region = phonenumbers.region_code_for_number(number) if number is not None else None
    return region if region and REGION_CODE.match(region) else None  # not "001" (non-geographic)


@lru_cache(maxsize=65536)
def phone_us_state(phone: str) -> str | None:
    """`US-FL` for a Florida number, from its area code; None for a number of no state (toll-free)."""
    if state := _us_area_state(phone):
        return f"US-{state}"
    number = _parse(phone)
    if number is None or number.country_code != 1 or not phonenumbers.is_number_geographical(number):
        return None
    state = _STATE_OF_AREA_CODE.get(str(number.national_number)[:3]) or geocoder_state(number)
    return f"US-{state}" if state else None


def geocoder_state(number: phonenumbers.PhoneNumber) -> str | None:
    """The state code phonenumbers' geocoder names for a US number (it loads its data on first use)."""
    from phonenumbers import geocoder

    place = geocoder.description_for_number(number, "en")
    code = _GEOCODER_NAMES.get(place) or US_STATES.get(place)
    if code is None and ", " in place:  # "Miami, FL"
        code = place.rsplit(", ", 1)[1]
    return code if code in _STATE_CODES else None


def _us_area_state(phone: str) -> str | None:
    """The state of a `+1` number whose area code is a US one: the send path's common case, read
    off the string without parsing the number (a parse costs more than the rest of a send)."""
    return _STATE_OF_AREA_CODE.get(phone[2:5]) if len(phone) == 12 and phone.startswith("+1") else None


def _parse(phone: str) -> phonenumbers.PhoneNumber | None:
    try:
        return phonenumbers.parse(phone, None)
    except phonenumbers.NumberParseException:
        return None
