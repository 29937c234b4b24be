"""Each provider against a local server that speaks its vendor's protocol."""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from provider_fakes import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    GARBLED_PHONE,
    RBM_AGENT,
    RBM_CLIENT_TOKEN,
    FakeFcm,
    FakeRbm,
    FakeTwilio,
    HookSink,
    SmtpSink,
    free_port,
)

from channels.providers import (
    InDoubtDeliveryError,
    OutboundMessage,
    PermanentDeliveryError,
    TemporaryDeliveryError,
)
from channels.providers.fcm import FcmProvider
from channels.providers.local import FileProvider
from channels.providers.rbm import RbmProvider, message_uuid
from channels.providers.smtp import SmtpProvider
from channels.providers.twilio import TwilioProvider
from channels.providers.twilio_content import ContentCache
from channels.providers.webhook import SIGNATURE_HEADER, WebhookProvider, sign, verify
from engine.host.lanes import Lanes

FROZEN = lambda: 1_767_600_000.0  # noqa: E731 - the providers' clock: 2026-01-05T08:00:00Z


def message(channel: str, content: dict[str, Any], address: str | None, category: str = "transactional",
            message_id: str = "m1") -> OutboundMessage:
    return OutboundMessage(message_id, "u1", channel, category, content, address)


def twilio(fake: FakeTwilio, **options: Any) -> TwilioProvider:
    options.setdefault("from_", "+15005550006")
    return TwilioProvider(ACCOUNT_SID, AUTH_TOKEN, api_base_url=fake.url, timeout=0.5, **options)


# --- SMTP -------------------------------------------------------------------------------

def test_smtp_sends_text_and_html_parts(smtp_sink: SmtpSink) -> None:
    provider = SmtpProvider("127.0.0.1", "Shop <shop@example.com>", port=smtp_sink.port, clock=FROZEN)
    content = {"subject": "Your cart", "body": "3 items wait", "html": "<p>3 items wait</p>"}
    provider_id = provider.send(message("email", content, "ann@example.com"))
    [received] = smtp_sink.messages
    assert smtp_sink.envelopes == [("shop@example.com", ["ann@example.com"])]
    assert received["Subject"] == "Your cart" and received["To"] == "ann@example.com"
    assert received["Message-ID"] == provider_id and received["X-Journey-Message-Id"] == "m1"
    assert received["Date"] == "Mon, 05 Jan 2026 08:00:00 +0000"  # the clock handed in, not the wall clock
    parts = {p.get_content_type(): p.get_payload(decode=True).decode().strip() for p in received.walk()
             if not p.is_multipart()}
    assert parts == {"text/plain": "3 items wait", "text/html": "<p>3 items wait</p>"}
    assert received["List-Unsubscribe"] is None


