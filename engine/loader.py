"""YAML text -> validated `Journey`, every problem reported as `file:line: message`.

Reading YAML with the line of every node, and mapping pydantic's errors back to those
lines, are shared with the policy and providers files (`channels.yaml_lines`). What is
the journey's own is the wording: a step is named by its id, a message by its name, and
an unknown step type is answered with the list of step types.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from channels.yaml_lines import KeyPath, Located, Problem, Wording, describe_errors, read_yaml, value_at
from engine.model import STEP_TYPES, Journey


class JourneyWording(Wording):
    """Problems in a journey file, worded for its author: `step 'nudge': channels[1]: ...`."""

    malformed: ClassVar[str] = "malformed YAML"
    duplicate: ClassVar[str] = "duplicate key '{key}' (first defined at line {first})"
    tags: ClassVar[frozenset[str]] = Wording.tags | frozenset(STEP_TYPES)

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
