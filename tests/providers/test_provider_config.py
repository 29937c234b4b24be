"""The providers file: channels in failover order, secrets from the environment, file:line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from provider_fakes import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio, service_account

from channels.providers import OutboundMessage
from channels.providers.config import ProvidersError, load_providers
from channels.providers.fcm import FcmProvider
from channels.providers.local import FileProvider
from channels.providers.rbm import RbmProvider
from channels.providers.smtp import SmtpProvider
from channels.providers.twilio import TwilioProvider
from channels.providers.webhook import WebhookProvider
from engine.clock import SystemClock

ENV = {"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "BACKUP_TOKEN": "backup-token",
       "SMTP_PASSWORD": "pw", "HOOK_SECRET": "hs"}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "providers.yaml"
    path.write_text(text)
    return path


def test_every_provider_type_and_failover_order(tmp_path: Path) -> None:
    account, _ = service_account()
    (tmp_path / "fcm.json").write_text(json.dumps(account))
    path = write(tmp_path, f"""\
providers:
  - {{name: primary, type: twilio, account_sid: "${{TWILIO_ACCOUNT_SID}}", auth_token: "${{TWILIO_AUTH_TOKEN}}",
     from: "+15005550006", webhook_base_url: "https://journeys.example.com"}}
  - {{name: backup, type: twilio, channels: [sms], account_sid: AC1, auth_token: "${{BACKUP_TOKEN}}",
     messaging_service_sid: MG1}}
  - {{name: mail, type: smtp, host: 127.0.0.1, sender: a@example.com, username: a, password: "${{SMTP_PASSWORD}}"}}
  - {{name: push, type: fcm, service_account_file: "{tmp_path / 'fcm.json'}"}}
  - {{name: hooks, type: webhook, url: "http://127.0.0.1:9/h", secret: "${{HOOK_SECRET}}"}}
  - {{type: console, channels: [in_app]}}
""")
    chosen = load_providers(path, tmp_path / "outbox.jsonl", environ=ENV, clock=SystemClock().seconds)
    assert [p.name for p in chosen["sms"]] == ["primary", "backup"]
    assert [p.name for p in chosen["mms"]] == [p.name for p in chosen["rcs"]] == ["primary"]
    assert isinstance(chosen["email"][0], SmtpProvider) and isinstance(chosen["push"][0], FcmProvider)
    assert isinstance(chosen["webhook"][0], WebhookProvider) and chosen["in_app"][0].name == "console"
    assert isinstance(chosen["*"][0], FileProvider)  # channels nobody serves go to the outbox
    primary = chosen["sms"][0]
    assert isinstance(primary, TwilioProvider)
    assert primary.status_callback == "https://journeys.example.com/v1/webhooks/twilio/status"
    assert AUTH_TOKEN not in repr(chosen) and "pw" not in repr(chosen["email"])


def test_concurrency_per_provider_with_defaults_and_file_line_errors(tmp_path: Path) -> None:
    """How many messages each provider is handed at once: its own default unless set; out of 1-200,
    or on a provider that takes one at a time (the outbox file), a problem at its line."""
    path = write(tmp_path, """\
providers:
  - {type: twilio, account_sid: AC1, auth_token: "${TWILIO_AUTH_TOKEN}", from: "+15005550006", concurrency: 50}
  - {type: smtp, host: 127.0.0.1, sender: a@example.com}
  - {type: webhook, url: "http://127.0.0.1:9/h", secret: "${HOOK_SECRET}"}
""")
    chosen = load_providers(path, tmp_path / "outbox.jsonl", environ=ENV, clock=SystemClock().seconds)
    assert [getattr(chosen[c][0], "concurrency", 1) for c in ("sms", "email", "webhook", "*")] == [50, 4, 10, 1]
    bad = write(tmp_path, """\
providers:
  - {type: twilio, account_sid: AC1, auth_token: "${TWILIO_AUTH_TOKEN}", from: "+15005550006"}
  - name: mail
    type: smtp
    host: 127.0.0.1
    sender: a@example.com
    concurrency: 0
  - {type: webhook, url: "http://127.0.0.1:9/h", secret: "${HOOK_SECRET}", concurrency: 201}
  - {type: file, concurrency: 2}
""")
    with pytest.raises(ProvidersError) as caught:
        load_providers(bad, environ=ENV, clock=SystemClock().seconds)
    assert caught.value.problems == [
        f"{bad}:7: providers.1.concurrency: Input should be greater than or equal to 1",
        f"{bad}:8: providers.2.concurrency: Input should be less than or equal to 200",
        f"{bad}:9: unknown key 'concurrency' in providers.3; expected one of: name, channels, type, path",
    ]


def test_failover_to_the_second_sms_provider(tmp_path: Path, fake_twilio: FakeTwilio) -> None:
    second = FakeTwilio()
    second.start()
    try:
        path = write(tmp_path, f"""\
providers:
  - {{name: a, type: twilio, account_sid: "${{TWILIO_ACCOUNT_SID}}", auth_token: "${{TWILIO_AUTH_TOKEN}}",
     from: "+15005550006", api_base_url: "{fake_twilio.url}"}}
  - {{name: b, type: twilio, account_sid: "${{TWILIO_ACCOUNT_SID}}", auth_token: "${{TWILIO_AUTH_TOKEN}}",
     from: "+15005550007", api_base_url: "{second.url}"}}
