"""`journey serve --log-format json`: a whole run's output is one JSON object a line, with a line
per batch, decision, send, failure, sweep and request, and never a profile's phone or email."""

from __future__ import annotations

import io
import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from channels import Choice, Decision
from engine.host.logs import JsonFormatter, MaskFilter, TextFormatter, fields, log_decisions, log_dispatch, mask
from engine.state import Outcome, Send
from tests.server.conftest import (
    ServerProcess,
    StartServer,
    free_port,
    post_events,
    put_profile,
    server_env,
    wait_for_sweeps,
    wait_until,
)

PEOPLE = {  # user -> (phone, email)
    "ann": ("+14155550100", "ann.lee+news@example.com"),
    "bob": ("+442071838750", "bob@example.org"),
    "cyd": ("+33612345678", None),  # no email: the email step is skipped (no_address)
}
ALERTS = """\
id: alerts
name: Alerts
category: transactional
trigger:
  event: alert.raised
steps:
  - {id: hook, type: send, message: alert_hook, channels: [webhook]}
  - {id: mail, type: send, message: alert_mail, channels: [email]}
  - {id: text, type: send, message: alert_text, channels: [sms]}
messages:
  alert_hook:
    webhook: {payload: {email: "{{ profile.email }}", phone: "{{ profile.phone }}"}}
  alert_mail:
    email: {subject: "Alert for {{ profile.email }}", body: "We will text {{ profile.phone }} too"}
  alert_text:
    sms: {text: "Alert: check your mail"}
"""


def pending_webhooks(server: ServerProcess, user: str) -> bool:
    """The user's webhook message has been tried (and failed: nothing listens) at least once."""
    return any(m["channel"] == "webhook" and m["attempts"] >= 1 and m["dispatch"] == "pending"
               for m in server.messages(user))


def test_a_json_run_is_one_object_a_line_and_never_shows_a_phone_or_an_email(
        tmp_path: Path, journeys_dir: Path, start_server: StartServer) -> None:
    (journeys_dir / "alerts.yaml").write_text(ALERTS, encoding="utf-8")
    providers = tmp_path / "providers.yaml"
    providers.write_text(f"""providers:
  - {{type: webhook, url: "http://127.0.0.1:{free_port()}/hook", secret: "${{HOOK_SECRET}}", timeout: 2}}
  - {{type: file, path: "{tmp_path / 'outbox.jsonl'}"}}
""", encoding="utf-8")
    server = start_server(env={**server_env(), "HOOK_SECRET": "s3cret"},
                          args=["--log-format", "json", "--providers", str(providers)])
    for user, (phone, email) in PEOPLE.items():
        put_profile(server, user, "sms:transactional", "email:transactional", "webhook:transactional",
                    phone=phone, email=email)
    batch = {"events": [{"id": f"alert-{user}", "type": "alert.raised", "user_id": user} for user in PEOPLE]
             + [{"id": "order-ann", "type": "order.placed", "user_id": "ann", "properties": {"order_id": "A1"}},
                {"type": "alert.raised"}]}  # the last one is rejected: no user_id
    assert post_events(server, batch).json()["accepted"] == 4
    stop = {"id": "stop-bob", "type": "sms.inbound", "user_id": "bob", "properties": {"text": "STOP"}}
    assert post_events(server, stop).is_success
    assert server.client.get("/v1/messages", params={"user_id": PEOPLE["ann"][0]}).status_code == 200

    wait_until(lambda: all(pending_webhooks(server, user) for user in PEOPLE), what="failed webhook attempts")
    wait_until(lambda: any(m["message"] == "order_shipped" and m["dispatch"] == "sent"
                           for m in server.messages("ann")), timeout=10, what="the SMS after the 2 s wait")
    wait_for_sweeps("inbox", "timers", "outbox", on=[server])
    webhooks = {m["message_id"] for user in PEOPLE for m in server.messages(user) if m["channel"] == "webhook"}
    server.stop()

    text = server.log.read_text(encoding="utf-8")
    records = [json.loads(line) for line in text.splitlines() if line.strip()]  # every line is JSON
    assert all(isinstance(r, dict) and {"time", "level", "logger", "msg"} <= r.keys() for r in records)
    for phone, email in PEOPLE.values():
        assert phone not in text and phone.lstrip("+") not in text
        assert email is None or email.lower() not in text.lower()

    def lines(logger: str, msg: str, **match: Any) -> list[dict[str, Any]]:
        return [r for r in records if r["logger"] == logger and r["msg"] == msg
                and all(r.get(k) == v for k, v in match.items())]

    assert lines("journey.ingest", "batch", events=4, accepted=4, duplicates=0, rejected=1)
    [sent] = lines("journey.decisions", "send", user="ann", step="received")
    assert (sent["journey"], sent["message"], sent["channel"]) == ("order-updates", "order_received", "push")
    assert sent["version"] and sent["instance"] and sent["message_id"]
    [skip] = lines("journey.decisions", "skip", user="cyd", step="mail")
    assert (skip["journey"], skip["message"], skip["channels"]) == ("alerts", "alert_mail", "email:no_address")
    assert lines("journey.decisions", "send", user="bob", message="stop_confirmation", channel="sms")
    assert lines("journey.dispatcher", "sent", message_id=sent["message_id"], channel="push", provider="file",
                 status="sent")
    failures = lines("journey.dispatcher", "temporary failure", channel="webhook", provider="webhook")
    assert {r["message_id"] for r in failures} == webhooks
    assert lines("journey.dispatcher", "pending", channel="webhook", status="queued")
    assert any(r["handled"] >= 1 for r in lines("journey.sweeps", "sweep", sweep="timers"))
    assert lines("journey.serve", "serving", journeys=4)
    access = [r for r in records if r["logger"] == "uvicorn.access"]
    assert any(r["method"] == "POST" and r["path"] == "/v1/events" and r["status"] == 202 for r in access)
    assert any(r["path"] == "/v1/messages?user_id=%2B1415\u2022\u2022\u20220100" for r in access), "masked, not dropped"



