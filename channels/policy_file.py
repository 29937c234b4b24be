"""YAML reading that keeps a line number for every key, and error wording.

Policy authors fix files by line, so every problem is reported as
`file:line: message`, including pydantic errors mapped back to the key.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any, Literal, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

Path_ = tuple[str, ...]


class FileError(ValueError):
    """A file is not valid YAML of the expected shape; `problems` are `file:line: message`."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def read_yaml(text: str, name: str) -> tuple[dict[str, Any] | None, dict[Path_, int]]:
    """Parse a mapping document; returns its data and the line of every key path."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise FileError([f"{name}:{line}: invalid YAML: {exc.problem or exc}"]) from None
    if node is None:
        return None, {}
    if not isinstance(node, yaml.MappingNode) or not isinstance(data, dict):
        raise FileError([f"{name}:{node.start_mark.line + 1}: expected a mapping of keys"])
    lines: dict[Path_, int] = {(): node.start_mark.line + 1}
    problems: list[str] = []
    _walk(node, (), lines, problems, name)
    if problems:
        raise FileError(problems)
    return data, lines


def _walk(node: yaml.Node, path: Path_, lines: dict[Path_, int], problems: list[str], name: str) -> None:
    if isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*path, str(index)), lines, problems, name)
        return
    if not isinstance(node, yaml.MappingNode):
        return
    for key_node, value_node in node.value:
        key = str(key_node.value)
        line = key_node.start_mark.line + 1
        child = (*path, key)
        if child in lines:
            problems.append(f"{name}:{line}: duplicate key {key!r} (first at line {lines[child]})")
            continue
        lines[child] = line
        _walk(value_node, child, lines, problems, name)


def merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """`over` on top of `base`, recursively for mappings; other values replace."""
    merged = dict(base)
    for key, value in over.items():
        below = merged.get(key)
        if isinstance(below, Mapping) and isinstance(value, Mapping):
            merged[key] = merge(below, value)
        else:
            merged[key] = value
    return merged


def describe_errors(exc: ValidationError, name: str, lines: Mapping[Path_, int], model: type[BaseModel]) -> list[str]:
    """One `file:line: message` per pydantic error, at the line of the offending key."""
    found = []
    for err in exc.errors():
        loc = tuple(str(part) for part in err["loc"])
        path = tuple(part for part in loc if part != "[key]")
        found.append((_line_of(path, lines), _message(err, loc, path, model)))
    found.sort(key=lambda item: item[0])
    return [f"{name}:{line}: {message}" for line, message in found]


def _line_of(path: Path_, lines: Mapping[Path_, int]) -> int:
    for end in range(len(path), -1, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return 1


def _message(err: Mapping[str, Any], loc: Path_, path: Path_, model: type[BaseModel]) -> str:
    if err["type"] == "extra_forbidden" or (loc and loc[-1] == "[key]"):
        return _unknown_key(path, model)
    where = ".".join(path) or "policy"
    return f"{where}: {str(err['msg']).removeprefix('Value error, ')}"


def _unknown_key(path: Path_, model: type[BaseModel]) -> str:
    key = path[-1]
    where = ".".join(path[:-1])
    message = f"unknown key {key!r}" + (f" in {where}" if where else "")
    allowed = _allowed_keys(model, path[:-1])
    close = difflib.get_close_matches(key, allowed, n=1)
    if close:
        return f"{message}; did you mean {close[0]!r}?"
    if allowed:
        return f"{message}; expected one of: {', '.join(allowed)}"
    return message


def _allowed_keys(model: type[BaseModel], path: Path_) -> list[str]:
    shape: Any = model
    for part in path:
        if isinstance(shape, type) and issubclass(shape, BaseModel):
            field = shape.model_fields.get(part)
            if field is None:
                return []
            shape = field.annotation
        elif get_origin(shape) is dict:
            shape = get_args(shape)[1]
        else:
            return []
    if isinstance(shape, type) and issubclass(shape, BaseModel):
        return list(shape.model_fields)
    if get_origin(shape) is dict:
        key_type = get_args(shape)[0]
        if get_origin(key_type) is Literal:
            return [str(arg) for arg in get_args(key_type)]
    return []
