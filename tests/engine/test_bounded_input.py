"""Nothing a journey author writes can wedge the engine: templates render within limits on loop
steps, output and arithmetic (past them the send fails with `template_error` naming the limit),
a MemoryError never escapes, and journey files are bounded in size and in alias expansion."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.cli import app
from engine.errors import EvaluationError, TemplateRenderError
from engine.expressions import MAX_OUTPUT, MAX_STEPS, Expression, Template

NESTED = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}done"
JOURNEY = """\
id: hostile
category: transactional
trigger: {event: order.placed}
steps:
  - {id: tell, type: send, message: tell, channels: [sms]}
messages:
  tell:
    sms: {text: "%s"}
"""
PROFILE = {"user_id": "u1", "phone": "+14155550100", "timezone": "UTC",
           "consents": [{"channel": "sms", "category": "transactional", "granted": True, "source": "test",
                         "at": "2026-01-01T00:00:00Z"}]}


@pytest.mark.parametrize("source, limit", [
    (NESTED, f"{MAX_STEPS} numbers"),
    ("{{ 'x' * 10**10 }}", "'*' would build"),
    ("{% for i in range(99999) %}{{ 'y' * 99 }}{% endfor %}", f"{MAX_OUTPUT} characters"),
    ("{{ range(10**9) | list | length }}", "over the limit"),
])
def test_a_template_past_a_limit_fails_fast_naming_it(source: str, limit: str) -> None:
    started = time.monotonic()
    with pytest.raises(TemplateRenderError, match="limit") as caught:
        Template(source).render({})
    assert limit in str(caught.value)
    assert time.monotonic() - started < 2


def test_an_expression_past_a_limit_is_an_evaluation_error() -> None:
    """Two loops of 70,000 numbers each: within the limit one by one, over it together."""
    with pytest.raises(EvaluationError, match="limit"):
        Expression("(range(70000) | list | length) + (range(70000) | list | length) > 0")({})


def test_a_memory_error_in_a_render_is_a_template_error(monkeypatch: pytest.MonkeyPatch) -> None:
    template = Template("{% for i in range(3) %}{{ i }}{% endfor %}")

    def exhausted(*_: object, **__: object) -> object:
        raise MemoryError

    monkeypatch.setattr(template._template, "generate", exhausted)
    with pytest.raises(TemplateRenderError):
        template.render({})


def test_loops_within_the_limits_still_render() -> None:
    assert Template("{% for i in range(3) %}{{ i }}{% endfor %}").render({}) == "012"
    assert Expression("range(5) | list | length == 5")({}) is True


def _simulate(tmp_path: Path, text: str) -> dict[str, object]:
    (tmp_path / "j.yaml").write_text(JOURNEY % text, encoding="utf-8")
    (tmp_path / "e.jsonl").write_text(json.dumps({"type": "order.placed", "user_id": "u1",
                                                  "timestamp": "2026-01-05T10:00:00Z"}) + "\n", encoding="utf-8")
    (tmp_path / "p.jsonl").write_text(json.dumps(PROFILE) + "\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["simulate", str(tmp_path / "j.yaml"), "--events", str(tmp_path / "e.jsonl"),
                                      "--profiles", str(tmp_path / "p.jsonl"), "--json"])
    assert result.exit_code == 0, result.output
    document: dict[str, object] = json.loads(result.stdout)
    return document


def test_simulate_of_the_nested_loop_journey_finishes_with_template_error(tmp_path: Path) -> None:
    started = time.monotonic()
    document = _simulate(tmp_path, NESTED)
    assert time.monotonic() - started < 10
    [skip] = document["skipped"]  # type: ignore[misc]
    assert skip["reason"] == "template_error" and "limit" in skip["detail"]


def test_simulate_of_a_huge_string_ends_in_template_error_not_a_memory_error(tmp_path: Path) -> None:
    [skip] = _simulate(tmp_path, "{{ 'x' * 10**10 }}")["skipped"]  # type: ignore[misc]
    assert skip["reason"] == "template_error"


def test_validate_warns_about_loops_over_numbers_it_can_see(tmp_path: Path) -> None:
    (tmp_path / "j.yaml").write_text(JOURNEY % NESTED, encoding="utf-8")
    result = CliRunner().invoke(app, ["validate", str(tmp_path / "j.yaml")])
    assert result.exit_code == 0, result.output
    assert f"{tmp_path / 'j.yaml'}:8: warning: message 'tell': loops over 10,000,000,000 numbers" in result.output


def test_validate_refuses_a_billion_laughs_file_within_seconds(tmp_path: Path) -> None:
    lines = ['id: lol', 'a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 10)}]" for n in range(1, 10)]
    path = tmp_path / "lol.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    started = time.monotonic()
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert time.monotonic() - started < 5
    assert result.exit_code == 1
    assert f"{path}:" in result.output and "expands to more than 100,000 values" in result.output


def test_validate_refuses_a_file_over_the_size_limit(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("id: big\n" + "".join(f"k{n}: {n}\n" for n in range(200_000)), encoding="utf-8")
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 1 and f"{path}:1: the file is" in result.output and "over the limit" in result.output
