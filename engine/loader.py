"""YAML text -> validated `Journey`, every problem reported as `file:line: message`.

Reading YAML with the line of every node, and mapping pydantic's errors back to those
lines, are shared with the policy and providers files (`channels.yaml_lines`). What is
the journey's own is the wording: a step is named by its id, a message by its name, and
an unknown step type is answered with the list of step types.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from pydantic import TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from channels.yaml_lines import (
    KeyPath,
    Located,
    Problem,
    Wording,
    describe_errors,
    read_yaml,
    value_at,
    without_unknown_keys,
)
from engine.model import CHANNELS, OFFSET_TAGS, STEP_TYPES, Journey, Message, Step, StepBase, Trigger


class JourneyWording(Wording):
    """Problems in a journey file, worded for its author: `step 'nudge': channels[1]: ...`."""

    malformed: ClassVar[str] = "malformed YAML"
    duplicate: ClassVar[str] = "duplicate key '{key}' (first defined at line {first})"
    tags: ClassVar[frozenset[str]] = Wording.tags | frozenset(STEP_TYPES) | frozenset(OFFSET_TAGS)

    def place(self, data: Any, path: KeyPath) -> str:
        """`step 'nudge': channels[1]: ` - names the step by id, the field by its key."""
        prefix, rest = "", list(path)
        if len(path) >= 2 and path[0] == "steps" and isinstance(path[1], int):
            step = value_at(data, path[:2])
            label = step.get("id") if isinstance(step, dict) and isinstance(step.get("id"), str) else None
            prefix = f"step '{label}': " if label else f"steps[{path[1]}]: "
            rest = list(path[2:])
        elif len(path) >= 2 and path[0] == "messages":
            prefix, rest = f"message '{path[1]}': ", list(path[2:])
        field = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in rest).lstrip(".")
        return f"{prefix}{field}: " if field else prefix

    def unknown_key(self, data: Any, path: KeyPath, hint: str) -> str:
        """`step 'a': unknown key 'chanels'; did you mean 'channels'?`"""
        return f"{self.place(data, path[:-1])}unknown key '{path[-1]}'{hint}"

    def message(self, err: ErrorDetails) -> str:
        """Pydantic's message, except where a journey author deserves plainer words."""
        kind = err["type"]
        if kind == "missing":
            return "required key is missing"
        if kind == "union_tag_invalid":
            return f"unknown step type {err['input'].get('type')!r}; use one of {', '.join(STEP_TYPES)}"
        if kind == "union_tag_not_found":
            return f"a step needs a 'type': one of {', '.join(STEP_TYPES)}"
        if kind == "literal_error":
            return f"{err['input']!r} is not allowed: expected {err['ctx']['expected']}"
        return super().message(err)


_WORDING = JourneyWording()


def compose(text: str, file: str) -> tuple[Located, list[Problem]]:
    """Parse journey YAML into data and a line map; a syntax error becomes a problem."""
    return read_yaml(text, file, _WORDING)


def validate_journey(located: Located) -> tuple[Journey | None, list[Problem]]:
    """Pydantic validation with every error mapped back to its line."""
    if not isinstance(located.data, dict):
        return None, [located.problem((), "a journey file must be a mapping with id, trigger, steps")]
    try:
        return Journey.model_validate(located.data), []
    except ValidationError as exc:
        return None, describe_errors(exc, located, Journey, wording=_WORDING)


class Unchecked(StepBase):
    """A step of a draft that failed validation (its problems are reported): only its id is known,
    so a target naming it resolves, but where it leads is not."""

    type: str = ""


class UncheckedMessage(Message):
    """A message of a draft that failed validation, kept as written so its templates are checked."""

    raw: dict[str, Any] = {}

    def channels(self) -> tuple[str, ...]:
        return tuple(c for c in CHANNELS if self.raw.get(c) is not None)


_STEP: TypeAdapter[Step] = TypeAdapter(Step)


def draft_journey(located: Located) -> Journey | None:
    """The well-formed parts of a journey that failed validation, so that its cross-references,
    expressions and templates are checked in the same run: each step and message is validated on
    its own, again without its unknown keys if it has any; one that still fails is kept as
    `Unchecked` / `UncheckedMessage`. Not a journey to run: built without validation."""
    data = located.data
    if not isinstance(data, dict):
        return None
    raw_steps = data.get("steps")
    raw_messages = data.get("messages")
    trigger = data["trigger"] if isinstance(data.get("trigger"), dict) else {}
    return Journey.model_construct(
        id=str(data.get("id")),
        trigger=Trigger.model_construct(
            event=_text(trigger.get("event")), when=_text(trigger.get("when")), schedule=_text(trigger.get("schedule")),
            at=_text(trigger.get("at")), timezone=_text(trigger.get("timezone")),
            audience=_text(trigger.get("audience"))),
        instance_key=_text(data.get("instance_key")),
        steps=[_step(raw, i) for i, raw in enumerate(raw_steps)] if isinstance(raw_steps, list) else [],
        messages={str(name): _message(raw) for name, raw in raw_messages.items()}
        if isinstance(raw_messages, dict) else {},
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _step(raw: Any, i: int) -> Any:
    step = _lenient(_STEP.validate_python, raw)
    if step is not None:
        return step
    shape = raw if isinstance(raw, dict) else {}
    return Unchecked.model_construct(id=_text(shape.get("id")) or f"steps[{i}]", type=str(shape.get("type")))


def _message(raw: Any) -> Message:
    message = _lenient(Message.model_validate, raw)
    return message or UncheckedMessage.model_construct(raw=raw if isinstance(raw, dict) else {})


def _lenient(validate: Callable[[Any], Any], raw: Any) -> Any:
    """`validate(raw)`, else `validate` of `raw` without its unknown keys, else None."""
    for attempt in range(2):
        try:
            return validate(raw)
        except ValidationError as exc:
            raw = without_unknown_keys(raw, exc, _WORDING.tags) if attempt == 0 else None
            if raw is None:
                return None
    return None
