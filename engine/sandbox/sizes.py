"""How big a result will be, worked out before it is built.

Padding (`ljust`, `center`, `zfill`, `|indent`), formatting (`%`, `str.format`, `|format`),
repetition, joining and replacing can each build far more than they are given: `'x'.ljust(50000000)`
is 50 MB from one character. Each estimate here is an upper bound, or close to one, of what the
operation builds from its arguments, so the sandbox can refuse it before allocating anything.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from string import Formatter
from typing import Any

from engine.sandbox.budget import weight

_PRINTF = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?([diouxXeEfFgGcrsa%])")
_FORMAT_SHAPE = re.compile(r"^(?:.?[<>=^])?[-+ ]?z?#?0?(\d+)?[,_]?(?:\.(\d+))?[bcdeEfFgGnosxX%]?$")
PADDING = frozenset({"ljust", "rjust", "center", "zfill"})


def whole(value: Any) -> int:
    """`value` if it is a whole number, else 0."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def printf(template: str, args: Any) -> int:
    """`template % args`: the template, plus for each conversion its width and precision and the
    longest argument (a `*` width is the largest number among the arguments)."""
    values = list(args.values()) if isinstance(args, Mapping) else list(args) if isinstance(args, tuple) else [args]
    longest = max((weight(v) for v in values), default=0)
    widest = max((abs(whole(v)) for v in values), default=0)
    total = len(template)
    for width, precision, _ in _PRINTF.findall(template):
        total += longest
        for number in (width, precision):
            total += widest if number == "*" else int(number) if number else 0
    return total


def formatted(template: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> int:
    """`template.format(*args, **kwargs)`: the template, plus for each field the longest argument padded
    to the field's width, with its precision (a width given by a nested field: the largest number)."""
    values = [*args, *kwargs.values()]
    longest = max((weight(v) for v in values), default=0)
    widest = max((abs(whole(v)) for v in values), default=0)
    total = len(template)
    for _, field, spec, _ in Formatter().parse(template):
        if field is not None:
            total += _field(longest, widest, spec or "")
    return total


def _field(longest: int, widest: int, spec: str) -> int:
    if "{" in spec:
        return longest + 2 * widest
    match = _FORMAT_SHAPE.match(spec)
    if match is None:  # a type's own format (dates): a few dozen characters per character of spec
        return longest + 32 * len(spec)
    width, precision = (int(n) if n else 0 for n in match.groups())
    return max(width, longest + precision)


def padded(text: str, width: Any) -> int:
    return max(len(text), whole(width))


def replaced(text: str, old: str, new: str, count: Any = -1) -> int:
    """`text.replace(old, new, count)`: each occurrence (every gap, for an empty `old`) grows by the difference."""
    found = text.count(old) if old else len(text) + 1
    limit = whole(count)
    if count is not None and limit >= 0:
        found = min(found, limit)
    return len(text) + found * max(0, len(new) - len(old))


def joined(separator: str, items: Sequence[Any]) -> int:
    return sum(weight(item) for item in items) + len(separator) * max(0, len(items) - 1)


def indented(text: Any, width: Any) -> int:
    """`|indent(width)`: every line gets the indent (a number of spaces or a string)."""
    step = len(width) if isinstance(width, str) else whole(width)
    lines = text.count("\n") + 1 if isinstance(text, str) else weight(text)
    return weight(text) + lines * step


def wrapped(text: Any, width: Any, wrapstring: Any) -> int:
    """`|wordwrap(width, wrapstring=...)`: at most one break per `width` characters and per line."""
    size = weight(text)
    breaks = size // max(1, whole(width)) + (text.count("\n") if isinstance(text, str) else 0) + 1
    return size + breaks * (len(wrapstring) if isinstance(wrapstring, str) else 1)


def summed(items: Iterable[Any]) -> int:
    """The characters `|sum(start=[])` copies: each addition copies everything added so far."""
    total = copied = 0
    for item in items:
        total += weight(item)
        copied += total
    return copied
