"""RCS end to end: the shipped event-invitation journey through `Server` and the HTTP API to local servers
that speak Google RCS Business Messaging's protocol and Twilio's (Messages and Content API), answering in
100-300 ms. What arrives there is asserted field by field; a chip tap posted to the webhooks becomes an
`rcs.reply` that moves the waiting instance; a "not capable" answer of RBM's capability check makes the
send fall back to SMS, decided before sending, with the decision saying why and from whom."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient
from provider_fakes import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    RBM_AGENT,
    RBM_CLIENT_TOKEN,
    FakeRbm,
    FakeTwilio,
    rbm_push,
    service_account,
)
from twilio.request_validator import RequestValidator

from channels import load_policy
from channels.providers.config import load_providers
from channels.providers.rbm import message_uuid
from engine.clock import SystemClock, VirtualClock
from engine.compiler import load_file, load_text
from engine.host.server import Server
from engine.http.app import create_app
from engine.simulator import read_jsonl
from engine.stores.sql import SqlStore

ROOT = Path(__file__).resolve().parent.parent.parent
T0 = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)  # New York 10:00: no quiet hours
KEY = "k1"
PHONE = "+12125550101"
INBOUND_URL = "http://testserver/v1/webhooks/twilio/inbound"
SERVICE = "MG" + "1" * 32

RBM_ENTRY = """\
  - name: rbm
    type: rbm
    agent_id: {agent}
    service_account_file: {account}
    client_token: ${{RBM_CLIENT_TOKEN}}
    base_url: {url}
    token_uri: {url}/token
"""
TWILIO_ENTRY = """\
  - name: twilio-main
    type: twilio
    channels: {channels}
    account_sid: ${{TWILIO_ACCOUNT_SID}}
    auth_token: ${{TWILIO_AUTH_TOKEN}}
    from: "+15005550006"
    rcs_messaging_service_sid: {service}
    api_base_url: {url}
    timeout: 2
"""
CARD = """\
id: table-ready
category: transactional
trigger: {event: table.ready}
steps:
  - {id: tell, type: send, message: ready, channels: [rcs, sms], strategy: first}
messages:
  ready:
    rcs:
      card:
        title: "Table {{ event.properties.table }} is ready"
        description: "Please come to the front desk within 10 minutes."
        media: {url: "https://cdn.example.com/tables/{{ event.properties.table }}.jpg", height: tall}
        orientation: horizontal
        suggestions:
          - {reply: "On my way", postback: coming}
          - {view_location: {latitude: 40.7484, longitude: -73.9857, label: "Acme Bistro"}, text: "Where is it?"}
      suggestions:
        - {reply: "Cancel", postback: cancel}
        - {share_location: true, text: "Share location"}
    sms: {text: "Table {{ event.properties.table }} is ready."}
