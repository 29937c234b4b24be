"""Tracked links and open pixels over HTTP, against the real server (uvicorn on loopback): an SMS with
a link goes to a local server speaking Twilio's protocol with the link short (one segment where the
long link made two), the test follows the short link with its own HTTP client (no redirect
followed), and the click reaches the waiting instance and is listed on the message. A code no link
has, or an erased person's, answers 404 and records nothing; the open pixel is there only when the
policy asks, and a mail proxy's open is recorded as a machine's."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from channels import Policy, load_policy, sms_encoding
from channels.providers import FileProvider
from channels.providers.twilio import TwilioProvider
from engine.host.logs import MaskFilter, TextFormatter
from tests.engine.test_link_rewriting import LONG_URL
from tests.providers.provider_fakes import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio
from tests.server.conftest import LocalServer, StartLocal, post_events, put_profile

BASE = "https://go.example.com"
SAFARI = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
          "Version/17.4 Mobile/15E148 Safari/604.1")
APPLE_MAIL = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)"
MPP = "Mozilla/5.0"  # Apple Mail Privacy Protection's proxy
CART = """\
id: cart-links
category: transactional
trigger: {event: cart.abandoned}
steps:
  - {id: nudge, type: send, message: nudge, channels: [sms]}
  - id: tapped
    type: wait_for
    event: sms.clicked
    when: "not event.properties.machine"  # a link preview's fetch is no tap
    timeout: 1d
    on_event: thanks
    on_timeout: done
  - {id: thanks, type: send, message: thanks, channels: [push], next: done}
  - {id: done, type: exit}
messages:
  nudge:
    sms:
      text: >-
        {{ event.properties.name }}, we kept the 3 items of your basket for you until tomorrow night:
        {{ event.properties.url }}
  thanks:
    push: {title: "Welcome back", body: "Your cart is ready"}
"""
RECEIPT = """\
id: receipt
category: transactional
trigger: {event: receipt.ready}
steps:
  - {id: mail, type: send, message: receipt, channels: [email]}
  - id: read
    type: wait_for
    event: email.opened
    when: "not event.properties.machine"
    timeout: 1d
    on_event: done
    on_timeout: done
  - {id: done, type: exit}
messages:
  receipt:
    email:
      subject: "Your order"
      body: "Track it at https://shop.example.com/orders/7"
      html: '<html><body><p>Track it <a href="https://shop.example.com/orders/7">here</a></p></body></html>'
"""


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    fake = FakeTwilio(latency=0.15)  # Twilio answers in 100-300 ms
    fake.start()
    yield fake
    fake.stop()


def links_policy(tmp_path: Path, pixel: bool = False) -> Policy:
    path = tmp_path / "policy.yaml"
    path.write_text(f"links: {{base_url: '{BASE}', code_length: 12, open_pixel: {str(pixel).lower()}}}\n")
    return load_policy(path)


@pytest.fixture
def public(local_links: LocalServer) -> Iterator[httpx.Client]:
    """Whoever taps a link: no API key, redirects not followed."""
    with httpx.Client(base_url=local_links.base_url, follow_redirects=False, timeout=10) as client:
        yield client


@pytest.fixture
def local_links(start_local: StartLocal, journeys_dir: Path, tmp_path: Path, twilio: FakeTwilio,
                request: pytest.FixtureRequest) -> LocalServer:
    (journeys_dir / "cart-links.yaml").write_text(CART, encoding="utf-8")
    (journeys_dir / "receipt.yaml").write_text(RECEIPT, encoding="utf-8")
    sms = TwilioProvider(ACCOUNT_SID, AUTH_TOKEN, "+15005550006", api_base_url=twilio.url, timeout=5)
    db = request.getfixturevalue("any_db") if "any_db" in request.fixturenames else None
    return start_local(db=db, policy=links_policy(tmp_path, pixel="open_pixel" in request.node.name),
                       providers={"sms": [sms], "*": [FileProvider(tmp_path / "outbox.jsonl")]})


def only(local: LocalServer, user_id: str, channel: str) -> dict[str, Any]:
    [message] = [m for m in local.messages(user_id) if m["channel"] == channel]
    return message


def send_cart_sms(local: LocalServer, twilio: FakeTwilio, user_id: str = "ann") -> str:
    """The SMS with the short link, sent through Twilio: returns the link's code."""
    put_profile(local, user_id, "sms:transactional", "push:transactional")
    response = post_events(local, {"type": "cart.abandoned", "user_id": user_id,
                                   "properties": {"name": "Ann", "url": LONG_URL}})
    assert response.status_code == 202, response.text
    local.settle()
    sms = only(local, user_id, "sms")
    assert sms["dispatch"] == "sent"
    [code] = re.findall(rf"{re.escape(BASE)}/l/([A-Za-z0-9]{{12}})", sms["content"]["text"])
    assert any(code in body for body in twilio.bodies)  # what Twilio was handed
    return code


