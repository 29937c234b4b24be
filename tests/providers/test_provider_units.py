"""Each provider against a local server that speaks its vendor's protocol."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from provider_fakes import ACCOUNT_SID, AUTH_TOKEN, FakeFcm, FakeTwilio, HookSink, SmtpSink, free_port

from channels.providers import (
    InDoubtDeliveryError,
    OutboundMessage,
    PermanentDeliveryError,
    TemporaryDeliveryError,
)
from channels.providers.fcm import FcmProvider
from channels.providers.local import FileProvider
from channels.providers.smtp import SmtpProvider
from channels.providers.twilio import TwilioProvider
from channels.providers.webhook import SIGNATURE_HEADER, WebhookProvider, sign, verify

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
    sms, mms = fake_twilio.messages
    assert sid == "SM" + "1".rjust(32, "0")
    assert sms == {"To": ["+14155550100"], "From": ["+15005550006"], "Body": ["Hi Ann"],
                   "StatusCallback": ["https://journeys.example.com/v1/webhooks/twilio/status"]}
    assert mms["MediaUrl"] == ["https://cdn.example.com/a.png"] and mms["Body"] == ["Look"]


def test_twilio_rcs_goes_through_a_messaging_service_with_sms_fallback(fake_twilio: FakeTwilio) -> None:
    provider = twilio(fake_twilio, rcs_messaging_service_sid="MG1", sms_fallback_from="+15005550006")
    content = {"text": "Your table is ready", "card": {"title": "Table 4", "description": "Come in",
                                                       "media_url": "https://cdn.example.com/t.png"},
               "suggestions": [{"reply": "On my way"}, {"open_url": "https://example.com/m", "text": "Menu"}]}
    provider.send(message("rcs", content, "+14155550100"))
    [sent] = fake_twilio.messages
    assert sent["MessagingServiceSid"] == ["MG1"] and sent["FallbackFrom"] == ["+15005550006"]
    assert "From" not in sent and sent["MediaUrl"] == ["https://cdn.example.com/t.png"]
    assert sent["Body"] == ["Table 4\nCome in\nYour table is ready\nMenu: https://example.com/m"]


def test_twilio_rcs_with_a_content_template(fake_twilio: FakeTwilio) -> None:
    provider = twilio(fake_twilio, messaging_service_sid="MG2", rcs_content_sid="HX1")
    content = {"text": "Ready", "card": {"title": "T4"}, "suggestions": [{"reply": "Yes"}]}
    provider.send(message("rcs", content, "+14155550100"))
    [sent] = fake_twilio.messages
    assert sent["ContentSid"] == ["HX1"] and "Body" not in sent
    assert json.loads(sent["ContentVariables"][0]) == {"text": "Ready", "title": "T4", "suggestion_1_text": "Yes"}


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
