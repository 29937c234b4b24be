"""YAML read with the line of every node, and pydantic errors as `file:line: message`.

Journeys, the channel policy and the providers file are all hand-edited YAML whose
authors fix them by line. So there is one reader for all three: it keeps the line of
every key and item, reports duplicate keys (PyYAML silently keeps the last) and reads
scalars as a person means them (an unquoted `22:00` is a clock time, not YAML 1.1's
sexagesimal 1320; `yes`/`no`/`on`/`off` are words, not booleans). And there is one
formatter, which maps each pydantic error back to the line of the key it is about and
suggests the key meant when one is misspelt. A kind of file only chooses its words
(`Wording`); the journey loader, for one, names steps by their id.
"""

from __future__ import annotations

import copy
import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from types import NoneType, UnionType
from typing import Annotated, Any, ClassVar, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

KeyPath = tuple[str | int, ...]
"""Where a value sits in a document: mapping keys and sequence indices from the top."""

_ABSENT = object()


@dataclass(frozen=True, slots=True, order=True)
class Problem:
    """One thing wrong in one file, located so an editor can jump to it."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


class FileError(ValueError):
    """A file is not valid YAML of the expected shape; `problems` are `file:line: message`."""

    def __init__(self, problems: Sequence[Problem | str]) -> None:
        self.problems = [str(problem) for problem in problems]
        super().__init__("\n".join(self.problems))


class Wording:
    """How one kind of file words its problems; the defaults are the policy's and providers'.

    Only the words differ between kinds of file: which line a problem is on, and which
    key was meant, are worked out the same way for all of them by `describe_errors`.
    """

    malformed: ClassVar[str] = "invalid YAML"
    duplicate: ClassVar[str] = "duplicate key '{key}' (first at line {first})"
    tags: ClassVar[frozenset[str]] = frozenset({"str", "function-after"})
    """Steps pydantic inserts into an error's location for a union; they are not keys."""

    def place(self, data: Any, path: KeyPath) -> str:
        """The prefix naming where an error is, `channels.sms.cost: `; empty at the top."""
        return f"{dotted(path)}: " if path else ""

    def unknown_key(self, data: Any, path: KeyPath, hint: str) -> str:
        """The message for the key at the end of `path`, which its mapping does not allow."""
        inside = f" in {dotted(path[:-1])}" if len(path) > 1 else ""
        return f"unknown key '{path[-1]}'{inside}{hint}"

    def message(self, err: ErrorDetails) -> str:
        """Pydantic's own message, without the `Value error, ` our validators would show."""
        return str(err["msg"]).removeprefix("Value error, ")


PLAIN = Wording()


