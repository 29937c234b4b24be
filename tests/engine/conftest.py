"""Shared helpers for runtime tests: build a journey from YAML text, simulate it, look at results."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from channels import Policy, Profile, load_policy
from engine.compiler import load_text
from engine.simulator import parse_events
from engine.simulator import simulate as run_simulation

T0 = "2026-01-05T10:00:00Z"
GRANTED_AT = "2025-12-01T00:00:00Z"


def consents(*pairs: str, granted: bool = True) -> list[dict[str, Any]]:
    """`consents("sms:marketing", "push:marketing")` as consent records (docs/formats.md)."""
    out = []
    for pair in pairs:
        channel, category = pair.split(":")
        out.append({"channel": channel, "category": category, "granted": granted, "source": "test", "at": GRANTED_AT})
    return out


def profile(user_id: str, *grants: str, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"user_id": user_id, "push_token": f"tok-{user_id}", "phone": "+14155550100",
                            "email": f"{user_id}@example.com", "timezone": "UTC", "consents": consents(*grants)}
    base.update(fields)
    return base


def event(kind: str, user_id: str, at: str = T0, **properties: Any) -> dict[str, Any]:
    return {"type": kind, "user_id": user_id, "timestamp": at, "properties": properties}


Simulate = Callable[..., dict[str, Any]]


@pytest.fixture(params=[False, True], ids=["plain", "roundtrip"])
def simulate(request: pytest.FixtureRequest) -> Simulate:
    """Runs a scenario; the 'roundtrip' variant serialises every instance to JSON between stimuli."""

    def run(yaml_text: str, events: list[dict[str, Any]], profiles: list[dict[str, Any]],
            policy: Policy | None = None) -> dict[str, Any]:
        journey = load_text(yaml_text, "test.yaml")
        parsed = parse_events((f"events:{n}", e) for n, e in enumerate(events, 1))
        people = [Profile.from_dict(p) for p in profiles]
        return run_simulation(journey, parsed, people, policy or load_policy(), roundtrip=request.param)

    return run


def sent(result: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(user, channel, time) of every message, in send order."""
    return [(m["user_id"], m["channel"], m["at"]) for m in result["messages"]]


def statuses(result: dict[str, Any]) -> dict[str, str]:
    return {f"{i['user_id']}/{i['key']}" if i["key"] else i["user_id"]: i["status"] for i in result["instances"]}
