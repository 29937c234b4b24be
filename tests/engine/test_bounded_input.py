"""Nothing a journey author writes can wedge the engine: templates render within one budget per
render (loop iterations of every kind, calls, powers, padding and formatting) and one size limit
checked before anything is built (past them the send fails with `template_error` naming the limit),
a MemoryError never escapes, and journey files are bounded in size and in alias expansion."""

from __future__ import annotations

import json
import time
import tracemalloc
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.cli import app
from engine.errors import EvaluationError, TemplateRenderError
from engine.expressions import Expression, Template
from engine.sandbox import MAX_DIGITS, MAX_SIZE, MAX_STEPS, MAX_WORK

NESTED = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}done"
STRING_LOOPS = "{% for x in 'a'*20000 %}{% for y in 'a'*20000 %}{% endfor %}{% endfor %}"
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


STEPS = f"limit of {MAX_STEPS:,} steps"
SIZE = f"over the limit of {MAX_SIZE:,}"
WORK = f"limit of {MAX_WORK:,} characters built"


@pytest.mark.parametrize("source, limit", [
    (NESTED, STEPS),
    (STRING_LOOPS, STEPS),  # froze the engine for 30 s: only `range` was counted
    ("{% for x in ['a'] * 20000 %}{% for y in ['b'] * 20000 %}{% endfor %}{% endfor %}", STEPS),
    ("{% for k, v in {'a': 1, 'b': 2}.items() %}{% for x in 'y' * 90000 %}{% endfor %}{% endfor %}", STEPS),
    ("{% macro a() %}{{ b() }}{{ b() }}{% endmacro %}{% macro b() %}{{ c() }}{{ c() }}{% endmacro %}"
     "{% macro c() %}x{% endmacro %}{% for i in range(30000) %}{{ a() }}{% endfor %}", STEPS),
    ("{{ 'x' * 10**10 }}", "'*' would build 10,000,000,000 characters"),
    ("{{ ((10**1000)**1000)**4 }}", f"'**' would have 1,000,001 digits, over the limit of {MAX_DIGITS:,}"),
    ("{% set ns = namespace(n=10) %}{% for i in range(40) %}{% set ns.n = ns.n * ns.n %}{% endfor %}", "digits"),
    ("{{ 'x'.ljust(50000000) }}", f"'ljust' would build 50,000,000 characters, {SIZE}"),
    ("{{ 'x'.center(50000000) }}", SIZE),
    ("{{ 'x'|center(50000000) }}", SIZE),
    ("{{ 'x'|indent(50000000, true) }}", SIZE),
    ("{{ '{:>50000000}'.format(1) }}", SIZE),
    ("{{ '{:.50000000f}'.format(1.5) }}", SIZE),
    ("{{ '%50000000s' % 'x' }}", SIZE),
    ("{{ '%.50000000f'|format(1.5) }}", SIZE),
    ("{{ 'abc'|replace('b', 'x' * 999999) }}", SIZE),
    ("{{ (['x' * 100000] * 100)|join }}", SIZE),
    ("{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}", SIZE),
    ("{% set ns = namespace(s=['x']) %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}{% endfor %}", SIZE),
    ("{% set s = 'x' * 1000000 %}{% for i in range(90000) %}{% if 'zz' in s %}{% endif %}{% endfor %}", WORK),
    ("{% set s = 'x' * 1000000 %}{% for i in range(90000) %}{{ s.count('y') }}{% endfor %}", WORK),
    ("{% for i in range(99999) %}{{ 'y' * 99 }}{% endfor %}", f"output went over the limit of {MAX_SIZE:,}"),
    ("{{ range(10**9) | list | length }}", "over the limit"),
    ("{{ 5|round(-10**9) }}", "over the limit"),
])
def test_a_template_past_a_limit_fails_fast_naming_it(source: str, limit: str) -> None:
    """Within a second or so (a generous 5 s on a busy machine), and without building what it
    refuses: the render's peak allocation stays within a few values of the size limit."""
    template = Template(source)
    started = time.monotonic()
    with pytest.raises(TemplateRenderError, match="limit") as caught:
        template.render({})
    assert time.monotonic() - started < 5
    assert limit in str(caught.value)
    tracemalloc.start()
    try:
        with pytest.raises(TemplateRenderError):
            template.render({})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20 * MAX_SIZE, f"{peak:,} bytes allocated before the limit stopped it"


