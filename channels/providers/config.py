"""The providers file (`journey serve --providers FILE`): which provider serves which channel.

```yaml
providers:                      # per channel, in failover order
  - name: twilio-main
    type: twilio                # channels: sms, mms, rcs unless `channels` says otherwise
    account_sid: ${TWILIO_ACCOUNT_SID}
    auth_token: ${TWILIO_AUTH_TOKEN}
    from: "+15005550006"
    webhook_base_url: https://journeys.example.com
  - {name: mail, type: smtp, host: smtp.example.com, port: 587, starttls: true,
     sender: "Shop <news@example.com>", username: news, password: ${SMTP_PASSWORD}}
  - {name: push, type: fcm, service_account_file: /etc/journey/fcm.json}
  - {name: hooks, type: webhook, url: "https://hooks.example.com/journey", secret: ${HOOK_SECRET}}
```

`${NAME}` anywhere is replaced by that environment variable; secrets (`auth_token`,
`password`, `secret`, `service_account_json`) must be given that way, never written in the
file, and no error message ever shows a value. A channel no provider names goes to the
providers listed for `"*"`, else to the outbox file. Problems are `file:line: message`.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from channels.policy_file import FileError, Path_, read_yaml
from channels.providers.base import Provider
from channels.providers.fcm import FcmProvider
from channels.providers.local import ConsoleProvider, FileProvider
from channels.providers.smtp import SmtpProvider
from channels.providers.twilio import TwilioProvider
from channels.providers.webhook import WebhookProvider

Seconds = Callable[[], float]
"""A clock in seconds since the epoch, handed in by the host (engine.clock reads the wall clock)."""

SECRET_KEYS = frozenset({"auth_token", "password", "secret", "service_account_json"})
ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
ANY_CHANNEL = "*"


class ProvidersError(FileError):
    """The providers file is unusable; `problems` are `file:line: message`."""


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    name: str | None = None
    channels: list[Literal["push", "in_app", "email", "sms", "mms", "rcs", "webhook", "*"]] | None = None

    def build(self, clock: Seconds) -> Provider:
        raise NotImplementedError


class TwilioEntry(_Entry):
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
    timeout: float = Field(10.0, gt=0)

    def build(self, clock: Seconds) -> Provider:
        callback = self.status_callback
        if callback is None and self.webhook_base_url:
            callback = f"{self.webhook_base_url.rstrip('/')}/v1/webhooks/twilio/status"
        return TwilioProvider(self.account_sid, self.auth_token, self.from_, self.messaging_service_sid, callback,
                              self.rcs_messaging_service_sid, self.rcs_content_sid, self.sms_fallback_from,
                              self.api_base_url, self.timeout, name=self.name or "twilio",
                              webhook_base_url=self.webhook_base_url)


class SmtpEntry(_Entry):
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
                            name=self.name or "smtp")


class FcmEntry(_Entry):
    type: Literal["fcm"]
    service_account_file: str | None = None
    service_account_json: str | None = None
    project_id: str | None = None
    base_url: str = "https://fcm.googleapis.com"
    token_uri: str | None = None
    timeout: float = Field(10.0, gt=0)

    def build(self, clock: Seconds) -> Provider:
        if self.service_account_json:
            account = json.loads(self.service_account_json)
        elif self.service_account_file:
            account = json.loads(Path(self.service_account_file).read_text(encoding="utf-8"))
        else:
            raise ValueError("set service_account_file or service_account_json")
        return FcmProvider(account, self.project_id, self.base_url, self.token_uri, self.timeout, clock=clock,
                           name=self.name or "fcm")


class WebhookEntry(_Entry):
    type: Literal["webhook"]
    url: str
    secret: str
    timeout: float = Field(10.0, gt=0)

    def build(self, clock: Seconds) -> Provider:
        return WebhookProvider(self.url, self.secret, self.timeout, clock=clock, name=self.name or "webhook")


class FileEntry(_Entry):
    type: Literal["file"]
    path: str = "outbox.jsonl"

    def build(self, clock: Seconds) -> Provider:
        return FileProvider(self.path)


class ConsoleEntry(_Entry):
    type: Literal["console"]

    def build(self, clock: Seconds) -> Provider:
        return ConsoleProvider()


ENTRIES: dict[str, type[_Entry]] = {"twilio": TwilioEntry, "smtp": SmtpEntry, "fcm": FcmEntry,
                                    "webhook": WebhookEntry, "file": FileEntry, "console": ConsoleEntry}
DEFAULT_CHANNELS = {"twilio": ["sms", "mms", "rcs"], "smtp": ["email"], "fcm": ["push"], "webhook": ["webhook"],
                    "file": [ANY_CHANNEL], "console": [ANY_CHANNEL]}


def load_providers(path: str | Path, outbox: str | Path = "outbox.jsonl",
                   environ: Mapping[str, str] | None = None, *, clock: Seconds) -> dict[str, list[Provider]]:
    """Providers per channel, in failover order; raises ProvidersError with every problem. `clock`
    (seconds since the epoch) is for the providers that sign or date what they send: the channel
    layer never reads the wall clock itself."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ProvidersError([f"{name}:1: cannot read the providers file: {exc.strerror}"]) from None
    try:
        data, lines = read_yaml(text, name)
    except FileError as exc:
        raise ProvidersError(exc.problems) from None
    items = _items(data, lines, name)
    env = os.environ if environ is None else environ
    problems: list[str] = []
    chosen: dict[str, list[Provider]] = {}
    for index, item in enumerate(items):
        where = ("providers", str(index))
        built = _build(item, where, lines, name, env, problems, clock)
        if built is not None:
            entry, provider = built
            for channel in entry.channels or DEFAULT_CHANNELS[item["type"]]:
                chosen.setdefault(channel, []).append(provider)
    if problems:
        raise ProvidersError(problems)
    chosen.setdefault(ANY_CHANNEL, [FileProvider(outbox)])
    return chosen


