"""`journey schema` for editors: every field described, an `$id`, the committed copy kept equal to the
command's output, every shipped journey pointing at it; and Liquid-style filters answered with a hint."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator
from typer.testing import CliRunner

from engine.cli import app
from engine.cli.schema import SCHEMA_ID
from engine.expressions import LIQUID_HINT

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "schema" / "journey.schema.json"
MODELINE = "# yaml-language-server: $schema=../schema/journey.schema.json"
runner = CliRunner()


def _schema() -> dict[str, Any]:
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0, result.output
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def _properties(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    """Every (path, property schema) in the document, nested definitions included."""
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        for name, value in node.get("properties", {}).items():
            found.append((f"{path}.{name}", value))
        for key, value in node.items():
            found += _properties(value, f"{path}/{key}")
    elif isinstance(node, list):
        for n, value in enumerate(node):
            found += _properties(value, f"{path}/{n}")
    return found


def test_committed_schema_is_what_journey_schema_prints() -> None:
    """Regenerate with `journey schema > schema/journey.schema.json` after changing engine/model.py."""
    result = runner.invoke(app, ["schema"])
    assert result.stdout == COMMITTED.read_text(encoding="utf-8")


def test_schema_is_valid_draft_2020_12_with_an_id() -> None:
    schema = _schema()
    Draft202012Validator.check_schema(schema)
    assert schema["$id"] == SCHEMA_ID == "https://journey-engine.dev/schema/journey.schema.json"
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["description"]


def test_every_field_has_a_description() -> None:
    properties = _properties(_schema())
    assert len(properties) > 60  # every model: steps, messages per channel, trigger, goal...
    missing = [path for path, value in properties if not value.get("description")]
    assert missing == []


@pytest.mark.parametrize(("model", "field", "words"), [
    ("", "re_entry", 'always (default: when no instance is active) | never | "after 7d"'),
    ("", "instance_key", "several concurrent instances per user, one per key"),
    ("", "exit_on", "these events end the instance (status exited)"),
    ("Trigger", "event", "event type that starts an instance"),
    ("SendStep", "strategy", "escalate | all | first | cheapest"),
    ("SendStep", "escalate_after", "time to wait for engagement before the next channel"),
    ("WaitStep", "until", "next such local time of the recipient"),
    ("WaitForStep", "timeout", "no instance waits forever"),
    ("SplitStep", "type", "the same user always takes the same path"),
    ("SmsContent", "text", "Jinja2 template"),
])
def test_descriptions_use_the_reference_words(model: str, field: str, words: str) -> None:
    schema = _schema()
    node = schema["$defs"][model] if model else schema
    assert words in node["properties"][field]["description"]


def test_every_shipped_journey_points_editors_at_the_committed_schema() -> None:
    files = sorted((ROOT / "journeys").glob("*.yaml"))
    assert files
    for path in files:
        assert path.read_text(encoding="utf-8").splitlines()[0] == MODELINE, path.name
        target = (path.parent / MODELINE.split("$schema=")[1]).resolve()
        assert target == COMMITTED


def test_the_committed_schema_accepts_every_shipped_journey() -> None:
    validator = Draft202012Validator(json.loads(COMMITTED.read_text(encoding="utf-8")))
    for path in sorted((ROOT / "journeys").glob("*.yaml")):
        assert list(validator.iter_errors(yaml.safe_load(path.read_text(encoding="utf-8")))) == [], path.name


JOURNEY = """\
id: liquid
trigger: {{event: cart.abandoned, when: {when}}}
steps:
  - {{id: nudge, type: send, message: reminder}}
messages:
  reminder:
    sms: {{text: {text}}}
"""


def _validate(tmp_path: Path, text: str, when: str = '"event.properties.value > 1"') -> str:
    path = tmp_path / "liquid.yaml"
    path.write_text(JOURNEY.format(text=json.dumps(text), when=json.dumps(when)))
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 1, result.output
    return result.output


@pytest.mark.parametrize("template", [
    '{{ profile.attributes.first_name | default: "there" }}',
    "Hi {{ event.properties.name | append: '!' }}",
    '{{ event.properties.at | date: "%b %d" }}',
])
def test_liquid_filter_arguments_get_the_jinja_hint(tmp_path: Path, template: str) -> None:
    output = _validate(tmp_path, template)
    assert "liquid.yaml:7: message 'reminder': sms: template does not parse: " in output
    assert output.rstrip().endswith(f"; {LIQUID_HINT}")
    assert LIQUID_HINT == 'templates are Jinja2: use {{ x | default("y") }}'


def test_a_liquid_filter_name_gets_its_jinja_name_and_the_hint(tmp_path: Path) -> None:
    output = _validate(tmp_path, "{{ profile.attributes.first_name | upcase }}")
    assert output.strip() == (f"{tmp_path}/liquid.yaml:7: message 'reminder': sms: template does not parse: "
                              f"No filter named 'upcase' (in Jinja2: upper); {LIQUID_HINT}")


def test_a_liquid_filter_in_an_expression_gets_the_hint(tmp_path: Path) -> None:
    output = _validate(tmp_path, "Hi", when='event.properties.value | default: 0 > 20')
    assert "liquid.yaml:2: trigger: expression" in output and output.rstrip().endswith(LIQUID_HINT)


def test_other_syntax_errors_get_no_liquid_hint(tmp_path: Path) -> None:
    output = _validate(tmp_path, "{{ profile.attributes.first_name | no_such_filter }} {{ event.x(")
    assert "does not parse" in output and "Jinja2" not in output
