"""The policy: shipped defaults, user files merged key by key, file:line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from channels import PolicyError, load_policy
from channels.policy import QuietHours


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_default_policy_matches_the_spec() -> None:
    policy = load_policy()
    assert policy.default_timezone == "UTC"
    assert (policy.quiet_hours.start, policy.quiet_hours.end) == ("21:00", "08:00")
    assert policy.quiet_hours.categories == ("marketing",)
    assert (policy.frequency_caps["marketing"].per_day, policy.frequency_caps["marketing"].per_week) == (3, 10)
    assert policy.sms.max_segments == 6
    assert policy.cost("sms") == 0.0083
    assert policy.cost("mms") == 0.022
    assert policy.engagement_events("email") == frozenset({"email.opened", "email.clicked"})
    assert policy.engagement_events("webhook") == frozenset()


def test_default_keyword_texts_explain_the_way_back() -> None:
    english = load_policy().keywords["en"].replies
    assert "START" in english.stop_confirmation
    assert "STOP" in english.help


def test_user_file_is_merged_key_by_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "quiet_hours: {end: '09:00'}\n"
        "channels:\n  sms: {cost: 0.01}\n"
        "keywords: {help: 'Acme alerts. Reply STOP to stop.'}\n",
    )
    policy = load_policy(path)
    assert (policy.quiet_hours.start, policy.quiet_hours.end) == ("21:00", "09:00")
    assert policy.cost("sms") == 0.01
    assert policy.engagement_events("sms") == frozenset({"sms.clicked"})
    assert policy.cost("mms") == 0.022
    assert policy.keywords["en"].replies.help == "Acme alerts. Reply STOP to stop."
    assert policy.keywords["en"].replies.stop_confirmation == load_policy().keywords["en"].replies.stop_confirmation


def test_lists_replace_rather_than_append(tmp_path: Path) -> None:
    policy = load_policy(write(tmp_path, "quiet_hours: {categories: [transactional]}\n"))
    assert policy.quiet_hours.categories == ("transactional",)


def test_unquoted_clock_times_are_times_of_day(tmp_path: Path) -> None:
    """YAML 1.1 reads `22:00` as the sexagesimal 1320; the author means ten at night."""
    policy = load_policy(write(tmp_path, "quiet_hours:\n  start: 22:00\n  end: 07:00\n"))
    assert (policy.quiet_hours.start, policy.quiet_hours.end) == ("22:00", "07:00")
    assert (policy.fast.quiet_start, policy.fast.quiet_end) == (22 * 60, 7 * 60)


def test_empty_file_is_the_default(tmp_path: Path) -> None:
    assert load_policy(write(tmp_path, "# nothing\n")) == load_policy()


def test_string_path_is_accepted(tmp_path: Path) -> None:
    assert load_policy(str(write(tmp_path, "sms: {max_segments: 3}\n"))).sms.max_segments == 3


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("sms: {max_segments: 0}\n", ":1: sms.max_segments: Input should be greater than or equal to 1"),
        ("quiet_hours:\n  start: '25:00'\n", ":2: quiet_hours.start: '25:00' is not a time of day"),
        ("smss: {max_segments: 2}\n", ":1: unknown key 'smss'; did you mean 'sms'?"),
        (
            "channels:\n  push: {cost: 0}\n  emial: {cost: 1}\n",
            ":3: unknown key 'emial' in channels; did you mean 'email'?",
        ),
        (
            "frequency_caps:\n  marketing:\n    per_dya: 2\n",
            ":3: unknown key 'per_dya' in frequency_caps.marketing; did you mean 'per_day'?",
        ),
        ("default_timezone: Mars/Base\n", ":1: default_timezone: unknown IANA time zone 'Mars/Base'"),
        ("sms: {max_segments: 2}\nsms: {max_segments: 3}\n", ":2: duplicate key 'sms' (first at line 1)"),
        ("channels: [push\n", ":1: invalid YAML"),  # the line of the unclosed '['; the file ends after it
        ("- just\n- a list\n", ":1: expected a mapping of keys"),
        ("channels:\n  sms: {cost: cheap}\n", ":2: channels.sms.cost: Input should be a valid number"),
        ("keywords:\n  fr: {start: [ARRÊT]}\n", ":2: keywords.fr: 'ARRÊT' is both a stop and a start word"),
        ("keywords:\n  fr: {help: ['  ']}\n", ":2: keywords.fr: help: an empty keyword never matches"),
        ("keywords:\n  French: {stop: [ARRET], replies: {stop_confirmation: a, start_confirmation: b, help: c}}\n",
         ":1: keywords: 'French' is not a language code"),
        ("regions:\n  Florida: {}\n", ":1: regions: 'Florida' is not a region code"),
        ("regions:\n  US-TX:\n    quiet_hours: {start: '8pm'}\n",
         ":3: regions.US-TX.quiet_hours.start: '8pm' is not a time of day"),
        ("regions:\n  US-TX:\n    caps: [{category: marketing, channels: [fax], per_day: 1}]\n",
         ":3: regions.US-TX.caps.0.channels.0: Input should be"),
        ("regions:\n  US-TX:\n    caps: [{category: marketing, per_day: 1, window: weekly}]\n",
         ":3: regions.US-TX.caps.0.window: Input should be 'rolling' or 'calendar_day'"),
        ("frequency_caps:\n  marketing: {per_day: 1, window: daily}\n",
         ":2: frequency_caps.marketing.window: Input should be 'rolling' or 'calendar_day'"),
    ],
)
def test_bad_files_get_file_line_messages(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    assert str(info.value).startswith(f"{path}{expected}")


def test_every_problem_is_reported_in_line_order(tmp_path: Path) -> None:
    path = write(tmp_path, "sms: {max_segments: 0}\nquiet_hours: {start: 'x'}\nfoo: 1\n")
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    lines = str(info.value).splitlines()
    assert [line.split(":")[1] for line in lines] == ["1", "2", "3"]
    assert all(line.startswith(f"{path}:") for line in lines)


def test_missing_file_is_a_policy_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=r"nope\.yaml:1: cannot read policy file"):
        load_policy(tmp_path / "nope.yaml")


def test_unknown_channel_price_is_a_lookup_error() -> None:
    with pytest.raises(LookupError, match="fax"):
        load_policy().cost("fax")


def test_model_copy_rebuilds_derived_lookups() -> None:
    policy = load_policy()
    assert policy.fast.quiet_start == 21 * 60
    copy = policy.model_copy(update={"quiet_hours": QuietHours(start="12:00", end="14:00")})
    assert copy.fast.quiet_start == 12 * 60


def test_keywords_ship_in_english_french_and_spanish() -> None:
    keywords = load_policy().keywords
    assert list(keywords) == ["en", "fr", "es"]
    assert keywords["en"].stop == ("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPT OUT",
                                   "OPTOUT")
    assert (keywords["en"].start, keywords["en"].help) == (("START", "UNSTOP"), ("HELP",))
    assert "ARRET" in keywords["fr"].stop and "AIDE" in keywords["fr"].help
    assert "ALTO" in keywords["es"].stop and "AYUDA" in keywords["es"].help


def test_a_language_added_by_a_user_file_comes_after_the_shipped_ones(tmp_path: Path) -> None:
    """STOP is English (listed first) even when the new language lists it too."""
    policy = load_policy(write(tmp_path, (
        "keywords:\n  de:\n    stop: [STOP, HALT]\n"
        "    replies: {stop_confirmation: Abgemeldet., start_confirmation: Angemeldet., help: Hilfe.}\n")))
    assert list(policy.keywords) == ["en", "fr", "es", "de"]
    assert policy.fast.keywords["stop"] == ("stop", "en")
    assert policy.fast.keywords["halt"] == ("stop", "de")


def test_a_user_file_replaces_a_language_list(tmp_path: Path) -> None:
    policy = load_policy(write(tmp_path, "keywords:\n  es: {stop: [PARAR]}\n"))
    assert policy.keywords["es"].stop == ("PARAR",)
    assert policy.keywords["es"].replies == load_policy().keywords["es"].replies
    assert "alto" not in policy.fast.keywords and policy.fast.keywords["parar"] == ("stop", "es")


def test_a_send_rate_is_per_channel_and_unset_by_default(tmp_path: Path) -> None:
    assert all(channel.rate_per_second is None for channel in load_policy().channels.values())
    policy = load_policy(write(tmp_path, "channels:\n  sms: {rate_per_second: 50}\n  email: {rate_per_second: 0.5}\n"
                                         "  push: {rate_per_second: null}\n"))
    assert (policy.channels["sms"].rate_per_second, policy.channels["email"].rate_per_second) == (50, 0.5)
    assert policy.cost("sms") == 0.0083 and policy.channels["push"].rate_per_second is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0", "Input should be greater than 0"),
        ("-75", "Input should be greater than 0"),
        ("fast", "Input should be a valid number"),
        ("'many'", "Input should be a valid number"),
        ("true", "expected a number of messages a second, not true"),
        (".inf", "Input should be a finite number"),
        ("[50]", "Input should be a valid number"),
    ],
)
def test_a_send_rate_must_be_a_positive_number(tmp_path: Path, value: str, expected: str) -> None:
    path = write(tmp_path, f"channels:\n  sms:\n    rate_per_second: {value}\n")
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    assert str(info.value).startswith(f"{path}:3: channels.sms.rate_per_second: {expected}")