"""


class Rig:
    def __init__(self, server: Server, client: TestClient, clock: VirtualClock, rbm: FakeRbm,
                 twilio: FakeTwilio) -> None:
        self.server, self.client, self.clock, self.rbm, self.twilio = server, client, clock, rbm, twilio

    def invite(self, user: str = "u1", phone: str = PHONE, name: str = "Ava") -> None:
        consents = [{"channel": c, "category": k, "granted": True, "source": "test", "at": "2026-01-01T00:00:00Z"}
                    for c in ("rcs", "sms") for k in ("marketing", "transactional")]
        body = {"timezone": "America/New_York", "phone": phone, "rcs_capable": True, "consents": consents,
                "attributes": {"first_name": name}}
        assert self.client.put(f"/v1/profiles/{user}", json=body).status_code == 200
        [invited, *_] = [row for _, row in read_jsonl(ROOT / "examples" / "event-invitation" / "events.jsonl")]
        event = {**invited, "id": f"inv-{user}", "user_id": user, "timestamp": None}
        response = self.client.post("/v1/events", json={k: v for k, v in event.items() if v is not None})
        assert response.status_code == 202 and response.json()["accepted"] == 1, response.text

    def drain(self, after: timedelta = timedelta(0)) -> int:
        self.clock.advance_to(self.clock.now() + after)
        self.server.sweep_timers()
        return self.server.drain_outbox()

    def messages(self, user: str = "u1") -> list[dict[str, Any]]:
        found = self.client.get("/v1/messages", params={"user_id": user}).json()["messages"]
        return sorted(found, key=lambda m: (m["at"], m["message_id"]))

    def path(self, user: str = "u1") -> list[str]:
        [instance] = self.client.get(f"/v1/users/{user}/instances").json()["instances"]
        return list(instance["path"])

    def rbm_post(self, data: dict[str, Any], token: str = RBM_CLIENT_TOKEN) -> Any:
        body, signature = rbm_push(data, token)
        return self.client.post("/v1/webhooks/rbm", content=body,
                                headers={"Content-Type": "application/json", "X-Goog-Signature": signature})

    def twilio_inbound(self, params: dict[str, str]) -> Any:
        signature = RequestValidator(AUTH_TOKEN).compute_signature(INBOUND_URL, params)
        return self.client.post("/v1/webhooks/twilio/inbound", content=urlencode(params),
                                headers={"Content-Type": "application/x-www-form-urlencoded",
                                         "X-Twilio-Signature": signature})


@pytest.fixture
def fakes() -> Iterator[tuple[FakeRbm, FakeTwilio, dict[str, str]]]:
    account, public_key = service_account("rbm-acme")
    rbm, twilio = FakeRbm(public_key), FakeTwilio(latency=(0.1, 0.3))
    rbm.start()
    twilio.start()
    yield rbm, twilio, account
    rbm.stop()
    twilio.stop()


def _rig(tmp_path: Path, fakes: tuple[FakeRbm, FakeTwilio, dict[str, str]], rcs_by: str) -> Rig:
    rbm, twilio, account = fakes
    environ = {"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "RBM_CLIENT_TOKEN": RBM_CLIENT_TOKEN}
    (tmp_path / "rbm.json").write_text(json.dumps(account))
    entries = RBM_ENTRY.format(agent=RBM_AGENT, account=tmp_path / "rbm.json", url=rbm.url) if rcs_by == "rbm" else ""
    channels = "[sms, mms]" if rcs_by == "rbm" else "[sms, mms, rcs]"
    entries += TWILIO_ENTRY.format(channels=channels, service=SERVICE, url=twilio.url)
    (tmp_path / "providers.yaml").write_text("providers:\n" + entries)
    providers = load_providers(tmp_path / "providers.yaml", tmp_path / "outbox.jsonl", environ=environ,
                               clock=SystemClock().seconds)
    clock = VirtualClock(T0)
    journeys = [load_file(ROOT / "journeys" / "event-invitation.yaml"), load_text(CARD, "table-ready.yaml")]
    server = Server(SqlStore(f"sqlite:///{tmp_path / 'journey.db'}"), journeys, load_policy(), providers, clock)
    client = TestClient(create_app(server, frozenset({KEY})), headers={"Authorization": f"Bearer {KEY}"})
    return Rig(server, client, clock, rbm, twilio)


@pytest.fixture
def make_rig(tmp_path: Path, fakes: tuple[FakeRbm, FakeTwilio, dict[str, str]]) -> Iterator[Callable[[str], Rig]]:
    made: list[Rig] = []

    def make(rcs_by: str) -> Rig:
        made.append(_rig(tmp_path, fakes, rcs_by))
        return made[-1]

    yield make
    for rig in made:
        rig.server.stop()


@pytest.fixture
def rbm_rig(make_rig: Callable[[str], Rig]) -> Rig:
    """rcs by RBM (its capability check asked), sms and mms by Twilio."""
    return make_rig("rbm")


@pytest.fixture
def twilio_rig(make_rig: Callable[[str], Rig]) -> Rig:
    """sms, mms and rcs by Twilio (capability assumed)."""
    return make_rig("twilio")


CAROUSEL_CARDS = [
    {"title": "Spring Collection Preview Night",
     "description": "Thu 15 Jan, 6 PM at Acme Store: a first look at the new collection.",
     "media": {"height": "MEDIUM", "contentInfo": {"fileUrl": "https://cdn.example.com/events/ev-42/banner.jpg"}}},
    {"title": "Meet the designers", "description": "A short talk on how the collection was made, then questions.",
     "media": {"height": "MEDIUM", "contentInfo": {"fileUrl": "https://cdn.example.com/events/ev-42/designers.jpg"}}},
    {"title": "Drinks and music", "description": "Stay for a drink; members get 20% off all evening.",
     "media": {"height": "MEDIUM", "contentInfo": {"fileUrl": "https://cdn.example.com/events/ev-42/drinks.jpg"}}},
]
RBM_CHIPS = [
    {"reply": {"text": "Yes, I'll come", "postbackData": "rsvp_yes"}},
    {"reply": {"text": "No, thanks", "postbackData": "rsvp_no"}},
    {"action": {"text": "Details", "postbackData": "Details",
                "openUrlAction": {"url": "https://shop.example.com/events/ev-42"}}},
    {"action": {"text": "Call the store", "postbackData": "Call the store",
                "dialAction": {"phoneNumber": "+12125550199"}}},
    {"action": {"text": "Add to calendar", "postbackData": "Add to calendar", "createCalendarEventAction": {
        "startTime": "2026-01-15T23:00:00Z", "endTime": "2026-01-16T02:00:00Z",
        "title": "Spring Collection Preview Night"}}},
]


def test_rbm_receives_the_carousel_and_every_chip_intact(rbm_rig: Rig) -> None:
    rbm_rig.invite()
    assert rbm_rig.rbm.capability_checks == [PHONE]  # asked before the first RCS send to the number
    assert rbm_rig.drain() == 1
    text, carousel = rbm_rig.rbm.sent
    [row] = rbm_rig.messages()
    assert row["channel"] == "rcs" and row["provider"] == "rbm" and row["dispatch"] == "sent"
    assert text == {"phone": PHONE, "messageId": message_uuid(row["message_id"], ".text"), "agentId": RBM_AGENT,
                    "contentMessage": {"text": "Ava, you're invited to Spring Collection Preview Night!"}}
    assert carousel == {"phone": PHONE, "messageId": message_uuid(row["message_id"]), "agentId": RBM_AGENT,
                        "contentMessage": {"richCard": {"carouselCard": {"cardWidth": "MEDIUM",
                                                                         "cardContents": CAROUSEL_CARDS}},
                                           "suggestions": RBM_CHIPS}}
    assert row["provider_id"] == carousel["messageId"]
    rcs = next(d for d in row["decisions"] if d["channel"] == "rcs")
    assert rcs == {"channel": "rcs", "eligible": True, "reason": None, "capability": "known",
                   "capability_source": "rbm"}


def test_rbm_receives_a_standalone_card_with_its_own_chips(rbm_rig: Rig) -> None:
    rbm_rig.invite()
    response = rbm_rig.client.post("/v1/events", json={"type": "table.ready", "user_id": "u1",
                                                       "properties": {"table": 4}})
    assert response.status_code == 202
    rbm_rig.drain()
    card = next(m for m in rbm_rig.rbm.sent if "richCard" in m["contentMessage"]
                and "standaloneCard" in m["contentMessage"]["richCard"])
    assert card["contentMessage"] == {
        "richCard": {"standaloneCard": {
            "cardOrientation": "HORIZONTAL", "thumbnailImageAlignment": "LEFT",
            "cardContent": {
                "title": "Table 4 is ready", "description": "Please come to the front desk within 10 minutes.",
                "media": {"height": "TALL", "contentInfo": {"fileUrl": "https://cdn.example.com/tables/4.jpg"}},
                "suggestions": [
                    {"reply": {"text": "On my way", "postbackData": "coming"}},
                    {"action": {"text": "Where is it?", "postbackData": "Where is it?", "viewLocationAction": {
                        "latLong": {"latitude": 40.7484, "longitude": -73.9857}, "label": "Acme Bistro"}}}]}}},
        "suggestions": [{"reply": {"text": "Cancel", "postbackData": "cancel"}},
                        {"action": {"text": "Share location", "postbackData": "Share location",
                                    "shareLocationAction": {}}}]}
    assert rbm_rig.rbm.capability_checks == [PHONE]  # the cached answer decided the second send


def test_a_chip_tap_on_the_rbm_webhook_moves_the_waiting_instance(rbm_rig: Rig) -> None:
    rbm_rig.invite()
    rbm_rig.drain()
    [invitation] = rbm_rig.messages()
    for event in ("DELIVERED", "READ"):
        receipt = rbm_rig.rbm_post({"senderPhoneNumber": PHONE, "eventType": event, "eventId": f"ev-{event}",
                                    "messageId": invitation["provider_id"], "agentId": RBM_AGENT})
        assert receipt.status_code == 200 and receipt.json() == {"accepted": 1, "duplicates": 0}, receipt.text
        assert rbm_rig.messages()[0]["status"] == event.lower()
    assert rbm_rig.path() == ["invite", "await_rsvp"]
    forged = rbm_rig.rbm_post({"senderPhoneNumber": PHONE, "messageId": "forged", "agentId": RBM_AGENT,
                               "suggestionResponse": {"postbackData": "rsvp_no", "text": "No, thanks"}},
                              token="not-the-token")
    assert forged.status_code == 403 and rbm_rig.path() == ["invite", "await_rsvp"]
    tap = {"senderPhoneNumber": PHONE, "messageId": "user-msg-1", "sendTime": "2026-01-05T15:05:00Z",
           "agentId": RBM_AGENT, "suggestionResponse": {"postbackData": "rsvp_yes", "text": "Yes, I'll come",
                                                        "type": "REPLY"}}
    assert rbm_rig.rbm_post(tap).json() == {"accepted": 1, "duplicates": 0}
    assert rbm_rig.rbm_post(tap).json() == {"accepted": 0, "duplicates": 1}  # Google's retry
    assert rbm_rig.path() == ["invite", "await_rsvp", "check_answer", "confirmed", "done"]
    rbm_rig.drain()
    first, confirmed = rbm_rig.messages()
    assert first["status"] == "replied" and confirmed["message"] == "rsvp_confirmed"
    assert rbm_rig.rbm.sent[-1]["contentMessage"] == {"text": "Great, see you there, Ava! Your spot is saved."}


def test_the_rbm_webhook_answers_its_verification_and_ignores_what_is_not_for_it(rbm_rig: Rig) -> None:
    check = rbm_rig.client.post("/v1/webhooks/rbm", json={"clientToken": RBM_CLIENT_TOKEN, "secret": "s3cr3t"})
    assert check.status_code == 200 and check.json() == {"secret": "s3cr3t"}
    wrong = rbm_rig.client.post("/v1/webhooks/rbm", json={"clientToken": "nope", "secret": "s3cr3t"})
    assert wrong.status_code == 403
    typing = rbm_rig.rbm_post({"senderPhoneNumber": PHONE, "eventType": "IS_TYPING", "eventId": "t1",
                               "agentId": RBM_AGENT})
    assert typing.status_code == 200 and typing.json() == {"ignored": "event IS_TYPING"}
    stranger = rbm_rig.rbm_post({"senderPhoneNumber": "+12125550999", "messageId": "m9", "text": "hi"})
    assert stranger.json() == {"ignored": "no profile holds the sender's number"}
    garbled = rbm_rig.client.post("/v1/webhooks/rbm", json={"message": {"data": 3}})
    assert garbled.status_code == 400 and garbled.json()["errors"][0]["field"] == "message.data"


def test_a_not_capable_answer_falls_back_to_sms_with_the_decision_saying_why(rbm_rig: Rig) -> None:
    rbm_rig.rbm.not_capable.add(PHONE)
    rbm_rig.invite()
    rbm_rig.drain()
    assert rbm_rig.rbm.sent == []
    [sms] = rbm_rig.twilio.messages
    assert sms["To"] == [PHONE] and sms["Body"][0].startswith("Ava, you're invited to Spring Collection")
    [row] = rbm_rig.messages()
    assert (row["channel"], row["provider"]) == ("sms", "twilio-main")
    rcs = next(d for d in row["decisions"] if d["channel"] == "rcs")
    assert rcs == {"channel": "rcs", "eligible": False, "reason": "not_capable", "fallback": "sms",
                   "capability": "known", "capability_source": "rbm"}
    profile = rbm_rig.client.get("/v1/profiles/u1").json()
    assert profile["rcs_capable"] is False
    assert profile["rcs_capability"] == {"capable": False, "checked_at": "2026-01-05T15:00:00Z", "source": "rbm"}
    answer = rbm_rig.twilio_inbound({"MessageSid": "SMin1", "From": PHONE, "To": "+15005550006", "Body": "YES"})
    assert answer.status_code == 200  # an SMS answer steers the journey too
    rbm_rig.drain()
    assert [m["message"] for m in rbm_rig.messages()] == ["invitation", "rsvp_confirmed"]
    assert rbm_rig.rbm.capability_checks == [PHONE]  # the cached answer decided the confirmation


TWILIO_CARDS = [
    {"title": "Spring Collection Preview Night",
     "body": "Thu 15 Jan, 6 PM at Acme Store: a first look at the new collection.",
     "media": "https://cdn.example.com/events/ev-42/banner.jpg"},
    {"title": "Meet the designers", "body": "A short talk on how the collection was made, then questions.",
     "media": "https://cdn.example.com/events/ev-42/designers.jpg"},
    {"title": "Drinks and music", "body": "Stay for a drink; members get 20% off all evening.",
     "media": "https://cdn.example.com/events/ev-42/drinks.jpg"},
]
TWILIO_CHIPS = [
    {"type": "QUICK_REPLY", "title": "Yes, I'll come", "id": "rsvp_yes"},
    {"type": "QUICK_REPLY", "title": "No, thanks", "id": "rsvp_no"},
    {"type": "URL", "title": "Details", "url": "https://shop.example.com/events/ev-42"},
    {"type": "PHONE_NUMBER", "title": "Call the store", "phone": "+12125550199"},
    {"type": "URL", "title": "Add to calendar", "url": "https://calendar.google.com/calendar/render?action=TEMPLATE"
                                                       "&text=Spring+Collection+Preview+Night"
                                                       "&dates=20260115T230000Z%2F20260116T020000Z"},
]


def test_twilio_receives_the_carousel_and_the_chips_through_the_content_api(twilio_rig: Rig) -> None:
    twilio_rig.invite()
    twilio_rig.drain()
    carousel, chips = twilio_rig.twilio.contents
    text = "Ava, you're invited to Spring Collection Preview Night!"
    assert carousel["types"] == {"twilio/carousel": {"body": text, "cards": TWILIO_CARDS}}
    assert chips["types"] == {"twilio/card": {"body": text, "actions": TWILIO_CHIPS}}
    assert {c["language"] for c in (carousel, chips)} == {"en"}
    first, second = twilio_rig.twilio.messages
    assert first == {"To": [PHONE], "MessagingServiceSid": [SERVICE], "ContentSid": ["HX" + "1".rjust(32, "0")]}
    assert second == {"To": [PHONE], "MessagingServiceSid": [SERVICE], "ContentSid": ["HX" + "2".rjust(32, "0")]}
    [row] = twilio_rig.messages()
    assert row["provider_id"] == "SM" + "2".rjust(32, "0")
    assert next(d for d in row["decisions"] if d["channel"] == "rcs")["capability"] == "assumed"  # Twilio can't tell
    twilio_rig.invite("u2", "+12125550102", "Ava")  # the same rendering: the same Content resources
    twilio_rig.drain()
    assert len(twilio_rig.twilio.contents) == 2 and len(twilio_rig.twilio.messages) == 4
    assert [m["ContentSid"] for m in twilio_rig.twilio.messages[2:]] == [first["ContentSid"], second["ContentSid"]]


def test_a_chip_tap_through_twilio_is_an_rcs_reply_that_moves_the_waiting_instance(twilio_rig: Rig) -> None:
    twilio_rig.invite()
    twilio_rig.drain()
    [invitation] = twilio_rig.messages()
    tap = {"MessageSid": "MMtap1", "From": f"rcs:{PHONE}", "To": "rcs:acme_agent", "Body": "No, thanks",
           "ButtonPayload": "rsvp_no", "ButtonText": "No, thanks",
           "OriginalRepliedMessageSid": invitation["provider_id"]}
    reply = twilio_rig.twilio_inbound(tap)
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/xml")
    assert twilio_rig.path() == ["invite", "await_rsvp", "check_answer", "declined", "done"]
    twilio_rig.drain()
    first, declined = twilio_rig.messages()
    assert first["status"] == "replied" and declined["message"] == "rsvp_declined"
    assert twilio_rig.twilio.messages[-1]["Body"] == ["Thanks for letting us know. We hope to see you at the next one."]


@pytest.mark.parametrize("rcs_by", ["rbm", "twilio"])
def test_twenty_invitations_at_once_each_arrive_once(make_rig: Callable[[str], Rig], rcs_by: str) -> None:
    """Twenty users invited at once, sent by one drain with the providers' default concurrency (20)
    against servers answering in 100-300 ms: each phone gets its invitation once, through RBM (its
    text and carousel, under one shared access token) or through Twilio (the same rendering for
    all, so its two Content resources are created once, not once per thread)."""
    rig = make_rig(rcs_by)
    phones = [f"+1212555{n:04d}" for n in range(200, 220)]
    for n, phone in enumerate(phones):
        rig.invite(f"u{n}", phone, "Ava")
    assert rig.drain() == 20
    rows = [row for n in range(20) for row in rig.messages(f"u{n}")]
    assert [(r["channel"], r["dispatch"]) for r in rows] == [("rcs", "sent")] * 20
    if rcs_by == "rbm":
        assert sorted(m["phone"] for m in rig.rbm.sent) == sorted(phones * 2)  # a text and a carousel each
        assert {m["messageId"] for m in rig.rbm.sent} == {message_uuid(r["message_id"], part) for r in rows
                                                          for part in ("", ".text")}
        assert rig.rbm.tokens_issued == 1
        assert rig.rbm.most_at_once > 1
    else:
        assert len(rig.twilio.contents) == 2
        assert sorted(m["To"][0] for m in rig.twilio.messages) == sorted(phones * 2)  # a carousel and its chips
        assert {m["ContentSid"][0] for m in rig.twilio.messages} == {"HX" + str(n).rjust(32, "0") for n in (1, 2)}
        assert rig.twilio.most_at_once > 1
