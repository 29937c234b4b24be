"""How long validation takes: every shipped journey, and a generated 1,000-step journey."""

from __future__ import annotations

from pathlib import Path

import yaml
from pytest_benchmark.fixture import BenchmarkFixture

from engine.compiler import load_paths, load_text

ROOT = Path(__file__).resolve().parent.parent


def thousand_step_journey() -> str:
    steps: list[dict[str, object]] = []
    for i in range(1000):
        kind = i % 4
        if kind == 0:
            steps.append({"id": f"s{i}", "type": "send", "message": f"m{i % 50}", "channels": ["push", "sms"]})
        elif kind == 1:
            steps.append({"id": f"s{i}", "type": "wait", "duration": "1h"})
        elif kind == 2:
            steps.append({"id": f"s{i}", "type": "branch", "default": f"s{i + 1}",
                          "branches": [{"when": "profile.attributes.tier == 'gold'", "next": f"s{i + 1}"}]})
        else:
            steps.append({"id": f"s{i}", "type": "wait_for", "event": "push.opened", "timeout": "1d",
                          "on_event": f"s{i + 1}", "on_timeout": f"s{i + 1}"})
    steps[-1] = {"id": "s999", "type": "exit"}
    messages = {f"m{n}": {"push": {"title": "Hi", "body": "{{ profile.attributes.first_name }} #" + str(n)},
                          "sms": {"text": "Hello {{ event.properties.url }}"}} for n in range(50)}
    return yaml.safe_dump({"id": "big", "trigger": {"event": "go"}, "steps": steps, "messages": messages})


def test_validate_shipped_journeys(benchmark: BenchmarkFixture) -> None:
    journeys = benchmark(load_paths, [ROOT / "journeys"])
    assert len(journeys) >= 10


def test_validate_thousand_step_journey(benchmark: BenchmarkFixture) -> None:
    text = thousand_step_journey()
    journey = benchmark(load_text, text, "big.yaml")
    assert len(journey.steps) == 1000
