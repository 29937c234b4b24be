"""Tracked links: what is rewritten in each channel's content (and what never is), the codes, the
open pixel, the policy's `links` key, and which User-Agents are machines."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from channels import PolicyError, load_policy
from channels.agents import is_machine
from channels.links import ALPHABET, Tracker, new_code, seeded_codes
from channels.policy import LinksPolicy
from channels.rcs import rcs_message, rcs_problems

BASE = "https://go.example.com"
SHORT = re.compile(r"https://go\.example\.com/l/([A-Za-z0-9]{10})")


def tracker(**settings: Any) -> Tracker:
    return Tracker(LinksPolicy(base_url=BASE, **settings), seeded_codes(7))


def codes_in(text: str) -> list[str]:
    return SHORT.findall(text)


def test_links_in_sms_text_become_short_and_the_punctuation_around_them_stays() -> None:
    text = ("Your cart: https://shop.example.com/cart?id=42&utm=sms. Help (https://shop.example.com/help) "
            "or https://en.wikipedia.org/wiki/Cart_(disambiguation)!")
    tracked = tracker().track({"sms": {"text": text}})
    out = tracked.contents["sms"]["text"]
    assert re.fullmatch(r"Your cart: \S+/l/\w{10}\. Help \(\S+/l/\w{10}\) or \S+/l/\w{10}!", out), out
    urls = {link.url for link in tracked.links.values()}
    assert urls == {"https://shop.example.com/cart?id=42&utm=sms", "https://shop.example.com/help",
                    "https://en.wikipedia.org/wiki/Cart_(disambiguation)"}
    assert len(out) < len(text)


def test_one_code_per_link_of_a_content_and_codes_apart_between_channels() -> None:
    url = "https://shop.example.com/cart"
    tracked = tracker().track({"sms": {"text": f"{url} and again {url}"}, "mms": {"text": url}})
    sms, mms = codes_in(tracked.contents["sms"]["text"]), codes_in(tracked.contents["mms"]["text"])
    assert len(sms) == 2 and sms[0] == sms[1] and mms[0] != sms[0]
    assert len(tracked.links) == 2


def test_what_is_never_rewritten() -> None:
    """Media the phone fetches, titles and subjects, links to the tracker itself, anything not http(s),
    and channels the policy does not track (push, or any left out of `channels`)."""
    contents = {
        "mms": {"text": "see", "media_url": "https://cdn.example.com/a.png"},
        "email": {"subject": "https://shop.example.com in the subject", "body": f"mailto:a@b.c {BASE}/l/Kept000001",
                  "html": '<a href="mailto:help@example.com">mail</a> <a href="#top">top</a>'},
        "push": {"title": "Hi", "body": "https://shop.example.com/cart"},
        "sms": {"text": "https://shop.example.com/cart"},
    }
    tracked = tracker(channels=("email", "mms")).track(contents)
    assert tracked.contents == contents and tracked.links == {}


def test_rcs_chips_and_card_text_are_rewritten_its_media_is_not() -> None:
    rcs = {"text": "New in: https://shop.example.com/new",
           "card": {"title": "Sale", "description": "See https://shop.example.com/sale",
                    "media_url": "https://cdn.example.com/sale.png"},
           "suggestions": [{"open_url": "https://shop.example.com/buy", "text": "Buy"}, {"reply": "Stop"}]}
    out = tracker().track({"rcs": rcs}).contents["rcs"]
    assert len(codes_in(out["text"])) == 1 and len(codes_in(out["card"]["description"])) == 1
    assert SHORT.fullmatch(out["suggestions"][0]["open_url"]) and out["suggestions"][1] == {"reply": "Stop"}
    assert out["card"]["media_url"] == "https://cdn.example.com/sale.png" and out["card"]["title"] == "Sale"


def test_rcs_cards_carousels_and_chips_rewrite_the_links_a_tap_follows_and_nothing_a_person_reads_as_a_label(
        ) -> None:
    """Open-URL chips (the message's and each card's) lead through the tracker, and a chip that
    showed its URL still shows it; a card's description is text. Titles, chip labels, replies,
    postbacks, numbers, calendar events, places and media stay as written, and the result is
    still within RBM's limits as providers read it."""
    chips = [{"open_url": "https://shop.example.com/buy", "text": "https://shop.example.com"},
             {"open_url": "https://a.example/x"},  # no text: its label was the URL
             {"reply": "https://a.example/no", "postback": "https://shop.example.com/pb"},
             {"dial": "+14155550100", "text": "Call"},
             {"calendar_event": {"title": "Sale", "start": "2026-05-01T18:00:00Z", "end": "2026-05-01T19:00:00Z",
                                 "description": "https://shop.example.com/sale"}, "text": "Add"},
             {"view_location": {"query": "https://maps.example.com/?q=shop", "label": "Shop"}, "text": "Map"}]
    card = {"title": "https://shop.example.com/title", "description": "Details: https://shop.example.com/d",
            "media": {"url": "https://cdn.example.com/c.jpg", "thumbnail_url": "https://cdn.example.com/t.jpg"},
            "suggestions": [{"open_url": "https://shop.example.com/card", "text": "Open"}]}
    rcs = {"text": "Pick one", "carousel": {"cards": [card, {**card, "media": {"url": "https://cdn.example.com/2.jpg"}}]},
           "suggestions": chips}
    tracked = tracker().track({"rcs": rcs})
    out = tracked.contents["rcs"]
    message = rcs_message(out)
    taps = [chip.url for chip in message.chips() if chip.kind == "open_url"]
    assert len(taps) == 4 and all(SHORT.fullmatch(url or "") for url in taps)
    assert [chip.text for chip in message.chips() if chip.kind == "open_url"] == [
        "https://shop.example.com", "https://a.example/x", "Open", "Open"]
    assert out["suggestions"][2:] == chips[2:]
    for n, shown in enumerate(out["carousel"]["cards"]):
        assert len(codes_in(shown["description"])) == 1
        assert {k: v for k, v in shown.items() if k not in ("description", "suggestions")} == {
            k: v for k, v in rcs["carousel"]["cards"][n].items() if k not in ("description", "suggestions")}
    assert {link.url for link in tracked.links.values()} == {
        "https://shop.example.com/buy", "https://a.example/x", "https://shop.example.com/card",
        "https://shop.example.com/d"}
    assert rcs_problems(out) == []


