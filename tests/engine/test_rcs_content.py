"""RCS content as docs/journeys.md describes it: a text, a card or a carousel of 2-10 cards, and chips,
within the limits of Google's RBM API, checked by `journey validate` with the line of the field at fault;
a template is measured once rendered. MMS media: one URL or a list, their size checked when known."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator
from typer.testing import CliRunner

from channels import load_policy
from channels.mms import data_url_size, mms_problems
from engine.cli import app
from engine.compiler import load_text
from engine.simulator import parse_events, parse_profiles, simulate

ROOT = Path(__file__).resolve().parent.parent.parent
runner = CliRunner()

HEAD = """\
id: party
category: transactional
trigger: {event: invited}
steps:
  - {id: invite, type: send, message: invite, channels: [rcs, sms], strategy: first}
messages:
  invite:
    sms: {text: "You're invited. Reply YES or NO."}
    rcs:
"""


def _card(n: int, height: str = "medium") -> str:
    return (f"          - title: \"Option {n}\"\n"
            f"            description: \"{{{{ event.properties.venue }}}}, table {n}\"\n"
            f"            media: {{url: \"https://cdn.example.com/{n}.jpg\", height: {height}}}\n"
            f"            suggestions: [{{reply: \"Table {n}\", postback: \"table_{n}\"}}]\n")


def _journey(cards: int = 3, chip: str = "Yes", height: str = "medium") -> str:
    return (HEAD + "      text: \"Pick a table, {{ profile.attributes.first_name }}\"\n"
            "      carousel:\n        width: small\n        cards:\n"
            + "".join(_card(n, height) for n in range(1, cards + 1))
            + "      suggestions:\n"
            f"        - {{reply: \"{chip}\", postback: rsvp_yes}}\n"
            "        - {reply: \"No\", postback: rsvp_no}\n"
            "        - {dial: \"+14155550100\", text: \"Call the store\"}\n")


def _validate(tmp_path: Path, text: str) -> Any:
    path = tmp_path / "party.yaml"
    path.write_text(text, encoding="utf-8")
    return runner.invoke(app, ["validate", str(path)])


def _line_of(text: str, needle: str, nth: int = 1) -> int:
    lines = [n for n, line in enumerate(text.splitlines(), 1) if needle in line]
    return lines[nth - 1]


def test_a_carousel_of_three_cards_with_reply_and_dial_chips_is_valid(tmp_path: Path) -> None:
    result = _validate(tmp_path, _journey())
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith("ok (party, 1 step)")
    schema = json.loads((ROOT / "schema" / "journey.schema.json").read_text(encoding="utf-8"))
    assert list(Draft202012Validator(schema).iter_errors(yaml.safe_load(_journey()))) == []


def test_a_carousel_of_eleven_cards_is_refused_at_its_line(tmp_path: Path) -> None:
    text = _journey(cards=11)
    result = _validate(tmp_path, text)
    assert result.exit_code == 1
    assert result.output.strip() == (f"{tmp_path}/party.yaml:{_line_of(text, 'cards:')}: message 'invite': "
                                      "rcs.carousel.cards: a carousel holds 2 to 10 cards (RBM), this one 11")
    schema = json.loads((ROOT / "schema" / "journey.schema.json").read_text(encoding="utf-8"))
    assert list(Draft202012Validator(schema).iter_errors(yaml.safe_load(text)))  # editors see it too


def test_a_chip_text_over_25_characters_is_refused_at_its_line(tmp_path: Path) -> None:
    chip = "Yes, count me in for sure!"  # 26 characters
    text = _journey(chip=chip)
    result = _validate(tmp_path, text)
    assert result.exit_code == 1
    assert result.output.strip() == (
        f"{tmp_path}/party.yaml:{_line_of(text, chip)}: message 'invite': rcs.suggestions[0].reply: a chip's text "
        f"holds at most 25 characters (RBM), {chip!r} has 26")


@pytest.mark.parametrize(("field", "value", "message"), [
    ("title", "T" * 201, "rcs.card.title: a card title holds at most 200 characters (RBM), this one 201"),
    ("description", "D" * 2001,
     "rcs.card.description: a card description holds at most 2000 characters (RBM), this one 2001"),
])
def test_card_text_limits_name_the_field(tmp_path: Path, field: str, value: str, message: str) -> None:
    text = HEAD + f"      card:\n        {field}: \"{value}\"\n"
    result = _validate(tmp_path, text)
    assert result.exit_code == 1
    assert result.output.strip() == f"{tmp_path}/party.yaml:{_line_of(text, field + ':')}: message 'invite': {message}"


def test_every_rule_of_a_chip_and_a_carousel_is_reported_in_one_run(tmp_path: Path) -> None:
    text = HEAD + """\
      carousel:
        cards:
          - {title: One, orientation: horizontal}
          - {title: Two, media: {url: "https://cdn.example.com/2.jpg", height: tall}}
      suggestions:
        - {dial: "555-0100", text: Call}
        - {calendar_event: {title: Party, start: "2026-05-01T18:00:00Z", end: "2026-05-01 17:00"}, text: Add}
        - {reply: "Yes", postback: "%s"}
        - {open_url: "https://shop.example.com/a/very/long/path"}
        - {share_location: true}