def exported(local: LocalServer, user_id: str) -> dict[str, Any]:
    response = local.client.get(f"/v1/profiles/{user_id}/export")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_a_click_on_an_sms_link_redirects_and_moves_the_waiting_instance_on(
        any_db: str, local_links: LocalServer, public: httpx.Client, twilio: FakeTwilio) -> None:
    local = local_links
    code = send_cart_sms(local, twilio)
    sms = only(local, "ann", "sms")
    assert LONG_URL not in str(twilio.bodies)
    assert sms["segments"] == 1 and sms["cost"] == 0.0083
    assert sms_encoding(sms["content"]["text"].replace(f"{BASE}/l/{code}", LONG_URL)).segments == 2

    tap = public.get(f"/l/{code}", headers={"User-Agent": SAFARI})
    assert (tap.status_code, tap.headers["location"]) == (302, LONG_URL)
    assert tap.headers["cache-control"] == "no-store, private" and tap.headers["referrer-policy"] == "no-referrer"
    local.settle()

    [instance] = local.client.get("/v1/users/ann/instances").json()["instances"]
    assert (instance["status"], instance["path"]) == ("completed", ["nudge", "tapped", "thanks", "done"])
    assert only(local, "ann", "push")["message"] == "thanks"
    sms = only(local, "ann", "sms")
    assert sms["status"] == "clicked"
    assert [(link["url"], link["hits"], link["machine_hits"]) for link in sms["links"]] == [(LONG_URL, 1, 0)]
    assert sms["links"][0]["first_hit_at"] == sms["links"][0]["last_hit_at"] == "2026-01-05T10:00:00Z"
    [seen] = exported(local, "ann")["instances"]
    assert seen["event"]["type"] == "sms.clicked"
    assert seen["event"]["properties"] == {"message_id": sms["message_id"], "url": LONG_URL, "clicks": 1,
                                           "first": True, "machine": False}


def test_every_click_is_counted_and_a_preview_is_a_machines(local_links: LocalServer, public: httpx.Client,
                                                             twilio: FakeTwilio) -> None:
    """An iMessage preview fetches the link before anyone taps it: counted, recorded as a machine's
    click, and the journey (waiting for a click that is no machine's) still waits; the person's taps
    after it are counted too, the first of them the engagement."""
    local = local_links
    code = send_cart_sms(local, twilio)
    preview = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_1) AppleWebKit/601.2.4 (KHTML, like Gecko) "
               "Version/9.0.1 Safari/601.2.4 facebookexternalhit/1.1 Facebot Twitterbot/1.0")
    assert public.get(f"/l/{code}", headers={"User-Agent": preview}).status_code == 302
    local.settle()
    sms = only(local, "ann", "sms")
    assert sms["status"] != "clicked" and sms["links"][0]["hits"] == sms["links"][0]["machine_hits"] == 1
    [waiting] = local.client.get("/v1/users/ann/instances").json()["instances"]
    assert (waiting["status"], waiting["step"]) == ("active", "tapped")
    waiting_for = exported(local, "ann")["instances"][0]
    assert waiting_for["event"]["type"] == "cart.abandoned"

    for _ in range(2):
        assert public.get(f"/l/{code}", headers={"User-Agent": SAFARI}).headers["location"] == LONG_URL
    local.settle()
    sms = only(local, "ann", "sms")
    assert (sms["status"], sms["links"][0]["hits"], sms["links"][0]["machine_hits"]) == ("clicked", 3, 1)
    [done] = exported(local, "ann")["instances"]
    assert done["status"] == "completed" and done["event"]["properties"]["first"] is True
    assert (done["event"]["properties"]["clicks"], done["event"]["properties"]["machine"]) == (2, False)


def test_an_unknown_code_answers_404_and_records_nothing(local_links: LocalServer, public: httpx.Client,
                                                         twilio: FakeTwilio) -> None:
    local = local_links
    code = send_cart_sms(local, twilio)
    for path in ("/l/Zz9Zz9Zz9Zz9", f"/l/{code[:-1]}", f"/o/{code}", "/l/not-a-code!", "/l/" + "a" * 200):
        missing = public.get(path, headers={"User-Agent": SAFARI})
        assert missing.status_code == 404, path
        assert missing.headers["content-type"] == "application/problem+json"
        assert "location" not in missing.headers and code not in missing.text
    probed = public.head(f"/l/{code}", headers={"User-Agent": SAFARI})  # a link checker's probe is no click
    assert (probed.status_code, probed.headers["allow"]) == (405, "GET") and "location" not in probed.headers
    local.settle()
    sms = only(local, "ann", "sms")
    assert sms["status"] != "clicked" and sms["links"][0]["hits"] == 0
    assert local.client.get("/v1/users/ann/instances").json()["instances"][0]["step"] == "tapped"


