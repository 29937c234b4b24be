"""Compliance holds at the moment of sending: over HTTP, against a local server that speaks
Twilio's protocol, a message that may no longer go between its first attempt and its retry is
`cancelled` and never reaches Twilio; the phone suppression list covers numbers no profile
holds and every profile sharing a number; one provider's bug fails one message, not a batch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from channels.providers import FileProvider, OutboundMessage
from channels.providers.twilio import TwilioProvider
from tests.providers.provider_fakes import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio
from tests.server.conftest import LocalServer, StartLocal, post_events, put_profile, twilio_post

PHONE = "+14155550100"
PROMO = """\
id: promo
category: marketing
trigger: {event: promo.sent}
steps:
  - {id: offer, type: send, message: offer, channels: [sms]}
messages:
  offer:
    sms: {text: "20% off today"}
"""


@pytest.fixture
def rig(start_local: StartLocal, journeys_dir: Path, twilio: FakeTwilio, tmp_path: Path) -> LocalServer:
    (journeys_dir / "promo.yaml").write_text(PROMO, encoding="utf-8")
    sms = TwilioProvider(ACCOUNT_SID, AUTH_TOKEN, "+15005550006", api_base_url=twilio.url, timeout=2)
    return start_local(providers={"sms": [sms], "*": [FileProvider(tmp_path / "outbox.jsonl")]})


def sms_of(local: LocalServer, user_id: str) -> list[dict[str, Any]]:
    return [m for m in local.messages(user_id) if m["channel"] == "sms"]


def twilio_inbound(local: LocalServer, sender: str, text: str, sid: str = "SM1") -> Any:
    return twilio_post(local, "inbound", {"From": sender, "To": "+15005550006", "Body": text, "MessageSid": sid})


def first_attempt_fails(local: LocalServer, twilio: FakeTwilio) -> dict[str, Any]:
    """A marketing SMS whose first attempt Twilio answers with 503: queued for a retry in 1 s."""
    twilio.script = [503, 503]
    put_profile(local, "u1", "sms:marketing", "sms:transactional", phone=PHONE)
    post_events(local, {"type": "promo.sent", "user_id": "u1"})
    local.settle()
    [sms] = sms_of(local, "u1")
    assert (sms["dispatch"], sms["attempts"]) == ("pending", 1) and twilio.requests == 1
    return sms


def assert_cancelled_and_never_sent(local: LocalServer, twilio: FakeTwilio, reason: str) -> None:
    local.advance(60)  # past every retry the backoff would have made
    [sms] = [m for m in sms_of(local, "u1") if m["message"] == "offer"]
    assert (sms["dispatch"], sms["status"], sms["error"], sms["attempts"]) == ("cancelled", "cancelled", reason, 1)
    assert twilio.bodies.count("20% off today") == 1  # the first attempt only
    assert [m for m in twilio.messages if m["Body"] == ["20% off today"]] == []
    assert f'journey_messages_cancelled_total{{reason="{reason}"}} 1.0' in local.client.get("/metrics").text


def test_a_stop_between_the_first_attempt_and_the_retry_cancels_the_sms(rig: LocalServer,
                                                                        twilio: FakeTwilio) -> None:
    first_attempt_fails(rig, twilio)
    reply = post_events(rig, {"type": "sms.inbound", "user_id": "u1", "properties": {"text": "STOP"}})
    assert reply.status_code == 202
    assert_cancelled_and_never_sent(rig, twilio, "opted_out")
    confirmation = [m for m in sms_of(rig, "u1") if m["message"] == "stop_confirmation"]
    assert confirmation and confirmation[0]["dispatch"] == "sent"  # a STOP is always confirmed


def test_a_consent_revoked_over_the_api_before_the_retry_cancels_the_sms(rig: LocalServer,
                                                                         twilio: FakeTwilio) -> None:
    first_attempt_fails(rig, twilio)
    revoked = rig.client.post("/v1/profiles/u1/consents",
                              json={"channel": "sms", "category": "marketing", "granted": False})
    assert revoked.status_code == 201
    assert_cancelled_and_never_sent(rig, twilio, "opted_out")


def test_an_address_removed_before_the_retry_cancels_the_sms(rig: LocalServer, twilio: FakeTwilio) -> None:
    first_attempt_fails(rig, twilio)
    put_profile(rig, "u1", "sms:marketing", phone=None)
    assert_cancelled_and_never_sent(rig, twilio, "no_address")


def test_a_stop_from_a_number_no_profile_holds_suppresses_it_for_later_profiles(rig: LocalServer,
                                                                               twilio: FakeTwilio) -> None:
    reply = twilio_inbound(rig, "+14155550199", " stop ")
    assert reply.status_code == 200 and "<Message>" in reply.text and "unsubscribed" in reply.text.lower()
    put_profile(rig, "late", "sms:marketing", phone="+14155550199")
    post_events(rig, {"type": "promo.sent", "user_id": "late"})
    rig.settle()
    assert sms_of(rig, "late") == []
    [skip] = rig.client.get("/v1/messages", params={"user_id": "late"}).json()["skipped"]
    assert skip["reason"] == "no_eligible_channel"
    assert skip["decisions"] == [{"channel": "sms", "eligible": False, "reason": "opted_out"}]
    assert twilio_inbound(rig, "+14155550199", "START", "SM2").status_code == 200
    post_events(rig, {"type": "promo.sent", "user_id": "late"})
    rig.settle()
    offers = [m["dispatch"] for m in sms_of(rig, "late") if m["message"] == "offer"]
    assert offers == ["sent"]  # lifted by a START from the number


def test_one_stop_opts_out_every_profile_sharing_the_number(rig: LocalServer, twilio: FakeTwilio) -> None:
    for user in ("parent", "child"):
        put_profile(rig, user, "sms:marketing", "sms:transactional", phone=PHONE)
    assert twilio_inbound(rig, PHONE, "STOP").status_code == 200
    rig.settle()
    for user in ("parent", "child"):
        post_events(rig, {"type": "promo.sent", "user_id": user})
    rig.settle()
    offers = [m for u in ("parent", "child") for m in sms_of(rig, u) if m["message"] == "offer"]
    assert offers == []
    for user in ("parent", "child"):
        [skip] = rig.client.get("/v1/messages", params={"user_id": user}).json()["skipped"]
        assert skip["decisions"][0]["reason"] == "opted_out"


class _BrokenOnFifty:
    """A provider with a bug: it raises on the 50th message it is handed, the first time only."""

    name = "buggy"

    def __init__(self) -> None:
        self.calls = 0
        self.taken: list[str] = []

    def send(self, message: OutboundMessage) -> str:
        self.calls += 1
        if self.calls == 50:
            raise RuntimeError("bug in the provider")
        self.taken.append(message.message_id)
        return f"id-{message.message_id}"


def test_a_provider_bug_on_one_message_of_a_batch_of_100_affects_that_message_only(
        start_local: StartLocal) -> None:
    """The provider raises something it did not map on the 50th message: the dispatcher cannot tell
    whether it took the message, so that one is `unknown` (never sent again, never `failed`); the
    other 99 are sent."""
    provider = _BrokenOnFifty()
    local = start_local(providers={"*": [provider]})
    users = [f"u{n:03d}" for n in range(100)]
    for user in users:
        put_profile(local, user, phone=PHONE)
    reply = post_events(local, {"events": [{"type": "order.placed", "user_id": u, "properties": {"order_id": u}}
                                           for u in users]})
    assert reply.json()["accepted"] == 100
    local.settle()
    pushes = [m for u in users for m in local.messages(u) if m["channel"] == "push"]
    by_dispatch: dict[str, list[str]] = {}
    for message in pushes:
        by_dispatch.setdefault(message["dispatch"], []).append(message["message_id"])
    assert len(by_dispatch["sent"]) == 99 and sorted(by_dispatch["sent"]) == sorted(provider.taken)
    [in_doubt] = by_dispatch["unknown"]
    assert set(by_dispatch) == {"sent", "unknown"}
    doubtful = next(m for m in pushes if m["message_id"] == in_doubt)
    assert doubtful["attempts"] == 1 and "RuntimeError: bug in the provider" in doubtful["error"]
    local.advance(3600)
    assert provider.calls == 100 and in_doubt not in provider.taken


def test_a_retry_that_falls_into_quiet_hours_waits_for_the_morning(rig: LocalServer, twilio: FakeTwilio) -> None:
    """The offer's first attempt (20:59:58 local) meets a 503; its retries would land after 21:00,
    inside the recipient's quiet hours: it waits until 08:00, then goes."""
    rig.clock.advance_to(rig.clock.now().replace(hour=20, minute=59, second=58))
    twilio.script = [503, 503]
    put_profile(rig, "u1", "sms:marketing", phone=PHONE)
    post_events(rig, {"type": "promo.sent", "user_id": "u1"})
    rig.advance(10)
    [sms] = sms_of(rig, "u1")
    assert (sms["dispatch"], sms["error"], twilio.requests) == ("pending", "quiet hours", 2)
    rig.advance(11 * 3600 - 10)  # 07:59:58 the next day
    assert sms_of(rig, "u1")[0]["dispatch"] == "pending" and twilio.requests == 2
    rig.advance(10)
    [sent] = sms_of(rig, "u1")
    assert sent["dispatch"] == "sent" and sent["status_at"].startswith(
        (rig.clock.now().date()).isoformat() + "T08:00:00")