def test_email_hrefs_are_rewritten_unescaped_and_the_pixel_goes_before_the_end_of_the_body() -> None:
    html = ("<html><body><a class=x href=\"https://shop.example.com/cart?a=1&amp;b=2\">cart</a>"
            "<A HREF='https://shop.example.com/help'>help</A><img src=\"https://cdn.example.com/logo.png\"></body></html>")
    tracked = tracker(open_pixel=True).track({"email": {"subject": "Hi", "body": "Cart: https://shop.example.com/x",
                                                        "html": html}})
    out = tracked.contents["email"]["html"]
    assert 'src="https://cdn.example.com/logo.png"' in out  # an image is no link
    assert sorted(str(link.url) for link in tracked.links.values() if link.url) == [
        "https://shop.example.com/cart?a=1&b=2", "https://shop.example.com/help", "https://shop.example.com/x"]
    pixel = [short for short, link in tracked.links.items() if link.url is None]
    assert len(pixel) == 1 and pixel[0].startswith(f"{BASE}/o/")
    assert out.endswith(f'<img src="{pixel[0]}" width="1" height="1" alt="" '
                        'style="border:0;width:1px;height:1px"></body></html>')


def test_no_pixel_unless_the_policy_asks_and_the_email_has_html() -> None:
    email = {"subject": "Hi", "body": "plain", "html": "<p>hi</p>"}
    assert tracker().track({"email": email}).links == {}
    assert tracker(open_pixel=True).track({"email": {"subject": "Hi", "body": "plain"}}).links == {}
    assert tracker(open_pixel=True).track({"email": email}).contents["email"]["html"].startswith("<p>hi</p><img ")


def test_a_delivery_carries_the_links_its_content_holds() -> None:
    """An SMS made from the RCS text (the fallback) holds the RCS's codes."""
    tracked = tracker().track({"rcs": {"text": "https://shop.example.com/a"}, "mms": {"text": "https://x.example/b"}})
    fallback = {"text": tracked.contents["rcs"]["text"]}
    assert [link.url for link in tracked.links_in(fallback)] == ["https://shop.example.com/a"]


def test_codes_are_random_letters_and_digits_of_the_length_asked() -> None:
    made = {new_code(10) for _ in range(2000)}
    assert len(made) == 2000 and all(len(c) == 10 and set(c) <= set(ALPHABET) for c in made)
    assert len(new_code(8)) == 8 and len(ALPHABET) == 62
    first, again = seeded_codes(3), seeded_codes(3)  # a dry run: the same codes every time, as long
    made = [first(12) for _ in range(3)]
    assert made == [again(12) for _ in range(3)] and len(set(made)) == 3 and all(len(c) == 12 for c in made)


def test_the_policy_key_and_its_errors(tmp_path: Path) -> None:
    assert load_policy().links == LinksPolicy()  # off by default: no base_url, no pixel
    path = tmp_path / "policy.yaml"
    path.write_text("links: {base_url: 'https://go.example.com/', code_length: 12, open_pixel: true}\n")
    links = load_policy(path).links
    assert (links.base_url, links.code_length, links.open_pixel) == ("https://go.example.com", 12, True)
    path.write_text("links:\n  base_url: go.example.com\n  code_length: 6\n")
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    assert f"{path}:2:" in str(caught.value) and "is not a public base URL" in str(caught.value)
    assert f"{path}:3:" in str(caught.value) and "greater than or equal to 8" in str(caught.value)


@pytest.mark.parametrize(("agent", "machine"), [
    (None, True), ("", True), ("Mozilla/5.0", True),  # Apple Mail Privacy Protection's proxy
    ("Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)", True),
    ("YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html", True),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_1) AppleWebKit/601.2.4 (KHTML, like Gecko) Version/9.0.1 "
     "Safari/601.2.4 facebookexternalhit/1.1 Facebot Twitterbot/1.0", True),  # an iMessage link preview
    ("WhatsApp/2.23.20.0 A", True), ("Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", True),
    ("python-httpx/0.28.1", True), ("curl/8.5.0", True),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/17.4 Mobile/15E148 Safari/604.1", False),  # a person's tap in Safari
    ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 "
     "Mobile Safari/537.36", False),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)", False),  # Apple Mail
])
def test_machines_are_known_by_their_user_agent(agent: str | None, machine: bool) -> None:
    assert is_machine(agent) is machine