def test_an_erased_persons_code_answers_404(local_links: LocalServer, public: httpx.Client,
                                            twilio: FakeTwilio) -> None:
    local = local_links
    code = send_cart_sms(local, twilio)
    assert public.get(f"/l/{code}", headers={"User-Agent": SAFARI}).status_code == 302
    local.settle()
    assert local.client.delete("/v1/profiles/ann").status_code == 204
    gone = public.get(f"/l/{code}", headers={"User-Agent": SAFARI})
    assert gone.status_code == 404 and LONG_URL not in gone.text
    assert local.server.store.queued_users() == {}  # no event was accepted for her
    assert {m["channel"]: m["links"] for m in local.messages("ann")} == {"sms": [], "push": []}


def test_the_open_pixel_records_opens_a_proxy_as_a_machine(local_links: LocalServer, public: httpx.Client) -> None:
    """Policy `open_pixel: true`: the email's HTML loads `/o/<code>`; Apple's proxy loads it first
    (a machine's open: the message is not `opened`, the journey waiting for a person's open waits),
    then the reader's mail client (the message is `opened`, the journey moves on)."""
    local = local_links
    put_profile(local, "bob", email="bob@example.com")
    post_events(local, {"type": "receipt.ready", "user_id": "bob"})
    local.settle()
    email = only(local, "bob", "email")
    [pixel] = re.findall(rf'<img src="{re.escape(BASE)}/o/([A-Za-z0-9]{{12}})" width="1" height="1"',
                         email["content"]["html"])
    assert email["content"]["html"].endswith('style="border:0;width:1px;height:1px"></body></html>')
    assert [link["url"] for link in email["links"]] == ["https://shop.example.com/orders/7", None]

    loaded = public.get(f"/o/{pixel}", headers={"User-Agent": MPP})
    assert (loaded.status_code, loaded.headers["content-type"]) == (200, "image/gif")
    assert loaded.content.startswith(b"GIF89a\x01\x00\x01\x00") and len(loaded.content) == 42  # 1x1
    assert loaded.headers["cache-control"] == "no-store, private"
    local.settle()
    email = only(local, "bob", "email")
    assert email["status"] != "opened" and (email["links"][1]["hits"], email["links"][1]["machine_hits"]) == (1, 1)
    assert local.client.get("/v1/users/bob/instances").json()["instances"][0]["step"] == "read"

    assert public.get(f"/o/{pixel}", headers={"User-Agent": APPLE_MAIL}).status_code == 200
    local.settle()
    assert only(local, "bob", "email")["status"] == "opened"
    [read] = exported(local, "bob")["instances"]
    assert read["status"] == "completed" and read["event"]["type"] == "email.opened"
    assert read["event"]["properties"] == {"message_id": email["message_id"], "opens": 2, "first": True,
                                           "machine": False}


def test_without_the_pixel_switch_an_email_carries_no_pixel(local_links: LocalServer, public: httpx.Client) -> None:
    """The default (`open_pixel: false`): the email's link is short, and nothing else was added."""
    local = local_links
    put_profile(local, "bob", email="bob@example.com")
    post_events(local, {"type": "receipt.ready", "user_id": "bob"})
    local.settle()
    email = only(local, "bob", "email")
    assert "/o/" not in email["content"]["html"] and "<img" not in email["content"]["html"]
    assert [link["url"] for link in email["links"]] == ["https://shop.example.com/orders/7"]
    [code] = re.findall(rf'href="{re.escape(BASE)}/l/([A-Za-z0-9]{{12}})"', email["content"]["html"])
    assert public.get(f"/l/{code}", headers={"User-Agent": APPLE_MAIL}).headers["location"] == \
        "https://shop.example.com/orders/7"
    assert public.get(f"/o/{code}", headers={"User-Agent": APPLE_MAIL}).status_code == 404  # a link is no pixel


def test_the_access_log_masks_the_codes(local_links: LocalServer, public: httpx.Client, twilio: FakeTwilio) -> None:
    """What uvicorn logs of a tap names the route, never the code that records hits."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(MaskFilter())
    handler.setFormatter(TextFormatter())
    access = logging.getLogger("uvicorn.access")
    access.addHandler(handler)
    previous = access.level
    access.setLevel(logging.INFO)
    try:
        code = send_cart_sms(local_links, twilio)
        assert public.get(f"/l/{code}", headers={"User-Agent": SAFARI}).status_code == 302
    finally:
        access.removeHandler(handler)
        access.setLevel(previous)
    assert "GET /l/\u2022\u2022\u2022 HTTP/1.1" in stream.getvalue() and code not in stream.getvalue()
