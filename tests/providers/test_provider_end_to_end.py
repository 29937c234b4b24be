"""Journeys through `Server` + the HTTP API to real protocol servers on loopback.

The server is built but not started: tests ingest through the API, then call
`drain_outbox` / `sweep_timers` while moving a virtual clock, so every retry is exact.
Twilio webhooks are signed with the client library's own `RequestValidator`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient
from provider_fakes import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio, SmtpSink
from twilio.request_validator import RequestValidator
from typer.testing import CliRunner

from channels import load_policy
from channels.providers.config import load_providers
from engine.cli import app
from engine.clock import SystemClock, VirtualClock
from engine.compiler import load_text
from engine.host.server import Server
from engine.http.app import create_app
from engine.stores.sql import SqlStore

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
KEY = "k1"
STATUS_URL = "http://testserver/v1/webhooks/twilio/status"
INBOUND_URL = "http://testserver/v1/webhooks/twilio/inbound"
PHONE = "+14155550100"

JOURNEYS = ["""\
id: welcome
category: marketing
trigger: {event: signed_up}
steps:
  - {id: hello, type: send, message: hello, channels: [email]}
messages:
  hello:
    email: {subject: "Welcome {{ event.properties.name }}", body: "Hello!", html: "<b>Hello!</b>"}
""", """\
id: late-order
category: transactional
trigger: {event: order.late}
steps:
  - {id: tell, type: send, message: late, channels: [sms, email], strategy: escalate, escalate_after: 2h}
messages:
  late:
    sms: {text: "Your order is late"}
    email: {subject: "Your order is late", body: "Sorry, it is late"}
""", """\
id: reminder
category: marketing
trigger: {event: booked}
steps:
  - {id: later, type: wait, duration: 1h}
  - {id: remind, type: send, message: remind, channels: [sms]}
messages:
  remind:
    sms: {text: "See you tomorrow"}
"""]

PROVIDERS = """\
providers:
  - name: twilio-main
    type: twilio
    account_sid: ${TWILIO_ACCOUNT_SID}
    auth_token: ${TWILIO_AUTH_TOKEN}
    from: "+15005550006"
    api_base_url: ${FAKE_TWILIO}
    timeout: 0.5
  - name: mail
    type: smtp
    host: 127.0.0.1
    port: ${SMTP_PORT}
    sender: "Shop <shop@example.com>"
    unsubscribe_url: "https://shop.example.com/unsubscribe/{user_id}"
