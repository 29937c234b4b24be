"""The providers file (`journey serve --providers FILE`): which provider serves which channel.

```yaml
providers:                      # per channel, in failover order
  - name: twilio-main
    type: twilio                # channels: sms, mms, rcs unless `channels` says otherwise
    account_sid: ${TWILIO_ACCOUNT_SID}
    auth_token: ${TWILIO_AUTH_TOKEN}
    from: "+15005550006"
    rcs_messaging_service_sid: MG...   # rcs: cards, carousels and chips through the Content API
    webhook_base_url: https://journeys.example.com
  - {name: mail, type: smtp, host: smtp.example.com, port: 587, starttls: true,
     sender: "Shop <news@example.com>", username: news, password: ${SMTP_PASSWORD}}
  - {name: push, type: fcm, service_account_file: /etc/journey/fcm.json}
  - {name: rbm, type: rbm, agent_id: acme-agent, service_account_file: /etc/journey/rbm.json,
     client_token: ${RBM_CLIENT_TOKEN}}   # channels: rcs; put it before twilio to be rcs's first
  - {name: hooks, type: webhook, url: "https://hooks.example.com/journey", secret: ${HOOK_SECRET}}
```

`${NAME}` anywhere is replaced by that environment variable; secrets (`auth_token`,
`password`, `secret`, `service_account_json`, `client_token`) must be given that way, never written in the
file, and no error message ever shows a value. A channel no provider names goes to the
providers listed for `"*"`, else to the outbox file. Problems are `file:line: message`.

`concurrency` (twilio, fcm, rbm, webhook, smtp): how many messages the dispatcher hands that provider
at once, from 1 to 200 (see `_Pooled` for the defaults). A request that takes 120 ms sends
about `concurrency / 0.12` messages a second; the channel's `rate_per_second` still caps them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from channels.providers.base import Provider
from channels.providers.local import ConsoleProvider, FileProvider
from channels.providers.smtp import SmtpProvider
from channels.yaml_lines import FileError, KeyPath, Located, Problem, describe_errors, dotted, read_mapping

Seconds = Callable[[], float]
"""A clock in seconds since the epoch, handed in by the host (engine.clock reads the wall clock)."""

SECRET_KEYS = frozenset({"auth_token", "password", "secret", "service_account_json", "client_token"})
ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
ANY_CHANNEL = "*"
MOST_CONCURRENCY = 200


class ProvidersError(FileError):
    """The providers file is unusable; `problems` are `file:line: message`."""


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    name: str | None = None
    channels: list[Literal["push", "in_app", "email", "sms", "mms", "rcs", "webhook", "*"]] | None = None

    def build(self, clock: Seconds) -> Provider:
        raise NotImplementedError


class _Pooled(_Entry):
    """A provider across the network, handed `concurrency` messages at once: by default, Twilio,
    FCM and RBM (which answer in 100-300 ms and take far more) 20, a webhook receiver (the user's own)
    10, an SMTP relay (a session per message) 4."""

    default_concurrency: ClassVar[int]
    concurrency: int | None = Field(None, ge=1, le=MOST_CONCURRENCY)

    def at_once(self) -> int:
        return self.concurrency or self.default_concurrency


class TwilioEntry(_Pooled):
    default_concurrency = 20
    type: Literal["twilio"]
    account_sid: str
    auth_token: str
    from_: str | None = Field(None, alias="from")
    messaging_service_sid: str | None = None
    status_callback: str | None = None
    webhook_base_url: str | None = None
    rcs_messaging_service_sid: str | None = None
    rcs_content_sid: str | None = None
    sms_fallback_from: str | None = None
    api_base_url: str | None = None
    content_base_url: str | None = None
    content_cache_file: str | None = None
    content_language: str = "en"
    timeout: float = Field(10.0, gt=0)

    def build(self, clock: Seconds) -> Provider:
        from channels.providers.twilio import TwilioProvider  # the twilio extra
        from channels.providers.twilio_content import ContentCache

        callback = self.status_callback
        if callback is None and self.webhook_base_url:
            callback = f"{self.webhook_base_url.rstrip('/')}/v1/webhooks/twilio/status"
        return TwilioProvider(self.account_sid, self.auth_token, self.from_, self.messaging_service_sid, callback,
                              self.rcs_messaging_service_sid, self.rcs_content_sid, self.sms_fallback_from,
                              self.api_base_url, self.timeout, name=self.name or "twilio",
                              webhook_base_url=self.webhook_base_url, content_base_url=self.content_base_url,
                              content_cache=ContentCache(self.content_cache_file),
                              content_language=self.content_language, concurrency=self.at_once())


class SmtpEntry(_Pooled):
    default_concurrency = 4
    type: Literal["smtp"]
    host: str
    port: int = Field(25, gt=0, lt=65536)
    sender: str
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    timeout: float = Field(10.0, gt=0)
    unsubscribe_url: str | None = None
    unsubscribe_mailto: str | None = None

    def build(self, clock: Seconds) -> Provider:
        return SmtpProvider(self.host, self.sender, self.port, self.username, self.password, self.starttls,
                            self.timeout, self.unsubscribe_url, self.unsubscribe_mailto, clock=clock,
                            name=self.name or "smtp", concurrency=self.at_once())


class _GoogleEntry(_Pooled):
    """A Google API provider: a service account's key, from a file or an environment variable."""

    service_account_file: str | None = None
    service_account_json: str | None = None
    token_uri: str | None = None
    timeout: float = Field(10.0, gt=0)

    def service_account(self) -> dict[str, Any]:
        if self.service_account_json:
            account = json.loads(self.service_account_json)
        elif self.service_account_file:
            account = json.loads(Path(self.service_account_file).read_text(encoding="utf-8"))
        else:
            raise ValueError("set service_account_file or service_account_json")
        if not isinstance(account, dict):
            raise ValueError("the service account is not a JSON object")
        return account


class FcmEntry(_GoogleEntry):
    default_concurrency = 20
    type: Literal["fcm"]
    project_id: str | None = None
    base_url: str = "https://fcm.googleapis.com"

    def build(self, clock: Seconds) -> Provider:
        from channels.providers.fcm import FcmProvider  # the fcm extra (cryptography, httpx)

        return FcmProvider(self.service_account(), self.project_id, self.base_url, self.token_uri, self.timeout,
                           clock=clock, name=self.name or "fcm", concurrency=self.at_once())


class RbmEntry(_GoogleEntry):
    default_concurrency = 20
    type: Literal["rbm"]
    agent_id: str = Field(min_length=1)
    client_token: str | None = None
    base_url: str = "https://rcsbusinessmessaging.googleapis.com"
    capability_timeout: float = Field(2.0, gt=0)
    capability_ttl_hours: float = Field(24.0, gt=0)

    def build(self, clock: Seconds) -> Provider:
        from channels.providers.rbm import RbmProvider  # the fcm extra (cryptography, httpx)

        return RbmProvider(self.service_account(), self.agent_id, self.client_token, self.base_url, self.token_uri,
                           self.timeout, self.capability_timeout, timedelta(hours=self.capability_ttl_hours),
                           clock=clock, name=self.name or "rbm", concurrency=self.at_once())


class WebhookEntry(_Pooled):
    default_concurrency = 10
    type: Literal["webhook"]
    url: str
    secret: str
    timeout: float = Field(10.0, gt=0)

    def build(self, clock: Seconds) -> Provider:
        from channels.providers.webhook import WebhookProvider  # httpx: the server extra

        return WebhookProvider(self.url, self.secret, self.timeout, clock=clock, name=self.name or "webhook",
                               concurrency=self.at_once())


class FileEntry(_Entry):
    type: Literal["file"]
    path: str = "outbox.jsonl"

    def build(self, clock: Seconds) -> Provider:
        return FileProvider(self.path)


class ConsoleEntry(_Entry):
    type: Literal["console"]

    def build(self, clock: Seconds) -> Provider:
        return ConsoleProvider()


ENTRIES: dict[str, type[_Entry]] = {"twilio": TwilioEntry, "smtp": SmtpEntry, "fcm": FcmEntry, "rbm": RbmEntry,
                                    "webhook": WebhookEntry, "file": FileEntry, "console": ConsoleEntry}
DEFAULT_CHANNELS = {"twilio": ["sms", "mms", "rcs"], "smtp": ["email"], "fcm": ["push"], "rbm": ["rcs"],
                    "webhook": ["webhook"], "file": [ANY_CHANNEL], "console": [ANY_CHANNEL]}


def load_providers(path: str | Path, outbox: str | Path = "outbox.jsonl", *, environ: Mapping[str, str],
                   clock: Seconds) -> dict[str, list[Provider]]:
    """Providers per channel, in failover order; raises ProvidersError with every problem.
    `environ` holds the `${VARIABLES}` the file's secrets name (the CLI passes its environment);
    `clock` (seconds since the epoch) is for the providers that sign or date what they send: the
    channel layer reads neither the environment nor the wall clock itself."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ProvidersError([f"{name}:1: cannot read the providers file: {exc.strerror}"]) from None
    try:
        located = read_mapping(text, name)
    except FileError as exc:
        raise ProvidersError(exc.problems) from None
    items = _items(located)
    problems: list[Problem] = []
    chosen: dict[str, list[Provider]] = {}
    for index, item in enumerate(items):
        if isinstance(item, dict) and item.get("type") == "twilio" and "content_cache_file" not in item:
            item = {**item, "content_cache_file": str(Path(outbox).parent / f"{item.get('name') or 'twilio'}"
                                                                           "-content.jsonl")}
        built = _build(item, ("providers", index), located, environ, problems, clock)
        if built is not None:
            entry, provider = built
            for channel in entry.channels or DEFAULT_CHANNELS[item["type"]]:
                chosen.setdefault(channel, []).append(provider)
    if problems:
        raise ProvidersError(problems)
    chosen.setdefault(ANY_CHANNEL, [FileProvider(outbox)])
    return chosen


def _items(located: Located) -> list[Any]:
    data = located.data
    if not data:
        raise ProvidersError([located.problem((), "expected `providers:` with a list of providers")])
    unknown = [k for k in data if k != "providers"]
    if unknown:
        raise ProvidersError([located.problem((k,), f"unknown key {k!r}; expected 'providers'") for k in unknown])
    items = data.get("providers")
    if not isinstance(items, list) or not items:
        raise ProvidersError([located.problem(("providers",), "providers: expected a list of providers")])
    return items


def _build(item: Any, where: KeyPath, located: Located, env: Mapping[str, str],
           problems: list[Problem], clock: Seconds) -> tuple[_Entry, Provider] | None:
    label = dotted(where)
    if not isinstance(item, dict):
        problems.append(located.problem(where, f"{label}: expected a mapping with a `type`"))
        return None
    model = ENTRIES.get(str(item.get("type")))
    if model is None:
        problems.append(located.problem((*where, "type"), f"{label}.type: expected one of {', '.join(ENTRIES)}"))
        return None
    found = len(problems)
    resolved = {key: _resolve(key, value, (*where, key), located, env, problems) for key, value in item.items()}
    try:
        entry = model.model_validate(resolved)
    except ValidationError as exc:
        problems.extend(describe_errors(exc, located, model, at=where))
        return None
    if len(problems) > found:
        return None
    try:
        return entry, entry.build(clock)
    except (ValueError, OSError, KeyError) as exc:
        detail = exc.strerror if isinstance(exc, OSError) else f"missing {exc}" if isinstance(exc, KeyError) \
            else str(exc)
        problems.append(located.problem(where, f"{label} ({item['type']}): {detail}"))
        return None


def _resolve(key: str, value: Any, where: KeyPath, located: Located, env: Mapping[str, str],
             problems: list[Problem]) -> Any:
    """`${NAME}` from the environment; a secret written in the file is refused."""
    if not isinstance(value, str):
        return value
    if key in SECRET_KEYS and not ENV_REF.fullmatch(value.strip()):
        problems.append(located.problem(where, f"{dotted(where)}: give secrets as ${{ENV_VAR}}, not in the file"))
        return value
    missing = [var for var in ENV_REF.findall(value) if var not in env]
    for var in missing:
        problems.append(located.problem(where, f"{dotted(where)}: environment variable {var} is not set"))
    return ENV_REF.sub(lambda m: env.get(m.group(1), ""), value)


def providers_of(providers: Mapping[str, Sequence[Provider]], kind: type) -> list[Any]:
    """Every distinct provider of one class, e.g. the Twilio accounts whose webhooks we accept."""
    seen: dict[int, Any] = {}
    for group in providers.values():
        for provider in group:
            if isinstance(provider, kind):
                seen.setdefault(id(provider), provider)
    return list(seen.values())


__all__ = ["ProvidersError", "load_providers", "providers_of"]