@dataclass(frozen=True, slots=True)
class Located:
    """Plain data from a YAML document plus the line of every path in it."""

    data: Any
    lines: dict[KeyPath, int]
    file: str

    def line(self, path: Sequence[str | int]) -> int:
        """The line of the deepest known prefix of `path` (the document start at worst)."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(tuple(path[:end]))
            if line is not None:
                return line
        return 1

    def problem(self, path: Sequence[str | int], message: str) -> Problem:
        """`message` located at the line of `path`."""
        return Problem(self.file, self.line(path), message)


class _Loader(yaml.SafeLoader):
    """YAML 1.2-like scalars: `21:00` stays a string, `on`/`yes` are not booleans. Nesting is
    bounded: PyYAML composes nodes recursively, and 1,500 nested `[` would otherwise end in a
    RecursionError traceback rather than a `file:line` problem."""

    depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise _TooDeep(self.peek_event().start_mark.line + 1)
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


_BOOL, _INT, _FLOAT = "tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"


def _kept(tag: str, pattern: re.Pattern[str]) -> bool:
    """False for YAML 1.1's timestamps, yes/no/on/off booleans and sexagesimal numbers.

    PyYAML matches every integer with the one pattern that also matches `1:00`, so plain
    integers stay strings as well; pydantic turns them into numbers where a field wants one.
    """
    return not (
        tag == "tag:yaml.org,2002:timestamp"
        or (tag == _BOOL and pattern.match("yes"))
        or (tag in (_INT, _FLOAT) and pattern.match("1:00"))
    )


_Loader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if _kept(tag, pattern)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


MAX_BYTES = 1024 * 1024  # a journey, policy or providers file: far more than any needs
MAX_VALUES = 100_000  # values once aliases are expanded: a "billion laughs" file stops here
MAX_DEPTH = 100  # levels of nesting: a journey uses fewer than ten


class _TooBig(Exception):
    pass


class _TooDeep(Exception):
    pass


def read_yaml(text: str, file: str, wording: Wording = PLAIN) -> tuple[Located, list[Problem]]:
    """Data and a line map; a syntax error or duplicate key becomes a problem, not a traceback.
    Bounded: a file over `MAX_BYTES`, one whose aliases expand past `MAX_VALUES` values, or one
    nested deeper than `MAX_DEPTH` levels, is a problem too, found in a moment rather than after
    minutes and gigabytes (or a RecursionError)."""
    size = len(text.encode("utf-8", "replace"))
    if size > MAX_BYTES:
        return Located(None, {}, file), [Problem(file, 1, f"the file is {size:,} bytes, over the limit of "
                                                          f"{MAX_BYTES:,}")]
    builder = _Builder(file, wording)
    try:
        node = yaml.compose(text, Loader=_Loader)
        data = builder.build(node, ()) if node is not None else None
    except yaml.YAMLError as exc:
        reason = getattr(exc, "problem", None) or str(exc)
        return Located(None, {}, file), [Problem(file, _error_line(exc, text), f"{wording.malformed}: {reason}")]
    except _TooBig as exc:
        return Located(None, {}, file), [Problem(file, int(str(exc)), f"the file expands to more than "
                                                                     f"{MAX_VALUES:,} values (YAML aliases?)")]
    except _TooDeep as exc:
        return Located(None, {}, file), [Problem(file, int(str(exc)), f"nested more than {MAX_DEPTH} levels deep")]
    return Located(data, builder.lines, file), builder.problems


def read_mapping(text: str, file: str) -> Located:
    """A document of keys (data None when empty); FileError lists every problem at once."""
    located, problems = read_yaml(text, file)
    if problems:
        raise FileError(problems)
    if located.data is not None and not isinstance(located.data, dict):
        raise FileError([located.problem((), "expected a mapping of keys")])
    return located


def _error_line(exc: yaml.YAMLError, text: str) -> int:
    """The problem's line, or where the unclosed construct began when the file just ended."""
    problem = getattr(exc, "problem_mark", None)
    context = getattr(exc, "context_mark", None)
    at_end = problem is not None and problem.line >= len(text.splitlines())
    mark = context if (at_end or problem is None) and context is not None else problem
    return mark.line + 1 if mark is not None else 1


class _Builder:
    """Turns a composed node tree into Python data, recording lines and duplicate keys."""

    def __init__(self, file: str, wording: Wording) -> None:
        self.file = file
        self.wording = wording
        self.lines: dict[KeyPath, int] = {}
        self.problems: list[Problem] = []
        self.values = 0
        self._constructor = _Loader("")

    def build(self, node: yaml.Node, path: KeyPath) -> Any:
        self.values += 1
        if self.values > MAX_VALUES:
            raise _TooBig(node.start_mark.line + 1)
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        return self._constructor.construct_object(node, deep=True)

    def _mapping(self, node: yaml.MappingNode, path: KeyPath) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = self._constructor.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if not isinstance(key, str | int | float):
                self.problems.append(Problem(self.file, line, "a mapping key must be a plain value"))
                continue
            key = key if isinstance(key, str | int) else str(key)
            if key in result:
                first = self.lines[(*path, key)]
                self.problems.append(Problem(self.file, line, self.wording.duplicate.format(key=key, first=first)))
                continue
            self.lines[(*path, key)] = line
            result[key] = self.build(value_node, (*path, key))
            self.lines[(*path, key)] = line
        return result


def describe_errors(exc: ValidationError, located: Located, model: type[BaseModel], at: KeyPath = (),
                    wording: Wording = PLAIN) -> list[Problem]:
    """One problem per pydantic error, at the line of the key it is about, in line order.

    `model` validated the value at `at` in `located` (the whole document by default; one
    providers entry is `("providers", 2)`); it tells which keys were allowed where one was not.
    """
    base = value_at(located.data, at)
    return sorted(_problem(err, located, model, at, base, wording) for err in exc.errors())