def test_smtp_marketing_mail_has_list_unsubscribe(smtp_sink: SmtpSink) -> None:
    provider = SmtpProvider("127.0.0.1", "shop@example.com", port=smtp_sink.port, clock=FROZEN,
                            unsubscribe_url="https://example.com/u?user={user_id}&m={message_id}",
                            unsubscribe_mailto="unsubscribe@example.com?subject={user_id}")
    provider.send(message("email", {"subject": "Sale", "body": "50% off"}, "ann@example.com", "marketing"))
    [received] = smtp_sink.messages
    assert re.sub(r"\r?\n", "", received["List-Unsubscribe"]) == ("<mailto:unsubscribe@example.com?subject=u1>, "
                                            "<https://example.com/u?user=u1&m=m1>")
    assert received["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert received.get_content_type() == "text/plain"


def test_smtp_errors_are_mapped(smtp_sink: SmtpSink) -> None:
    provider = SmtpProvider("127.0.0.1", "shop@example.com", port=smtp_sink.port, clock=FROZEN)
    with pytest.raises(PermanentDeliveryError) as bad:
        provider.send(message("email", {"subject": "s", "body": "b"}, "nobody@example.com"))
    assert bad.value.unusable_address and "550" in str(bad.value)
    with pytest.raises(TemporaryDeliveryError):
        provider.send(message("email", {"subject": "s", "body": "b"}, "busy@example.com"))
    closed = SmtpProvider("127.0.0.1", "shop@example.com", port=_closed_port(), timeout=1, clock=FROZEN)
    with pytest.raises(TemporaryDeliveryError) as down:
        closed.send(message("email", {"subject": "s", "body": "b"}, "ann@example.com"))
    assert isinstance(down.value.__cause__, OSError)
    assert smtp_sink.messages == []


def test_smtp_no_reply_once_the_message_went_out_is_in_doubt(smtp_sink: SmtpSink) -> None:
    """The relay kept the message but its reply came after the client's timeout: in doubt, not
    temporary (a retry would deliver it twice)."""
    provider = SmtpProvider("127.0.0.1", "shop@example.com", port=smtp_sink.port, timeout=0.5, clock=FROZEN)
    with pytest.raises(InDoubtDeliveryError, match="after the message went out"):
        provider.send(message("email", {"subject": "s", "body": "b"}, "slow@example.com"))
    assert len(smtp_sink.messages) == 1


def test_smtp_starttls_refused_by_a_plain_server_is_temporary(smtp_sink: SmtpSink) -> None:
    provider = SmtpProvider("127.0.0.1", "shop@example.com", port=smtp_sink.port, starttls=True, clock=FROZEN)
    with pytest.raises(TemporaryDeliveryError):
        provider.send(message("email", {"subject": "s", "body": "b"}, "ann@example.com"))


def _closed_port() -> int:
    return free_port()


# --- Twilio -----------------------------------------------------------------------------

def test_twilio_sms_and_mms(fake_twilio: FakeTwilio) -> None:
    provider = twilio(fake_twilio, status_callback="https://journeys.example.com/v1/webhooks/twilio/status")
    sid = provider.send(message("sms", {"text": "Hi Ann"}, "+14155550100"))
    provider.send(message("mms", {"text": "Look", "media_url": "https://cdn.example.com/a.png"}, "+14155550100"))
    provider.send(message("mms", {"text": "Both", "media_url": ["https://cdn.example.com/a.png",
                                                                "https://cdn.example.com/b.mp4"]}, "+14155550100"))
    sms, mms, two = fake_twilio.messages
    assert two["MediaUrl"] == ["https://cdn.example.com/a.png", "https://cdn.example.com/b.mp4"]
    assert sid == "SM" + "1".rjust(32, "0")
    assert sms == {"To": ["+14155550100"], "From": ["+15005550006"], "Body": ["Hi Ann"],
                   "StatusCallback": ["https://journeys.example.com/v1/webhooks/twilio/status"]}
    assert mms["MediaUrl"] == ["https://cdn.example.com/a.png"] and mms["Body"] == ["Look"]


def test_twilio_rcs_card_and_chips_go_through_the_content_api_and_a_messaging_service(
        fake_twilio: FakeTwilio, tmp_path: Path) -> None:
    cache = ContentCache(tmp_path / "contents.jsonl")
    provider = twilio(fake_twilio, rcs_messaging_service_sid="MG1", sms_fallback_from="+15005550006",
                      content_cache=cache)
    content = {"text": "Your table is ready", "card": {"title": "Table 4", "description": "Come in",
                                                       "media_url": "https://cdn.example.com/t.png"},
               "suggestions": [{"reply": "On my way", "postback": "coming"},
                               {"open_url": "https://example.com/m", "text": "Menu"},
                               {"dial": "+14155550100", "text": "Call us"}]}
    provider.send(message("rcs", content, "+14155550100"))
    [created] = fake_twilio.contents
    assert created["language"] == "en" and created["friendly_name"].startswith("journey-")
    assert created["types"] == {"twilio/card": {
        "title": "Table 4", "body": "Your table is ready\n\nCome in", "media": ["https://cdn.example.com/t.png"],
        "actions": [{"type": "QUICK_REPLY", "title": "On my way", "id": "coming"},
                    {"type": "URL", "title": "Menu", "url": "https://example.com/m"},
                    {"type": "PHONE_NUMBER", "title": "Call us", "phone": "+14155550100"}]}}
    [sent] = fake_twilio.messages
    assert sent == {"To": ["+14155550100"], "MessagingServiceSid": ["MG1"], "FallbackFrom": ["+15005550006"],
                    "ContentSid": ["HX" + "1".rjust(32, "0")]}
    provider.send(message("rcs", content, "+14155550100", message_id="m2"))  # the same content: created once
    restarted = ContentCache(tmp_path / "contents.jsonl")
    again = twilio(fake_twilio, rcs_messaging_service_sid="MG1", content_cache=restarted)
    again.send(message("rcs", content, "+14155550199", message_id="m3"))  # after a restart: from the file
    assert len(fake_twilio.contents) == 1
    assert [m["ContentSid"] for m in fake_twilio.messages] == [["HX" + "1".rjust(32, "0")]] * 3


def test_twilio_rcs_text_alone_stays_a_plain_body(fake_twilio: FakeTwilio) -> None:
    provider = twilio(fake_twilio, messaging_service_sid="MG2")
    provider.send(message("rcs", {"text": "Your table is ready"}, "+14155550100"))
    [sent] = fake_twilio.messages
    assert sent == {"To": ["+14155550100"], "MessagingServiceSid": ["MG2"], "Body": ["Your table is ready"]}
    assert fake_twilio.contents == []


def test_twilio_chip_lists_use_quick_reply_or_call_to_action(fake_twilio: FakeTwilio) -> None:
    provider = twilio(fake_twilio, messaging_service_sid="MG2")
    replies = {"text": "Coming?", "suggestions": [{"reply": "Yes", "postback": "rsvp_yes"}, {"reply": "No"}]}
    links = {"text": "Need help?", "suggestions": [{"dial": "+14155550100", "text": "Call"},
                                                   {"view_location": {"query": "Acme Store, Main St"}, "text": "Map"}]}
    provider.send(message("rcs", replies, "+14155550100"))
    provider.send(message("rcs", links, "+14155550100", message_id="m2"))
    assert [c["types"] for c in fake_twilio.contents] == [
        {"twilio/quick-reply": {"body": "Coming?", "actions": [
            {"type": "QUICK_REPLY", "title": "Yes", "id": "rsvp_yes"},
            {"type": "QUICK_REPLY", "title": "No", "id": "No"}]}},
        {"twilio/call-to-action": {"body": "Need help?", "actions": [
            {"type": "PHONE_NUMBER", "title": "Call", "phone": "+14155550100"},
            {"type": "URL", "title": "Map",
             "url": "https://www.google.com/maps/search/?api=1&query=Acme%20Store%2C%20Main%20St"}]}},
    ]


def test_twilio_rcs_with_a_content_template(fake_twilio: FakeTwilio) -> None:
    provider = twilio(fake_twilio, messaging_service_sid="MG2", rcs_content_sid="HX1")
    content = {"text": "Ready", "card": {"title": "T4"}, "suggestions": [{"reply": "Yes"}]}
    provider.send(message("rcs", content, "+14155550100"))
    [sent] = fake_twilio.messages
    assert sent["ContentSid"] == ["HX1"] and "Body" not in sent
    assert json.loads(sent["ContentVariables"][0]) == {"text": "Ready", "title": "T4", "suggestion_1_text": "Yes"}


def test_twilio_a_carousel_whose_chips_failed_after_it_went_out_is_in_doubt(fake_twilio: FakeTwilio) -> None:
    """A carousel and its chips are two Twilio messages: once the first went out, a failure of the
    second is no longer temporary (a retry would send the carousel twice), nor a failure to try elsewhere."""
    provider = twilio(fake_twilio, messaging_service_sid="MG2")
    cards = [{"title": "One", "media_url": "https://cdn.example.com/1.jpg"},
             {"title": "Two", "media_url": "https://cdn.example.com/2.jpg"}]
    content = {"text": "Pick one", "carousel": {"cards": cards}, "suggestions": [{"reply": "Yes"}]}
    fake_twilio.script = ["ok", 503]
    with pytest.raises(InDoubtDeliveryError, match="1 of its messages went out, then: twilio 20503"):
        provider.send(message("rcs", content, "+14155550100"))
    assert len(fake_twilio.messages) == 1 and len(fake_twilio.contents) == 2
    fake_twilio.script = [503]  # the first failed: nothing went out, try again later
    with pytest.raises(TemporaryDeliveryError):
        provider.send(message("rcs", content, "+14155550100", message_id="m2"))


def test_twilio_content_a_failed_create_is_temporary_and_the_next_send_creates_it(fake_twilio: FakeTwilio) -> None:
    provider = twilio(fake_twilio, messaging_service_sid="MG2", content_base_url=f"http://127.0.0.1:{free_port()}")
    content = {"text": "Coming?", "suggestions": [{"reply": "Yes"}]}
    with pytest.raises(TemporaryDeliveryError, match="twilio content: ConnectionError"):
        provider.send(message("rcs", content, "+14155550100"))
    assert fake_twilio.requests == 0  # no message went out without its content
    provider.client.content.base_url = fake_twilio.url
    provider.send(message("rcs", content, "+14155550100"))
    assert len(fake_twilio.contents) == 1 and len(fake_twilio.messages) == 1


@pytest.mark.parametrize(("code", "kind", "unusable"), [
    (21610, PermanentDeliveryError, True), (30006, PermanentDeliveryError, True),
    (21211, PermanentDeliveryError, True), (21614, PermanentDeliveryError, True),
    (21617, PermanentDeliveryError, False), (20429, TemporaryDeliveryError, None),
])
def test_twilio_error_codes(fake_twilio: FakeTwilio, code: int, kind: type[Exception], unusable: bool | None) -> None:
    fake_twilio.script = [code]
    with pytest.raises(kind) as caught:
        twilio(fake_twilio).send(message("sms", {"text": "x"}, "+14155550100"))
    assert str(code) in str(caught.value)
    assert getattr(caught.value, "unusable_address", None) is unusable
    assert type(caught.value.__cause__).__name__ == "TwilioRestException"


def test_twilio_no_answer_once_the_request_went_out_is_in_doubt(fake_twilio: FakeTwilio) -> None:
    """The request reached Twilio and no answer came within the timeout: Twilio may well have the
    message (this fake keeps nothing, the real one often does). Not temporary: a retry may text twice."""
    fake_twilio.script = ["timeout"]
    with pytest.raises(InDoubtDeliveryError, match=r"no answer within 0.5 s"):
        twilio(fake_twilio).send(message("sms", {"text": "x"}, "+14155550100"))
    assert fake_twilio.requests == 1


def test_twilio_a_201_that_is_not_json_is_in_doubt(fake_twilio: FakeTwilio) -> None:
    fake_twilio.script = ["not-json"]
    with pytest.raises(InDoubtDeliveryError, match="answered, but not with a message"):
        twilio(fake_twilio).send(message("sms", {"text": "x"}, "+14155550100"))
    assert len(fake_twilio.messages) == 1  # it did take it


def test_twilio_unreachable_is_temporary() -> None:
    provider = TwilioProvider(ACCOUNT_SID, AUTH_TOKEN, from_="+15005550006", api_base_url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(TemporaryDeliveryError, match="ConnectionError"):
        provider.send(message("sms", {"text": "x"}, "+14155550100"))


def test_twilio_wrong_credentials_are_permanent(fake_twilio: FakeTwilio) -> None:
    provider = TwilioProvider(ACCOUNT_SID, "wrong", from_="+15005550006", api_base_url=fake_twilio.url)
    with pytest.raises(PermanentDeliveryError):
        provider.send(message("sms", {"text": "x"}, "+14155550100"))
    assert "wrong" not in repr(provider) and AUTH_TOKEN not in repr(twilio(fake_twilio))


# --- FCM --------------------------------------------------------------------------------

def fcm(server: FakeFcm, account: dict[str, str]) -> FcmProvider:
    return FcmProvider(account, base_url=server.url, token_uri=f"{server.url}/token", clock=FROZEN)


def test_fcm_signs_a_jwt_gets_a_token_and_sends(fake_fcm: tuple[FakeFcm, dict[str, str]]) -> None:
    server, account = fake_fcm
    provider = fcm(server, account)
    first = provider.send(message("push", {"title": "Hi", "body": "Your cart"}, "tok-1"))
    provider.send(message("push", {"title": "Again", "body": "Still there"}, "tok-1", message_id="m2"))
    assert first == "projects/demo-project/messages/0:1"
    assert server.tokens_issued == 1  # cached
    [claims] = server.assertions
    assert claims == {"iss": account["client_email"], "scope": "https://www.googleapis.com/auth/firebase.messaging",
                      "aud": f"{server.url}/token", "iat": 1_767_600_000, "exp": 1_767_603_600}
    assert server.sent[0] == {"token": "tok-1", "notification": {"title": "Hi", "body": "Your cart"},
                              "data": {"message_id": "m1"}}


def test_fcm_a_200_that_is_not_json_is_in_doubt(fake_fcm: tuple[FakeFcm, dict[str, str]]) -> None:
    server, account = fake_fcm
    with pytest.raises(InDoubtDeliveryError, match="HTTP 200, but not a message"):
        fcm(server, account).send(message("push", {"title": "Hi", "body": "x"}, "garbled-token"))
    assert len(server.sent) == 1


def test_fcm_unregistered_token_is_permanent_and_unusable(fake_fcm: tuple[FakeFcm, dict[str, str]]) -> None:
    server, account = fake_fcm
    with pytest.raises(PermanentDeliveryError) as caught:
        fcm(server, account).send(message("push", {"title": "Hi", "body": "x"}, "dead-token"))
    assert caught.value.unusable_address and "UNREGISTERED" in str(caught.value)


def test_fcm_bad_key_and_unreachable_server_are_temporary(fake_fcm: tuple[FakeFcm, dict[str, str]]) -> None:
    server, account = fake_fcm
    from provider_fakes import service_account

    other, _ = service_account()
    with pytest.raises(TemporaryDeliveryError, match="invalid_grant"):
        fcm(server, {**account, "private_key": other["private_key"]}).send(message("push", {"body": "x"}, "t"))
    down = FcmProvider(account, base_url="http://127.0.0.1:9", token_uri="http://127.0.0.1:9/token", timeout=1,
                       clock=FROZEN)
    with pytest.raises(TemporaryDeliveryError):
        down.send(message("push", {"body": "x"}, "t"))


# --- generic webhook --------------------------------------------------------------------

def test_webhook_posts_signed_json(hook_sink: HookSink) -> None:
    provider = WebhookProvider(f"{hook_sink.url}/hook", "s3cret", clock=FROZEN)
    assert provider.send(message("webhook", {"text": "hello"}, None)) == "hook-1"
    [(headers, body)] = hook_sink.received
    assert json.loads(body) == {"message_id": "m1", "user_id": "u1", "channel": "webhook",
                                "category": "transactional", "to": None, "content": {"text": "hello"}}
    header = headers[SIGNATURE_HEADER.lower()]
    assert header == sign("s3cret", body, 1_767_600_000) and header.startswith("t=1767600000,v1=")
    assert verify("s3cret", body, header, now=1_767_600_100)
    assert not verify("s3cret", body, header, now=1_767_600_000 + 301)  # replayed too late
    assert not verify("other", body, header, now=1_767_600_000)
    assert not verify("s3cret", body + b" ", header, now=1_767_600_000)


def test_webhook_statuses_are_mapped(hook_sink: HookSink) -> None:
    provider = WebhookProvider(f"{hook_sink.url}/hook", "s3cret", clock=FROZEN)
    hook_sink.script = [503, 404]
    with pytest.raises(TemporaryDeliveryError):
        provider.send(message("webhook", {"text": "x"}, None))
    with pytest.raises(PermanentDeliveryError):
        provider.send(message("webhook", {"text": "x"}, None))
    assert "s3cret" not in repr(provider)


def test_the_outbox_file_keeps_one_exact_json_line_per_message(tmp_path: Path) -> None:
    """Text as written (no \\u escapes), integers beyond 64 bits exact, one line each, in order."""
    outbox = FileProvider(tmp_path / "outbox.jsonl")
    first = OutboundMessage("m1", "u1", "sms", "marketing", {"text": "Crème brûlée 🍮 ready"}, "+14155550100")
    second = OutboundMessage("m2", "u2", "push", "transactional", {"title": "Order", "n": 2**70}, "tok-2")
    assert outbox.send(first) == "file:m1" and outbox.send(second) == "file:m2"
    outbox.flush()  # buffered until then: the dispatcher flushes a group before it records it sent
    text = (tmp_path / "outbox.jsonl").read_text(encoding="utf-8")
    assert "Crème brûlée 🍮" in text and text.count("\n") == 2
    lines = [json.loads(line) for line in text.splitlines()]
    assert lines == [first.to_dict(), second.to_dict()]
    assert lines[1]["content"]["n"] == 2**70


# --- RCS Business Messaging --------------------------------------------------------------

def rbm(fake: tuple[FakeRbm, dict[str, str]], **options: Any) -> RbmProvider:
    server, account = fake
    return RbmProvider(account, RBM_AGENT, RBM_CLIENT_TOKEN, base_url=server.url, token_uri=f"{server.url}/token",
                       clock=FROZEN, **options)


def test_rbm_retries_carry_the_same_agent_message_ids_so_nothing_arrives_twice(
        fake_rbm: tuple[FakeRbm, dict[str, str]]) -> None:
    """The text went out, then the card's call failed: the retry's text is a 409 (taken as sent)
    and the card goes out once. The dispatcher may therefore retry a send a crash interrupted."""
    server, _ = fake_rbm
    provider = rbm(fake_rbm)
    content = {"text": "Table 4 is ready", "card": {"title": "Table 4", "media_url": "https://cdn.example.com/4.jpg"}}
    server.script = [200, 503]
    with pytest.raises(TemporaryDeliveryError, match="rbm HTTP 503"):
        provider.send(message("rcs", content, "+14155550100"))
    assert provider.send(message("rcs", content, "+14155550100")) == message_uuid("m1")
    assert [(m["messageId"], list(m["contentMessage"])) for m in server.sent] == [
        (message_uuid("m1", ".text"), ["text"]), (message_uuid("m1"), ["richCard"])]
    assert server.assertions[0]["scope"] == "https://www.googleapis.com/auth/rcsbusinessmessaging"
    assert server.tokens_issued == 1
    assert Lanes({"rcs": [provider]}).idempotent_channels() == frozenset({"rcs"})


def test_rbm_a_200_that_is_not_an_agent_message_is_in_doubt_and_its_retry_is_taken_as_sent(
        fake_rbm: tuple[FakeRbm, dict[str, str]]) -> None:
    server, _ = fake_rbm
    provider = rbm(fake_rbm)
    with pytest.raises(InDoubtDeliveryError, match="HTTP 200, but not an agent message"):
        provider.send(message("rcs", {"text": "Hi"}, GARBLED_PHONE))
    assert provider.send(message("rcs", {"text": "Hi"}, GARBLED_PHONE)) == message_uuid("m1")  # 409: had it
    assert [m["messageId"] for m in server.sent] == [message_uuid("m1")]


def test_rbm_sends_at_once_share_one_access_token(fake_rbm: tuple[FakeRbm, dict[str, str]]) -> None:
    """Twenty threads start on a provider without a token; Google's token endpoint takes 100-300 ms.
    One thread fetches it and the others wait: a token per thread would leave all but the last
    one issued refused (401)."""
    server, _ = fake_rbm
    provider = rbm(fake_rbm, concurrency=20)
    phones = [f"+1415555{n:04d}" for n in range(20)]
    with ThreadPoolExecutor(20) as pool:
        ids = list(pool.map(lambda n: provider.send(message("rcs", {"text": "Hi"}, phones[n], message_id=f"m{n}")),
                            range(20)))
    assert ids == [message_uuid(f"m{n}") for n in range(20)]
    assert server.tokens_issued == 1
    assert sorted(m["phone"] for m in server.sent) == phones
    assert server.most_at_once > 1


def test_rbm_capability_check_answers_yes_no_or_cannot_tell(fake_rbm: tuple[FakeRbm, dict[str, str]]) -> None:
    server, _ = fake_rbm
    server.not_capable.add("+14155550199")
    provider = rbm(fake_rbm)
    assert provider.check_rcs("+14155550100") is True
    assert provider.check_rcs("+14155550199") is False
    with pytest.raises(PermanentDeliveryError, match="rbm HTTP 404"):
        provider.send(message("rcs", {"text": "Hi"}, "+14155550199"))
    assert rbm(fake_rbm, capability_timeout=0.05).check_rcs("+14155550100") is None  # RBM answers in 100-300 ms