def _items(data: dict[str, Any] | None, lines: Mapping[Path_, int], name: str) -> list[Any]:
    if not data:
        raise ProvidersError([f"{name}:1: expected `providers:` with a list of providers"])
    unknown = [k for k in data if k != "providers"]
    if unknown:
        raise ProvidersError([f"{name}:{lines[(k,)]}: unknown key {k!r}; expected 'providers'" for k in unknown])
    items = data.get("providers")
    if not isinstance(items, list) or not items:
        raise ProvidersError([f"{name}:{lines.get(('providers',), 1)}: providers: expected a list of providers"])
    return items


def _build(item: Any, where: Path_, lines: Mapping[Path_, int], name: str, env: Mapping[str, str],
           problems: list[str], clock: Seconds) -> tuple[_Entry, Provider] | None:
    inside = [line for path, line in lines.items() if path[:len(where)] == where]
    line = min(inside) if inside else lines.get(where[:1], 1)
    label = ".".join(where)
    if not isinstance(item, dict):
        problems.append(f"{name}:{line}: {label}: expected a mapping with a `type`")
        return None
    model = ENTRIES.get(str(item.get("type")))
    if model is None:
        problems.append(f"{name}:{lines.get((*where, 'type'), line)}: {label}.type: expected one of "
                        f"{', '.join(ENTRIES)}")
        return None
    found = len(problems)
    resolved = {key: _resolve(key, value, (*where, str(key)), lines, name, env, problems)
                for key, value in item.items()}
    try:
        entry = model.model_validate(resolved)
    except ValidationError as exc:
        problems.extend(_described(exc, model, where, lines, name))
        return None
    if len(problems) > found:
        return None
    try:
        return entry, entry.build(clock)
    except (ValueError, OSError, KeyError) as exc:
        detail = exc.strerror if isinstance(exc, OSError) else f"missing {exc}" if isinstance(exc, KeyError) \
            else str(exc)
        problems.append(f"{name}:{line}: {label} ({item['type']}): {detail}")
        return None


def _resolve(key: str, value: Any, where: Path_, lines: Mapping[Path_, int], name: str,
             env: Mapping[str, str], problems: list[str]) -> Any:
    """`${NAME}` from the environment; a secret written in the file is refused."""
    if not isinstance(value, str):
        return value
    line = lines.get(where, 1)
    if key in SECRET_KEYS and not ENV_REF.fullmatch(value.strip()):
        problems.append(f"{name}:{line}: {'.'.join(where)}: give secrets as ${{ENV_VAR}}, not in the file")
        return value
    missing = [var for var in ENV_REF.findall(value) if var not in env]
    for var in missing:
        problems.append(f"{name}:{line}: {'.'.join(where)}: environment variable {var} is not set")
    return ENV_REF.sub(lambda m: env.get(m.group(1), ""), value)


def _described(exc: ValidationError, model: type[_Entry], where: Path_, lines: Mapping[Path_, int],
               name: str) -> list[str]:
    allowed = sorted({f.alias or k for k, f in model.model_fields.items()})
    found = []
    for err in exc.errors():
        loc = tuple(str(part) for part in err["loc"])
        path = (*where, *loc)
        line = next((lines[path[:end]] for end in range(len(path), 0, -1) if path[:end] in lines), 1)
        if err["type"] == "extra_forbidden":
            close = difflib.get_close_matches(loc[-1], allowed, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; expected one of: {', '.join(allowed)}"
            found.append((line, f"unknown key {loc[-1]!r} in {'.'.join(where)}{hint}"))
        else:
            found.append((line, f"{'.'.join(path)}: {str(err['msg']).removeprefix('Value error, ')}"))
    return [f"{name}:{line}: {message}" for line, message in sorted(found)]


def providers_of(providers: Mapping[str, Sequence[Provider]], kind: type) -> list[Any]:
    """Every distinct provider of one class, e.g. the Twilio accounts whose webhooks we accept."""
    seen: dict[int, Any] = {}
    for group in providers.values():
        for provider in group:
            if isinstance(provider, kind):
                seen.setdefault(id(provider), provider)
    return list(seen.values())


__all__ = ["ProvidersError", "load_providers", "providers_of"]