@pytest.mark.parametrize(("text", "masked"), [
    ("+14155550100", "+1415\u2022\u2022\u20220100"),
    ("to=%2B14155550100&x=1", "to=%2B1415\u2022\u2022\u20220100&x=1"),
    ("+12345678", "+12\u2022\u2022\u202278"),
    ("ann.lee+news@example.com", "a\u2022\u2022\u2022@example.com"),
    ("mailto:bob%40example.org", "mailto:b\u2022\u2022\u2022%40example.org"),
    ("+1234567890123456 is too long for a phone, 2026-01-05T10:00:00+00:00 is a time", None),
    ("database=postgresql+psycopg://postgres@127.0.0.1:5432/journey", None),  # a user name, not an address
    ("database=postgresql+psycopg://app@db.example.com/journey", None),
    ("user journey@10.1.2.3 is a host, ann@example.com an address", "user journey@10.1.2.3 is a host, "
                                                                    "a\u2022\u2022\u2022@example.com an address"),
])
def test_mask_keeps_a_few_digits_of_a_phone_and_the_domain_of_an_email(text: str, masked: str | None) -> None:
    assert mask(text) == (text if masked is None else masked)


def capture(format: str) -> tuple[logging.Handler, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(MaskFilter())
    handler.setFormatter(JsonFormatter() if format == "json" else TextFormatter())
    return handler, stream


@pytest.mark.parametrize("format", ["json", "text"])
def test_a_cancel_is_one_line_with_its_ids_and_reason(format: str) -> None:
    handler, stream = capture(format)
    log = logging.getLogger("journey.dispatcher")
    log.addHandler(handler)
    level = log.level
    log.setLevel(logging.INFO)  # setLevel, not `.level =`: it clears the logger's isEnabledFor cache
    try:
        log_dispatch({"message_id": "m1", "dispatch": "cancelled", "status": "cancelled", "attempts": 0,
                      "next_attempt_at": None, "provider": None, "error": "opted_out"}, "u1", "sms")
        try:
            raise ValueError("no such number +14155550100")
        except ValueError:
            log.exception("provider raised", extra=fields(user="ann@example.com"))
    finally:
        log.removeHandler(handler)
        log.setLevel(level)
    text = stream.getvalue()
    assert "4155550100" not in text and "ann@" not in text
    if format == "json":
        first, second = (json.loads(line) for line in text.splitlines())
        assert {k: v for k, v in first.items() if k != "time"} == {
            "level": "info", "logger": "journey.dispatcher", "msg": "cancelled", "message_id": "m1", "user": "u1",
            "channel": "sms", "status": "cancelled", "attempts": 0, "error": "opted_out"}
        assert second["user"] == "a\u2022\u2022\u2022@example.com" and "ValueError" in second["exc"]
    else:
        assert text.split("\n")[0].split(" ", 1)[1] == ("info journey.dispatcher cancelled message_id=m1 user=u1 "
                                                         "channel=sms status=cancelled attempts=0 error=opted_out")


def test_an_auto_send_logs_every_candidates_reach_and_cost_the_order_and_why() -> None:
    """The `send` line of a strategy auto decision, as the journey.decisions logger writes it."""
    handler, stream = capture("json")
    log = logging.getLogger("journey.decisions")
    log.addHandler(handler)
    level = log.level
    log.setLevel(logging.INFO)
    reason = "sms first: reach 0.90 at 0.0083 beats push 0.05 at 0.0001 for urgency high"
    send = Send(message_id="i1:m1", instance_id="i1", journey_id="alert", user_id="ann", step="warn",
                message="warning", channel="sms", category="transactional", content={"text": "Hi"}, cost=0.0083,
                encoding="GSM-7", segments=1, at=datetime(2026, 1, 5, 15, tzinfo=UTC),
                decisions=(Decision("push", True, None), Decision("sms", True, None)),
                choice=Choice("auto", ("sms", "push"), reason,
                              {"push": (0.05, 0.0001, 0.05), "sms": (0.9, 0.0083, 0.9)}))
    try:
        log_decisions([Outcome(None, [send])])
    finally:
        log.removeHandler(handler)
        log.setLevel(level)
    [line] = [json.loads(text) for text in stream.getvalue().splitlines()]
    assert (line["msg"], line["channel"], line["order"], line["why"]) == ("send", "sms", "sms,push", reason)
    assert line["reach"] == "push:0.05@0.0001 sms:0.90@0.0083"