def test_a_status_callback_with_a_non_numeric_error_code_is_a_400_not_a_500(rig: LocalServer,
                                                                            twilio: FakeTwilio) -> None:
    """Twilio's error codes are numbers: anything else is refused by field and changes nothing."""
    put_profile(rig, "u1", "sms:marketing", phone=PHONE)
    post_events(rig, {"type": "promo.sent", "user_id": "u1"})
    rig.settle()
    [sms] = sms_of(rig, "u1")
    reply = twilio_post(rig, "status", {"MessageSid": sms["provider_id"], "MessageStatus": "undelivered",
                                         "ErrorCode": "not-a-number"})
    assert reply.status_code == 400, reply.text
    assert reply.json()["errors"][0]["field"] == "ErrorCode"
    rig.settle()
    assert sms_of(rig, "u1")[0]["status"] == "sent"
    assert rig.client.get("/v1/profiles/u1").json()["phone"] == PHONE


def test_an_inbound_sms_without_a_message_sid_is_processed_once_when_replayed(rig: LocalServer) -> None:
    put_profile(rig, "u1", "sms:marketing", phone=PHONE)
    params = {"From": PHONE, "To": "+15005550006", "Body": "STOP"}
    for _ in range(2):
        assert twilio_post(rig, "inbound", params).status_code == 200
    rig.settle()
    confirmations = [m for m in sms_of(rig, "u1") if m["message"] == "stop_confirmation"]
    assert len(confirmations) == 1
    rig.advance(120)  # the same words two minutes later are a new message
    assert twilio_post(rig, "inbound", params).status_code == 200
    rig.settle()
    assert len([m for m in sms_of(rig, "u1") if m["message"] == "stop_confirmation"]) == 2