@pytest.mark.parametrize("source", [
    "{{ 'a'.encode() }}", "{{ 'a'.translate({97: 'bbbb'}) }}", "{{ (1).to_bytes(10**6, 'big') }}",
    "{% set l = [1] %}{% for i in range(30) %}{{ l.extend(l) }}{% endfor %}", "{{ lipsum(10**6) }}",
])
def test_what_can_build_unbounded_values_is_out_of_reach(source: str) -> None:
    with pytest.raises(TemplateRenderError):
        Template(source).render({})


def test_the_budget_holds_an_events_data_as_it_holds_literals() -> None:
    """Sizes from the event are no different: a property of 20,000 characters looped over twice."""
    with pytest.raises(TemplateRenderError, match=STEPS):
        Template("{% for x in event.text %}{% for y in event.text %}{% endfor %}{% endfor %}").render(
            {"event": {"text": "a" * 20_000}})
    with pytest.raises(TemplateRenderError, match=SIZE):
        Template("{{ event.text.ljust(event.width) }}").render({"event": {"text": "a", "width": 10**8}})


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
    assert Template("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}").render({"d": {"a": 1}}) == "a=1;"
    assert Template("{{ 'ab'|center(6) }}|{{ 'x'.ljust(3, '.') }}|{{ '%s-%03d' % ('a', 7) }}|{{ '{:>4}'.format(1) }}"
                    ).render({}) == "  ab  |x..|a-007|   1"
    assert Template("{{ range(4)|map('string')|join(',') }} {{ 2 ** 100 }} {{ 'a' ~ 1 }}").render({}) == \
        "0,1,2,3 1267650600228229401496703205376 a1"
    assert Template("<p>{{ x ~ '<' }}</p>", html=True).render({"x": "<i>"}) == "<p>&lt;i&gt;&lt;</p>"


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


@pytest.mark.parametrize("source", [NESTED, STRING_LOOPS])
def test_simulate_of_the_nested_loop_journey_finishes_with_template_error(tmp_path: Path, source: str) -> None:
    started = time.monotonic()
    document = _simulate(tmp_path, source)
    assert time.monotonic() - started < 10
    [skip] = document["skipped"]  # type: ignore[misc]
    assert skip["reason"] == "template_error" and STEPS in skip["detail"]


def test_simulate_of_a_huge_string_ends_in_template_error_not_a_memory_error(tmp_path: Path) -> None:
    [skip] = _simulate(tmp_path, "{{ 'x' * 10**10 }}")["skipped"]  # type: ignore[misc]
    assert skip["reason"] == "template_error"


@pytest.mark.parametrize("source, warning", [
    (NESTED, "loops go through 10,000,000,000 items; a render stops after 100,000 steps (template_error)"),
    (STRING_LOOPS, "loops go through 400,000,000 items"),
    ("{{ ((10**1000)**1000)**4 }}", "'**' makes a number of 4,000,001 digits; the limit is 4,300"),
    ("{{ 'x'.ljust(50000000) }}", "builds a value of 50,000,000 characters; the limit is 1,000,000"),
])
def test_validate_warns_about_limits_it_can_see(tmp_path: Path, source: str, warning: str) -> None:
    (tmp_path / "j.yaml").write_text(JOURNEY % source, encoding="utf-8")
    result = CliRunner().invoke(app, ["validate", str(tmp_path / "j.yaml")])
    assert result.exit_code == 0, result.output
    assert f"{tmp_path / 'j.yaml'}:8: warning: message 'tell': {warning}" in result.output


def test_validate_warns_about_an_expression_too_and_not_about_data_it_cannot_see(tmp_path: Path) -> None:
    text = (JOURNEY % "{% for x in event.properties.items %}{{ x }}{% endfor %}").replace(
        "trigger: {event: order.placed}", "trigger: {event: order.placed, when: \"2 ** 100000 > 1\"}")
    (tmp_path / "j.yaml").write_text(text, encoding="utf-8")
    result = CliRunner().invoke(app, ["validate", str(tmp_path / "j.yaml")])
    assert result.exit_code == 0, result.output
    [warning] = [line for line in result.output.splitlines() if "warning" in line]
    assert warning.startswith(f"{tmp_path / 'j.yaml'}:3: warning: ") and "30,103 digits" in warning


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
