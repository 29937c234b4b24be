"""Properties of the loader: well-formed step lists always compile; garbage never escapes
as anything but the project's own definition error."""

from __future__ import annotations

import string

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.compiler import END, load_text
from engine.errors import JourneyDefinitionError

STEP_KINDS = ("send", "wait", "wait_for", "branch", "split", "exit")


@st.composite
def step_lists(draw: st.DrawFn) -> list[dict[str, object]]:
    """Random step lists whose jumps only go forward, so every step is reachable and acyclic."""
    count = draw(st.integers(min_value=1, max_value=25))
    steps: list[dict[str, object]] = []
    for i in range(count):
        kind = draw(st.sampled_from(STEP_KINDS[:-1])) if i < count - 1 else "exit"
        later = [f"s{j}" for j in range(i + 1, count)]
        steps.append(_step(draw, f"s{i}", kind, later))
    return steps


def _step(draw: st.DrawFn, step_id: str, kind: str, later: list[str]) -> dict[str, object]:
    if kind == "exit" or not later:
        return {"id": step_id, "type": "exit"}
    nxt = later[0]
    if kind == "send":
        return {"id": step_id, "type": "send", "message": "m",
                "urgency": draw(st.sampled_from(["low", "normal", "high", "critical"]))}
    if kind == "wait":
        return {"id": step_id, "type": "wait", "duration": f"{draw(st.integers(1, 99))}m"}
    if kind == "wait_for":
        return {"id": step_id, "type": "wait_for", "event": "x.done", "timeout": "1h",
                "on_event": draw(st.sampled_from(later)), "on_timeout": nxt}
    if kind == "branch":
        return {"id": step_id, "type": "branch", "default": nxt,
                "branches": [{"when": "profile.attributes.n > 1", "next": draw(st.sampled_from(later))}]}
    return {"id": step_id, "type": "split",
            "paths": [{"weight": 1, "next": nxt}, {"weight": 2, "next": draw(st.sampled_from(later))}]}


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(step_lists())
def test_well_formed_step_lists_compile(steps: list[dict[str, object]]) -> None:
    doc = {"id": "gen", "trigger": {"event": "e"}, "steps": steps,
           "messages": {"m": {"push": {"body": "hi {{ profile.user_id }}"}}}}
    journey = load_text(yaml.safe_dump(doc), "gen.yaml")
    assert set(journey.steps) == {s["id"] for s in steps}
    assert set(journey.graph.nodes) - {END} == set(journey.steps)


yamlish = st.text(alphabet=string.ascii_letters + string.digits + " :-{}[],'\"\n#&*!|>%@`\t", max_size=200)


@settings(max_examples=300, deadline=None)
@given(yamlish)
def test_garbage_only_raises_definition_errors(text: str) -> None:
    try:
        load_text(text, "garbage.yaml")
    except JourneyDefinitionError as exc:
        assert exc.problems
        assert all(str(p).startswith("garbage.yaml:") for p in exc.problems)


structured = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["id", "type", "steps", "trigger", "next", "event", "messages", "when", "x"]), inner,
        max_size=5),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(structured)
def test_wrongly_shaped_documents_only_raise_definition_errors(doc: object) -> None:
    try:
        load_text(yaml.safe_dump(doc), "shape.yaml")
    except JourneyDefinitionError as exc:
        assert all(str(p).startswith("shape.yaml:") for p in exc.problems)


def test_a_version_is_a_digest_of_what_is_set_not_of_the_language_around_it() -> None:
    """A journey that says the same thing keeps its version across releases: a key the language
    gains later, left at its default, must not change it (running instances would otherwise be
    told their journey changed on the next deploy). The digest below was computed once and is
    pinned on purpose."""
    from engine.compiler import load_text

    text = ("id: pinned\ntrigger: {event: order.placed}\nsteps:\n"
            "  - {id: note, type: send, message: note, channels: [sms]}\n"
            "messages:\n  note:\n    sms: {text: \"Thanks for your order\"}\n")
    same = text.replace("steps:", "# a comment\nsteps:").replace("channels: [sms]", "channels: [sms], urgency: normal")
    assert load_text(text, "pinned.yaml").version == load_text(same, "pinned.yaml").version == "a8af4aeae9a2"