def _problem(err: ErrorDetails, located: Located, model: type[BaseModel], at: KeyPath, base: Any,
             wording: Wording) -> Problem:
    inner = _data_path(base, err["loc"], wording.tags)
    path = (*at, *inner)
    if inner and (err["type"] == "extra_forbidden" or err["loc"][-1] == "[key]"):
        allowed = _keys_at(model, base, inner[:-1])
        hint = did_you_mean(str(inner[-1]), allowed) or (f"; expected one of: {', '.join(allowed)}" if allowed else "")
        return located.problem(path, wording.unknown_key(located.data, path, hint))
    return located.problem(path, wording.place(located.data, path) + wording.message(err))


def without_unknown_keys(data: Any, exc: ValidationError, tags: frozenset[str] = PLAIN.tags) -> Any | None:
    """A copy of `data` without the keys `exc` reports as not allowed, for validating the rest
    again (so one misspelt key does not hide its neighbours' problems); None when it reports none."""
    paths = [_data_path(data, err["loc"], tags) for err in exc.errors() if err["type"] == "extra_forbidden"]
    if not paths:
        return None
    data = copy.deepcopy(data)
    for path in paths:
        parent = value_at(data, path[:-1])
        if path and isinstance(parent, dict):
            parent.pop(path[-1], None)
    return data


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`; did you mean 'x'?` when a close match exists, else nothing."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def dotted(path: Sequence[str | int]) -> str:
    """`providers.0.channels` - a path as the author would point at it."""
    return ".".join(str(part) for part in path)


def value_at(data: Any, path: Sequence[str | int]) -> Any:
    """The value at `path` in `data`, None where the path leads nowhere."""
    for part in path:
        data = _child(data, part)
        if data is _ABSENT:
            return None
    return data


def _child(node: Any, part: str | int) -> Any:
    if isinstance(node, dict) and part in node:
        return node[part]
    if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
        return node[part]
    return _ABSENT


def _data_path(data: Any, loc: Sequence[str | int], tags: frozenset[str]) -> KeyPath:
    """Pydantic's loc as a path in the data: the union tags it inserts (`send` in
    steps.0.send.message) and the `[key]` that marks a bad key are not in the file."""
    path: list[str | int] = []
    for part in loc:
        child = _child(data, part)
        if child is _ABSENT and (part in tags or part == "[key]"):
            continue
        path.append(part)
        data = None if child is _ABSENT else child
    return tuple(path)


def _keys_at(model: type[BaseModel], data: Any, path: KeyPath) -> list[str]:
    """The keys `model` allows in the mapping at `path` of `data`, as the author writes them."""
    shape: Any = model
    for part in path:
        shape = _inside(_narrowed(shape, data), part)
        data = value_at(data, (part,))
    shape = _narrowed(shape, data)
    if _is_model(shape):
        return [field.alias or name for name, field in shape.model_fields.items()]
    if get_origin(shape) is dict and get_origin(get_args(shape)[0]) is Literal:
        return [str(key) for key in get_args(get_args(shape)[0])]
    return []


def _inside(shape: Any, part: str | int) -> Any:
    """The type of one key's value or one item of `shape`; None when it has none."""
    if _is_model(shape):
        fields = shape.model_fields.items()
        return next((field.annotation for name, field in fields if part in (name, field.alias)), None)
    if get_origin(shape) is dict:
        return get_args(shape)[1]
    if get_origin(shape) in (list, tuple):
        return get_args(shape)[0]
    return None


def _narrowed(shape: Any, data: Any) -> Any:
    """`shape` without `Annotated`, and a union narrowed to the member `data` is meant for."""
    while get_origin(shape) is Annotated:
        shape = get_args(shape)[0]
    if get_origin(shape) not in (Union, UnionType):
        return shape
    members = [_bare(member) for member in get_args(shape) if member is not NoneType]
    fitting = [member for member in members if _is_model(member) and _tag_fits(member, data)]
    return _narrowed((fitting or members)[0], data)


def _bare(shape: Any) -> Any:
    """`shape` without its `Annotated` wrappers (a tagged member of a discriminated union)."""
    while get_origin(shape) is Annotated:
        shape = get_args(shape)[0]
    return shape


def _tag_fits(model: type[BaseModel], data: Any) -> bool:
    """Whether `data` agrees with every `Literal` field of `model` it sets (a union's tag)."""
    if not isinstance(data, dict):
        return False
    return all(
        data[name] in get_args(field.annotation)
        for name, field in model.model_fields.items()
        if get_origin(field.annotation) is Literal and name in data
    )


def _is_model(shape: Any) -> bool:
    return isinstance(shape, type) and issubclass(shape, BaseModel)