""")
        from channels.providers import TemporaryDeliveryError

        a, b = load_providers(path, environ=ENV, clock=SystemClock().seconds)["sms"]
        fake_twilio.script = [20429]
        message = OutboundMessage("m1", "u1", "sms", "transactional", {"text": "hi"}, "+14155550100")
        with pytest.raises(TemporaryDeliveryError):
            a.send(message)
        assert b.send(message).startswith("SM") and second.messages[0]["From"] == ["+15005550007"]
    finally:
        second.stop()


def test_problems_are_reported_by_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, """\
providers:
  - name: main
    type: twilio
    account_sid: AC1
    auth_token: plain-text-token
    from: "+15005550006"
    tiemout: 3
  - {type: smtp, host: h, sender: s@example.com, password: "${NOT_SET}"}
  - {type: carrier-pigeon}
  - {type: fcm, service_account_file: /nonexistent/fcm.json}
  - {type: webhook, url: "http://h", secret: "${HOOK_SECRET}", channels: [fax]}
""")
    with pytest.raises(ProvidersError) as caught:
        load_providers(path, environ=ENV, clock=SystemClock().seconds)
    name = str(path)
    assert caught.value.problems == [
        f"{name}:5: providers.0.auth_token: give secrets as ${{ENV_VAR}}, not in the file",
        f"{name}:7: unknown key 'tiemout' in providers.0; did you mean 'timeout'?",
        f"{name}:8: providers.1.password: environment variable NOT_SET is not set",
        f"{name}:9: providers.2.type: expected one of twilio, smtp, fcm, rbm, webhook, file, console",
        f"{name}:10: providers.3 (fcm): No such file or directory",
        f"{name}:11: providers.4.channels.0: Input should be 'push', 'in_app', 'email', 'sms', 'mms', 'rcs', "
        "'webhook' or '*'",
    ]
    assert "plain-text-token" not in str(caught.value)


def test_yaml_errors_and_shape(tmp_path: Path) -> None:
    with pytest.raises(ProvidersError, match=r"providers.yaml:3: invalid YAML"):
        load_providers(write(tmp_path, "providers:\n  - {type: [\n"), environ=ENV, clock=SystemClock().seconds)
    with pytest.raises(ProvidersError, match=r"providers.yaml:1: unknown key 'provider'; expected 'providers'"):
        load_providers(write(tmp_path, "provider: []\n"), environ=ENV, clock=SystemClock().seconds)


def test_serve_reports_a_bad_providers_file(tmp_path: Path) -> None:
    path = write(tmp_path, "providers:\n  - {type: twilio, account_sid: AC1, auth_token: x, from: '+1'}\n")
    journey = Path(sys.executable).parent / "journey"
    (tmp_path / "journeys").mkdir()
    done = subprocess.run([str(journey), "serve", "--providers", str(path), "--journeys", str(tmp_path / "journeys"),
                           "--db", f"sqlite:///{tmp_path / 'j.db'}"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert f"{path}:2: providers.0.auth_token: give secrets as ${{ENV_VAR}}" in done.stderr


def test_an_rbm_agent_serves_rcs_first_and_its_problems_have_lines(tmp_path: Path) -> None:
    account, _ = service_account("rbm-acme")
    (tmp_path / "rbm.json").write_text(json.dumps(account))
    path = write(tmp_path, f"""\
providers:
  - {{name: rbm, type: rbm, agent_id: acme-agent, service_account_file: "{tmp_path / 'rbm.json'}",
     client_token: "${{RBM_TOKEN}}", capability_ttl_hours: 12}}
  - {{name: primary, type: twilio, account_sid: "${{TWILIO_ACCOUNT_SID}}", auth_token: "${{TWILIO_AUTH_TOKEN}}",
     from: "+15005550006"}}
""")
    chosen = load_providers(path, tmp_path / "outbox.jsonl", environ={**ENV, "RBM_TOKEN": "rbm-token-1"},
                            clock=SystemClock().seconds)
    [rbm, twilio] = chosen["rcs"]
    assert isinstance(rbm, RbmProvider) and isinstance(twilio, TwilioProvider)
    assert rbm.agent_id == "acme-agent" and rbm.capability_ttl == timedelta(hours=12)
    assert [p.name for p in chosen["sms"]] == ["primary"]
    assert "rbm-token-1" not in repr(chosen) and account["private_key"] not in repr(chosen)
    assert twilio.contents.path == tmp_path / "primary-content.jsonl"  # Content SIDs kept beside the outbox

    bad = write(tmp_path, """\
providers:
  - name: rbm
    type: rbm
    service_account_file: /nowhere/rbm.json
    client_token: in-the-file
    capability_timeout: 0
""")
    with pytest.raises(ProvidersError) as info:
        load_providers(bad, tmp_path / "outbox.jsonl", environ=ENV, clock=SystemClock().seconds)
    assert [str(p).replace(f"{bad}:", "") for p in info.value.problems] == [
        "5: providers.0.client_token: give secrets as ${ENV_VAR}, not in the file",
        "2: providers.0.agent_id: Field required",
        "6: providers.0.capability_timeout: Input should be greater than 0",
    ]
    bad.write_text(bad.read_text().replace("client_token: in-the-file", "client_token: ${TWILIO_AUTH_TOKEN}")
                   .replace("capability_timeout: 0", "agent_id: acme"))
    with pytest.raises(ProvidersError) as info:
        load_providers(bad, tmp_path / "outbox.jsonl", environ=ENV, clock=SystemClock().seconds)
    assert [str(p).replace(f"{bad}:", "") for p in info.value.problems] == [
        "2: providers.0 (rbm): No such file or directory"]
