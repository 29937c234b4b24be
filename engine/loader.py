"""YAML text -> validated `Journey`, keeping the line of every node.

PyYAML's plain loaders forget where a value came from and silently keep the last of
two duplicate keys; here the node tree is walked by hand so that every problem can
be reported as `file:line: message`, all problems of a file at once.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import ValidationError

from engine import model
from engine.errors import Problem
from engine.model import STEP_TYPES, Journey

Path_ = tuple[str | int, ...]


class _Loader(yaml.SafeLoader):
    """YAML 1.2-like scalars: `21:00` stays a string, `on`/`yes` are not booleans."""


_Loader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp)
        for tag, regexp in resolvers
        if tag not in ("tag:yaml.org,2002:timestamp",)
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
for _first, _resolvers in _Loader.yaml_implicit_resolvers.items():
    _Loader.yaml_implicit_resolvers[_first] = [
        (tag, rx) for tag, rx in _resolvers
        if not (tag == "tag:yaml.org,2002:bool" and rx.match("yes"))
        and not (tag in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float") and rx.match("1:00"))
    ]


@dataclass(frozen=True, slots=True)
class Located:
    """Plain data from a YAML document plus the line of every path in it."""

    data: Any
    lines: dict[Path_, int]
    file: str

    def line(self, path: Sequence[str | int]) -> int:
        """The line of the deepest known prefix of `path` (the document start at worst)."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(tuple(path[:end]))
            if line is not None:
                return line
        return 1

    def problem(self, path: Sequence[str | int], message: str) -> Problem:
        return Problem(self.file, self.line(path), message)


def compose(text: str, file: str) -> tuple[Located, list[Problem]]:
    """Parse YAML into data and a line map; a syntax error becomes a problem, not a traceback."""
    builder = _Builder(file)
    try:
        node = yaml.compose(text, Loader=_Loader)
        data = builder.build(node, ()) if node is not None else None
    except yaml.YAMLError as exc:
        line = _error_line(exc, text)
        reason = getattr(exc, "problem", None) or str(exc)
        return Located(None, {}, file), [Problem(file, line, f"malformed YAML: {reason}")]
    return Located(data, builder.lines, file), builder.problems


def _error_line(exc: yaml.YAMLError, text: str) -> int:
    """The problem's line, or where the unclosed construct began when the file just ended."""
    problem = getattr(exc, "problem_mark", None)
    context = getattr(exc, "context_mark", None)
    at_end = problem is not None and problem.line >= len(text.splitlines())
    mark = context if (at_end or problem is None) and context is not None else problem
    return mark.line + 1 if mark is not None else 1


class _Builder:
    """Turns a composed node tree into Python data, recording lines and duplicate keys."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.lines: dict[Path_, int] = {}
        self.problems: list[Problem] = []
        self._constructor = _Loader("")

    def build(self, node: yaml.Node, path: Path_) -> Any:
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        return self._constructor.construct_object(node, deep=True)

    def _mapping(self, node: yaml.MappingNode, path: Path_) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        first_line: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = self._constructor.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if not isinstance(key, str | int | float):
                self.problems.append(Problem(self.file, line, "a mapping key must be a plain value"))
                continue
            key = key if isinstance(key, str | int) else str(key)
            if key in result:
                self.problems.append(Problem(
                    self.file, line,
                    f"duplicate key '{key}' (first defined at line {first_line[key]})",
                ))
                continue
            first_line[key] = line
            self.lines[(*path, key)] = line
            result[key] = self.build(value_node, (*path, key))
            self.lines[(*path, key)] = line
        return result


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`; did you mean 'x'?` when a close match exists, else nothing."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def validate_journey(located: Located) -> tuple[Journey | None, list[Problem]]:
    """Pydantic validation with every error mapped back to its line."""
    if not isinstance(located.data, dict):
        return None, [located.problem((), "a journey file must be a mapping with id, trigger, steps")]
    try:
        return Journey.model_validate(located.data), []
    except ValidationError as exc:
        return None, [_problem_from(located, err) for err in exc.errors()]


def _problem_from(located: Located, err: Any) -> Problem:
    loc = _data_path(located.data, err["loc"])
    if err["type"] == "extra_forbidden" and loc:
        key = str(loc[-1])
        hint = did_you_mean(key, _FIELD_NAMES)
        return located.problem(loc, f"{_describe(located.data, loc[:-1])}unknown key '{key}'{hint}")
    return located.problem(loc, f"{_describe(located.data, loc)}{_message(err)}")


def _data_path(data: Any, loc: Sequence[Any]) -> Path_:
    """Pydantic's loc minus the union tags it inserts (e.g. 'send' in steps.0.send.message)."""
    path: list[str | int] = []
    node = data
    for part in loc:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        elif isinstance(node, dict) and part in STEP_TYPES or part in ("str", "function-after"):
            continue
        else:
            path.append(part)
            node = None
            continue
        path.append(part)
    return tuple(path)


def _describe(data: Any, loc: Path_) -> str:
    """`step 'nudge': channels[1]: ` - names the step by id, the field by its key."""
    prefix, rest = "", list(loc)
    if len(loc) >= 2 and loc[0] == "steps" and isinstance(loc[1], int):
        step = _get(data, loc[:2])
        label = step.get("id") if isinstance(step, dict) and isinstance(step.get("id"), str) else None
        prefix = f"step '{label}': " if label else f"steps[{loc[1]}]: "
        rest = list(loc[2:])
    elif len(loc) >= 2 and loc[0] == "messages":
        prefix, rest = f"message '{loc[1]}': ", list(loc[2:])
    field = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in rest).lstrip(".")
    return f"{prefix}{field}: " if field else prefix


def _get(data: Any, path: Sequence[Any]) -> Any:
    for part in path:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _message(err: Any) -> str:
    kind, msg = err["type"], err["msg"]
    if kind == "missing":
        return "required key is missing"
    if kind == "union_tag_invalid":
        return f"unknown step type {err['input'].get('type')!r}; use one of {', '.join(STEP_TYPES)}"
    if kind == "union_tag_not_found":
        return f"a step needs a 'type': one of {', '.join(STEP_TYPES)}"
    if kind == "literal_error":
        return f"{err['input']!r} is not allowed: expected {err['ctx']['expected']}"
    return str(msg).removeprefix("Value error, ")


_FIELD_NAMES: frozenset[str] = frozenset(
    name
    for cls in vars(model).values()
    if isinstance(cls, type) and issubclass(cls, model.Strict)
    for name in cls.model_fields
)
