"""`journey preview FILE MESSAGE --profile P.json`: one message rendered for one person, per channel,
with the variant their locale picks, SMS encoding, segments and cost. Nothing is sent or stored."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from channels import PolicyError, Profile, load_policy
from engine.clock import SystemClock
from engine.compiler import CompiledJourney, load_file
from engine.errors import EventError, InputError, JourneyDefinitionError, JourneyNotFoundError
from engine.events import Event, parse_event
from engine.simulator import parse_profiles, preview


def preview_command(
    file: Path = typer.Argument(..., metavar="FILE", help="a journey file"),
    message: str = typer.Argument(..., metavar="MESSAGE", help="the name of one of its messages"),
    profile: Path = typer.Option(..., "--profile", metavar="FILE", help="the person: one profile, JSON"),
    event: Path | None = typer.Option(None, "--event", metavar="FILE", help="the event templates read, JSON "
                                      "(default: the journey's trigger event, now, with no properties)"),
    channel: list[str] = typer.Option([], "--channel", metavar="CHANNEL", help="only this channel (repeatable; "
                                      "default: every channel the message has)"),
    policy: Path | None = typer.Option(None, "--policy", metavar="FILE", help="policy YAML merged over the default"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON document"),
) -> None:
    """Render a message for a person, per channel, without sending or storing anything."""
    now = SystemClock().now()
    try:
        journey = load_file(file)
        person = parse_profiles([(str(profile), _json(profile))], consented_at=now)[0]
        happened = _event(journey, person, event, now)
        document = preview(journey, message, person, happened, load_policy(policy), now, channel)
    except (JourneyDefinitionError, JourneyNotFoundError, InputError, PolicyError) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    typer.echo(json.dumps(document, ensure_ascii=False) if as_json else _text(document))


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: invalid JSON: {exc}") from None


def _event(journey: CompiledJourney, person: Profile, path: Path | None, now: Any) -> Event:
    trigger = journey.definition.trigger.event or "journey.run"
    data = _json(path) if path is not None else {"type": trigger}
    if isinstance(data, dict):
        data = {"type": trigger, "user_id": person.user_id, **data}
    try:
        return parse_event(data, now)
    except EventError as exc:
        raise InputError(f"{path}: {exc}") from None


def _text(document: dict[str, Any]) -> str:
    lines = [f"{document['message']} for {document['user_id']} ({document['locale']}, {document['timezone']}), "
             f"journey {document['journey']} version {document['version']}; nothing was sent"]
    for row in document["channels"]:
        facts = [f"variant {row['locale']}" if row["locale"] else "default content"]
        if row["encoding"]:
            facts.append(f"{row['encoding']}, {row['segments']} segment{'' if row['segments'] == 1 else 's'}")
        facts.append(f"cost {row['cost']:g}")
        facts.append("eligible now" if row["eligible"] else f"not eligible now: {row['reason']}")
        lines += ["", f"{row['channel']}: {'; '.join(facts)}"]
        if row["error"]:
            lines.append(f"  template error: {row['error']}")
        for key, value in (row["content"] or {}).items():
            text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            lines += [f"  {key}: {line}" for line in text.splitlines() or [""]]
    return "\n".join(lines)