""" % ("p" * 2049)
    result = _validate(tmp_path, text)
    assert result.exit_code == 1
    lines = [line.split(": ", 1)[1] for line in result.output.strip().splitlines()]
    assert lines == [
        "message 'invite': rcs.carousel.cards[0].orientation: carousel cards are vertical (RBM); orientation is for "
        "a standalone card",
        "message 'invite': rcs.carousel.cards[1].media.height: a carousel card's media is short or medium, not tall "
        "(RBM: tall only on a standalone card)",
        "message 'invite': rcs.suggestions[0].dial: a dial chip's number is E.164 (+<country><number>), not "
        "'555-0100'",
        "message 'invite': rcs.suggestions[1].calendar_event.end: '2026-05-01 17:00' has no time zone offset "
        "(add 'Z' for UTC)",
        "message 'invite': rcs.suggestions[2].postback: postback data holds at most 2048 characters (RBM), this "
        "one 2049",
        "message 'invite': rcs.suggestions[3].open_url: a chip's text holds at most 25 characters (RBM), "
        "'https://shop.example.com/a/very/long/path' has 41: give the chip a shorter `text`",
        "message 'invite': rcs.suggestions[4]: a share_location chip needs a text: its label (at most 25 "
        "characters)",
    ]


def test_the_older_form_of_rcs_content_stays_valid(tmp_path: Path) -> None:
    text = HEAD + """\
      text: "Hi"
      card: {title: "Sale", description: "Today only", media_url: "https://cdn.example.com/sale.jpg"}
      suggestions:
        - {reply: "Yes"}
        - {open_url: "https://shop.example.com", text: "View"}
        - {dial: "+14155550100"}
"""
    assert _validate(tmp_path, text).exit_code == 0


def _simulated(text: str, name: str) -> dict[str, Any]:
    journey = load_text(text, "party.yaml")
    events = parse_events([("e", {"type": "invited", "user_id": "u1", "timestamp": "2026-01-05T15:00:00Z",
                                  "properties": {"venue": name}})])
    profiles = parse_profiles([("p", {"user_id": "u1", "phone": "+14155550111", "rcs_capable": True,
                                      "attributes": {"first_name": "Ann"}, "consents": [
                                          {"channel": c, "category": "transactional", "granted": True,
                                           "at": "2026-01-01T00:00:00Z"} for c in ("rcs", "sms")]})],
                              events[0].timestamp)
    return simulate(journey, events, profiles, load_policy())


def test_templates_render_in_every_field_and_a_rendering_over_a_limit_falls_back(tmp_path: Path) -> None:
    text = HEAD + """\
      card:
        title: "{{ event.properties.venue }}"
        suggestions:
          - {reply: "{{ event.properties.venue }}", postback: "venue_{{ event.properties.venue | lower }}"}
"""
    fits = _simulated(text, "Acme")
    [message] = fits["messages"]
    assert message["channel"] == "rcs"
    assert message["content"]["card"] == {"title": "Acme", "suggestions": [{"reply": "Acme", "postback": "venue_acme"}]}
    too_long = _simulated(text, "The Acme Flagship Store on Main")  # 31 characters: fine as a title, not a chip
    [message] = too_long["messages"]
    rcs = next(d for d in message["decisions"] if d["channel"] == "rcs")
    assert message["channel"] == "sms" and rcs["reason"] == "template_error"


MMS = """\
id: promo
category: transactional
trigger: {event: go}
steps:
  - {id: a, type: send, message: promo}
messages:
  promo:
    mms:
      text: Sale
"""


def test_mms_takes_a_list_of_media_and_refuses_more_than_ten_or_over_5_mb(tmp_path: Path) -> None:
    ok = MMS + "      media_url: [\"https://cdn.example.com/a.jpg\", \"https://cdn.example.com/b.jpg\"]\n" \
        "      media_size: 480KB\n"
    assert _validate(tmp_path, ok).exit_code == 0
    eleven = MMS + "      media_url: [" + ", ".join(f"\"https://cdn.example.com/{n}.jpg\"" for n in range(11)) + "]\n"
    result = _validate(tmp_path, eleven)
    assert result.output.strip() == (f"{tmp_path}/party.yaml:10: message 'promo': mms.media_url: an MMS carries at "
                                     "most 10 media (Twilio), this one 11")
    big = MMS + "      media_url: \"https://cdn.example.com/video.mp4\"\n      media_size: 5.5MB\n"
    result = _validate(tmp_path, big)
    assert result.output.strip() == (f"{tmp_path}/party.yaml:11: message 'promo': mms.media_size: the media come "
                                     "to 5.50 MB; Twilio takes at most 5 MB for an MMS")


def test_over_1_mb_is_a_warning_and_a_data_url_is_measured(tmp_path: Path) -> None:
    result = _validate(tmp_path, MMS + "      media_url: \"https://cdn.example.com/a.gif\"\n      media_size: 1.2MB\n")
    assert result.exit_code == 0
    assert result.stderr.strip() == (f"{tmp_path}/party.yaml:11: warning: message 'promo': mms.media_size: the "
                                     "media come to 1.20 MB: AT&T and T-Mobile take 1 MB on long codes, so it may be "
                                     "refused or resized (keep MMS media under 1 MB, 500 KB to be safe)")
    image = "data:image/png;base64," + base64.b64encode(b"\x89PNG" + b"\0" * 600_000).decode()
    two = MMS + f"      media_url: [\"{image}\", \"{image}\"]\n"  # 1.2 MB of media in 1.6 MB of text: too big a file
    assert data_url_size(image) == 600_004
    warnings = mms_problems(yaml.safe_load(two)["messages"]["promo"]["mms"])[1]
    assert [(path, text[:28]) for path, text in warnings] == [(("media_url",), "the media come to 1.20 MB: A")]