"""


class Rig:
    def __init__(self, server: Server, client: TestClient, clock: VirtualClock, twilio: FakeTwilio,
                 smtp: SmtpSink) -> None:
        self.server, self.client, self.clock, self.twilio, self.smtp = server, client, clock, twilio, smtp

    def put_profile(self, **fields: Any) -> None:
        consents = [{"channel": c, "category": cat, "granted": True, "source": "test", "at": "2026-01-01T00:00:00Z"}
                    for c in ("sms", "email") for cat in ("marketing", "transactional")]
        body = {"timezone": "UTC", "email": "ann@example.com", "phone": PHONE, "consents": consents, **fields}
        assert self.client.put("/v1/profiles/u1", json=body).status_code == 200

    def event(self, kind: str, **properties: Any) -> None:
        response = self.client.post("/v1/events", json={"type": kind, "user_id": "u1", "properties": properties})
        assert response.status_code == 202 and response.json()["accepted"] == 1

    def drain(self, after: timedelta = timedelta(0)) -> int:
        self.clock.advance_to(self.clock.now() + after)
        self.server.sweep_timers()
        return self.server.drain_outbox()

    def twilio_post(self, kind: str, params: dict[str, str], token: str = AUTH_TOKEN) -> Any:
        url = STATUS_URL if kind == "status" else INBOUND_URL
        signature = RequestValidator(token).compute_signature(url, params)
        return self.client.post(f"/v1/webhooks/twilio/{kind}", content=urlencode(params),
                                headers={"Content-Type": "application/x-www-form-urlencoded",
                                         "X-Twilio-Signature": signature})

    def messages(self) -> list[dict[str, Any]]:
        found = self.client.get("/v1/messages", params={"user_id": "u1"}).json()["messages"]
        return sorted(found, key=lambda m: m["at"])


@pytest.fixture
def rig(tmp_path: Path, fake_twilio: FakeTwilio, smtp_sink: SmtpSink) -> Iterator[Rig]:
    environ = {"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "FAKE_TWILIO": fake_twilio.url,
               "SMTP_PORT": str(smtp_sink.port)}  # the ${VARIABLES} of the providers file, as serve passes them
    config = tmp_path / "providers.yaml"
    config.write_text(PROVIDERS)
    providers = load_providers(config, tmp_path / "outbox.jsonl", environ=environ, clock=SystemClock().seconds)
    clock = VirtualClock(T0)
    journeys = [load_text(text, f"j{n}.yaml") for n, text in enumerate(JOURNEYS)]
    server = Server(SqlStore(f"sqlite:///{tmp_path / 'journey.db'}"), journeys, load_policy(), providers, clock)
    client = TestClient(create_app(server, frozenset({KEY})), headers={"Authorization": f"Bearer {KEY}"})
    yield Rig(server, client, clock, fake_twilio, smtp_sink)
    server.stop()


def test_a_journey_email_reaches_the_smtp_server(rig: Rig) -> None:
    rig.put_profile()
    rig.event("signed_up", name="Ann")
    assert rig.drain() == 1
    [mail] = rig.smtp.messages
    assert mail["Subject"] == "Welcome Ann" and mail["To"] == "ann@example.com"
    assert mail["List-Unsubscribe"] == "<https://shop.example.com/unsubscribe/u1>"
    [row] = rig.messages()
    assert row["dispatch"] == "sent" and row["provider"] == "mail" and row["provider_id"] == mail["Message-ID"]


def test_undelivered_sms_escalates_to_email_at_once(rig: Rig) -> None:
    rig.put_profile()
    rig.event("order.late")
    rig.drain()
    [sms] = rig.twilio.messages
    assert sms["Body"] == ["Your order is late"] and rig.smtp.messages == []
    sid = rig.messages()[0]["provider_id"]
    for status in ("sent", "undelivered"):
        reply = rig.twilio_post("status", {"MessageSid": sid, "MessageStatus": status, "To": PHONE,
                                           "AccountSid": ACCOUNT_SID, "ErrorCode": "30003" if status != "sent" else ""})
        assert reply.status_code == 200 and reply.json() == {"accepted": 1, "duplicates": 0}
    rig.drain()  # no time has passed: the failure moved the chain on
    [mail] = rig.smtp.messages
    assert mail["Subject"] == "Your order is late"
    rows = rig.messages()
    assert sorted((m["channel"], m["status"]) for m in rows) == [("email", "sent"), ("sms", "failed")]
    assert rig.client.get("/v1/profiles/u1").json()["phone"] == PHONE  # 30003 may be transient: kept


def test_repeated_status_callback_is_a_duplicate(rig: Rig) -> None:
    rig.put_profile()
    rig.event("order.late")
    rig.drain()
    sid = rig.messages()[0]["provider_id"]
    params = {"MessageSid": sid, "MessageStatus": "delivered"}
    assert rig.twilio_post("status", params).json() == {"accepted": 1, "duplicates": 0}
    assert rig.twilio_post("status", params).json() == {"accepted": 0, "duplicates": 1}
    assert rig.messages()[0]["status"] == "delivered"


def test_never_deliverable_code_in_a_callback_clears_the_phone(rig: Rig) -> None:
    rig.put_profile()
    rig.event("order.late")
    rig.drain()
    sid = rig.messages()[0]["provider_id"]
    rig.twilio_post("status", {"MessageSid": sid, "MessageStatus": "undelivered", "ErrorCode": "30006", "To": PHONE})
    assert rig.client.get("/v1/profiles/u1").json()["phone"] is None
    rig.drain()
    assert len(rig.smtp.messages) == 1  # escalated to email


@pytest.mark.parametrize("code", ["\u00b2", "3" * 4300, "-1", "30003 "])
def test_a_signed_callback_with_an_error_code_that_is_no_number_is_a_400_naming_it(rig: Rig, code: str) -> None:
    """`²` passes str.isdigit and 4,300 digits pass it too, but neither is a number int() takes: a
    500 before. The callback is refused (Twilio's own are five digits) and changes nothing."""
    rig.put_profile()
    rig.event("order.late")
    rig.drain()
    sid = rig.messages()[0]["provider_id"]
    reply = rig.twilio_post("status", {"MessageSid": sid, "MessageStatus": "undelivered", "ErrorCode": code,
                                       "To": PHONE})
    assert reply.status_code == 400, reply.text
    assert reply.headers["content-type"] == "application/problem+json"
    assert reply.json()["errors"][0]["field"] == "ErrorCode"
    assert rig.messages()[0]["status"] == "sent" and rig.client.get("/v1/profiles/u1").json()["phone"] == PHONE


def test_permanent_error_at_send_fails_over_and_clears_the_phone(rig: Rig) -> None:
    rig.put_profile()
    rig.twilio.script = [21211]
    rig.event("order.late")
    rig.drain()
    assert rig.client.get("/v1/profiles/u1").json()["phone"] is None
    rig.drain()
    rows = {m["channel"]: m for m in rig.messages()}
    assert (rows["sms"]["dispatch"], rows["email"]["dispatch"]) == ("failed", "sent")
    assert "21211" in rows["sms"]["error"]


def test_inbound_stop_revokes_consent_and_the_scheduled_sms_is_not_sent(rig: Rig) -> None:
    rig.put_profile()
    rig.event("booked")
    reply = rig.twilio_post("inbound", {"MessageSid": "SMin1", "From": PHONE, "To": "+15005550006",
                                        "Body": "  stop "})
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/xml")
    rig.drain()
    [confirmation] = rig.twilio.messages  # the STOP confirmation only
    assert confirmation["To"] == [PHONE]
    rig.drain(timedelta(hours=1, minutes=1))
    assert len(rig.twilio.messages) == 1
    consents = rig.client.get("/v1/profiles/u1").json()["consents"]
    assert {(c["channel"], c["category"]) for c in consents if not c["granted"]} == {
        (c, cat) for c in ("sms", "mms", "rcs") for cat in ("marketing", "transactional")}
    assert [m["message"] for m in rig.messages()] == ["stop_confirmation"]


def test_forged_signature_is_refused_and_changes_nothing(rig: Rig) -> None:
    rig.put_profile()
    rig.event("booked")
    before = rig.client.get("/v1/profiles/u1").json()
    params = {"MessageSid": "SMin2", "From": PHONE, "To": "+15005550006", "Body": "STOP"}
    forged = rig.twilio_post("inbound", params, token="not-the-token")
    unsigned = rig.client.post("/v1/webhooks/twilio/inbound", data=params)
    assert forged.status_code == 403 and unsigned.status_code == 403
    assert rig.client.get("/v1/profiles/u1").json() == before
    rig.drain(timedelta(hours=1, minutes=1))
    assert [m["To"] for m in rig.twilio.messages] == [[PHONE]]
    assert [m["message"] for m in rig.messages()] == ["remind"]


def test_webhooks_need_no_bearer_key_but_the_api_does(rig: Rig) -> None:
    bare = TestClient(rig.client.app)
    assert bare.get("/v1/messages", params={"user_id": "u1"}).status_code == 401
    assert bare.post("/v1/webhooks/twilio/status", data={"MessageSid": "x"}).status_code == 403
    assert bare.post("/v1/webhooks/nobody/status", data={}).status_code == 404


def test_twilio_down_twice_then_up_delivers_once(rig: Rig) -> None:
    """503 twice: Twilio did not take the message, it is retried with backoff and goes once."""
    rig.put_profile()
    rig.twilio.script = [503, 503]
    rig.event("order.late")
    rig.drain()
    assert rig.messages()[0]["dispatch"] == "pending"
    rig.drain(timedelta(seconds=1))
    rig.drain(timedelta(seconds=5))
    assert rig.twilio.requests == 3
    [sms] = rig.twilio.messages
    assert sms["Body"] == ["Your order is late"]
    [row] = rig.messages()
    assert (row["dispatch"], row["attempts"], row["provider"]) == ("sent", 3, "twilio-main")
    rig.drain(timedelta(minutes=5))
    assert len(rig.twilio.messages) == 1 and rig.smtp.messages == []


@pytest.mark.parametrize("reply", ["not-json", "timeout"])
def test_twilio_taking_the_message_without_a_readable_answer_leaves_it_unknown_and_sent_once(
        rig: Rig, reply: str) -> None:
    """A 201 whose body is not JSON, or no answer within the timeout once the request went out:
    Twilio may have the message and takes no idempotency key, so it is `unknown`, never sent again
    (not retried as temporary, not `failed` after six attempts), and the failover provider is not tried."""
    rig.put_profile()
    rig.twilio.script = [reply]
    rig.event("order.late")
    for wait in (0, 1, 5, 30, 120, 600, 3600):
        rig.drain(timedelta(seconds=wait))
    assert rig.twilio.requests == 1
    [row] = [m for m in rig.messages() if m["channel"] == "sms"]
    assert (row["dispatch"], row["status"], row["attempts"], row["provider"]) == ("unknown", "unknown", 1,
                                                                                 "twilio-main")
    assert "not sent again" in row["error"]
    assert rig.server.dispatcher.in_doubt == 1 and rig.server.dispatcher.outcomes[("sms", "unknown")] == 1


def _inbound(rig: Rig, sid: str, text: str, sender: str = PHONE) -> None:
    reply = rig.twilio_post("inbound", {"MessageSid": sid, "From": sender, "To": "+15005550006", "Body": text})
    assert reply.status_code == 200, reply.text


def _replies_status(rig: Rig, user_id: str) -> list[str]:
    [instance] = [i for i in rig.client.get(f"/v1/users/{user_id}/instances").json()["instances"]
                  if i["journey_id"] == "replies"] or [None]
    return [] if instance is None else [instance["status"]]


def test_a_reply_from_a_number_two_profiles_share_reaches_both_and_a_stop_is_answered_once(rig: Rig) -> None:
    replies = load_text("id: replies\ncategory: transactional\ntrigger: {event: sms.inbound}\n"
                        "steps:\n  - {id: noted, type: exit}\n", "replies.yaml")
    rig.server.engine.load(replies)
    for user in ("u2", "u1"):
        body = {"timezone": "UTC", "phone": PHONE, "consents": [
            {"channel": "sms", "category": "transactional", "granted": True, "source": "test"}]}
        assert rig.client.put(f"/v1/profiles/{user}", json=body).status_code == 200
    _inbound(rig, "SMshared1", "Is my order on its way?")
    assert _replies_status(rig, "u1") == ["completed"] and _replies_status(rig, "u2") == ["completed"]
    _inbound(rig, "SMshared1", "Is my order on its way?")  # Twilio's retry: a duplicate for both
    assert len(rig.client.get("/v1/users/u2/instances").json()["instances"]) == 1
    _inbound(rig, "SMshared2", "STOP")
    rig.drain()
    assert [m["To"] for m in rig.twilio.messages] == [[PHONE]]  # one confirmation for the number
    for user in ("u1", "u2"):  # the number is suppressed for both; the first by user_id holds the STOP
        profile = rig.client.get(f"/v1/profiles/{user}").json()
        assert [c["source"] for c in profile["consents"] if not c["granted"]] == \
            (["keyword:STOP"] * 6 if user == "u1" else [])


def test_a_stop_from_a_number_no_profile_holds_is_in_the_consent_trail(rig: Rig, tmp_path: Path) -> None:
    rig.put_profile()
    stranger = "+14155550199"
    _inbound(rig, "SMx1", "STOP", sender=stranger)
    _inbound(rig, "SMx2", "START", sender=stranger)
    feed = rig.client.get("/v1/consents", params={"limit": 2}).json()
    rows = feed["consents"]
    while feed["next_cursor"]:
        feed = rig.client.get("/v1/consents", params={"limit": 2, "cursor": feed["next_cursor"]}).json()
        rows += feed["consents"]
    numbers = [(r["user_id"], r["number"], r["granted"]) for r in rows if r["number"] is not None]
    assert numbers == [(None, stranger, False), (None, stranger, True)]
    assert len(rows) == 4 + 2  # u1's four grants, then the number's STOP and START
    exported = CliRunner().invoke(app, ["consent", "export", "--db", f"sqlite:///{tmp_path / 'journey.db'}"])
    assert exported.exit_code == 0, exported.output
    assert [json.loads(line)["number"] for line in exported.stdout.splitlines()][-2:] == [stranger, stranger]


def test_erasure_reaches_the_outbox_file(rig: Rig, tmp_path: Path) -> None:
    outbox = tmp_path / "outbox.jsonl"
    outbox.write_text(json.dumps({"message_id": "m1", "user_id": "u1", "channel": "push"}) + "\n"
                      + json.dumps({"message_id": "m2", "user_id": "u9", "channel": "push"}) + "\n")
    rig.put_profile()
    assert rig.client.delete("/v1/profiles/u1").status_code == 204
    assert [json.loads(line)["user_id"] for line in outbox.read_text().splitlines()] == ["u9"]
