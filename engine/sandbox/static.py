"""What `journey validate` can see of a template's limits before it ever runs.

Sizes written in the source (`range(100000)`, `'a' * 20000`, `10 ** 1000`, `.ljust(50000000)`)
are known at load time. Nested loops over them that together go past the steps of a render,
powers past the digits of a number and paddings or repetitions past the size of a value always
end in `template_error`: the author hears it as a warning (the file still loads). What depends on
the event's data cannot be seen here; the render's budget holds it at run time.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from jinja2 import nodes

from engine.sandbox.budget import MAX_DIGITS, MAX_SIZE, MAX_STEPS

_HUGE = 10 ** 18  # any size from here on is reported as it is, without working it out exactly
_PADDING = frozenset({"ljust", "rjust", "center", "zfill"})
_SAME_LENGTH = frozenset({"list", "string", "sort", "reverse", "unique", "upper", "lower", "title"})


def limit_warnings(tree: nodes.Node) -> list[str]:
    """One warning per kind of limit a parsed template or expression is sure to go past."""
    found = []
    steps = _loop_steps(tree, 1)
    if steps > MAX_STEPS:
        found.append(f"loops go through {_count(steps)} items; a render stops after {MAX_STEPS:,} steps "
                     f"(template_error)")
    power = max((_digits(node) or 0 for node in tree.find_all(nodes.Pow)), default=0)
    if power > MAX_DIGITS:
        found.append(f"'**' makes a number of {_count(power)} digits; the limit is {MAX_DIGITS:,} (template_error)")
    built = max(_built(tree), default=0)
    if built > MAX_SIZE:
        found.append(f"builds a value of {_count(built)} characters; the limit is {MAX_SIZE:,} (template_error)")
    return found


def _count(number: int) -> str:
    return f"{number:,}" if number < _HUGE else f"more than {_HUGE:,}"


def _loop_steps(node: nodes.Node, outer: int) -> int:
    """The most items any nest of loops under `node` goes through, counting a loop over what cannot
    be sized here as one."""
    worst = 0
    for child in node.iter_child_nodes():
        if isinstance(child, nodes.For):
            inside = min(_HUGE, outer * (_length(child.iter) or 1))
            worst = max(worst, inside, _loop_steps(child, inside))
        else:
            worst = max(worst, _loop_steps(child, outer))
    return worst


def _length(node: nodes.Node) -> int | None:
    """How many items iterating over `node` yields, when the source says."""
    if isinstance(node, nodes.Const) and isinstance(node.value, str | list | tuple | dict):
        return len(node.value)
    if isinstance(node, nodes.List | nodes.Tuple):
        return len(node.items)
    if isinstance(node, nodes.Dict):
        return len(node.items)
    if isinstance(node, nodes.Mul):
        for sequence, count in ((node.left, node.right), (node.right, node.left)):
            length, times = _length(sequence), _number(count)
            if length is not None and times is not None:
                return min(_HUGE, length * max(0, times))
        return None
    if isinstance(node, nodes.Filter) and node.name in _SAME_LENGTH and node.node is not None:
        return _length(node.node)
    if isinstance(node, nodes.Call):
        return _called_length(node)
    return None


def _called_length(node: nodes.Call) -> int | None:
    if isinstance(node.node, nodes.Name) and node.node.name == "range" and node.args:
        bounds = [_number(arg) for arg in node.args]
        if all(b is not None and abs(b) < _HUGE for b in bounds):
            return len(range(*bounds))  # type: ignore[arg-type]
        return _HUGE if all(b is not None for b in bounds) else None
    if isinstance(node.node, nodes.Getattr) and node.node.attr in ("items", "keys", "values"):
        return _length(node.node.node)
    return None


def _number(node: nodes.Node) -> int | None:
    """A whole number the source spells out (`20000`, `10 ** 6`, `2 * 50`), up to `_HUGE`."""
    if isinstance(node, nodes.Const) and isinstance(node.value, int) and not isinstance(node.value, bool):
        return max(-_HUGE, min(_HUGE, node.value))
    if isinstance(node, nodes.Neg):
        inner = _number(node.node)
        return None if inner is None else -inner
    if isinstance(node, nodes.Mul | nodes.Add | nodes.Pow):
        left, right = _number(node.left), _number(node.right)
        if left is None or right is None:
            return None
        if isinstance(node, nodes.Pow):
            if right < 0:
                return None
            digits = _digits(node)
            return _HUGE if digits is None or digits > 18 else left ** right
        return max(-_HUGE, min(_HUGE, left * right if isinstance(node, nodes.Mul) else left + right))
    return None


def _digits(node: nodes.Node) -> int | None:
    """Digits of a whole number the source spells out, worked out without computing it."""
    if isinstance(node, nodes.Pow):
        base, exponent = _digits(node.left), _number(node.right)
        if base is None or exponent is None or exponent <= 0:
            return None
        small = _number(node.left) if base <= 18 else None
        if small is not None:
            return 1 if abs(small) <= 1 else min(_HUGE, int(exponent * math.log10(abs(small))) + 1)
        return min(_HUGE, (base - 1) * exponent + 1)  # at least: a number of d digits is 10 ** (d - 1) or more
    if isinstance(node, nodes.Mul):
        left, right = _digits(node.left), _digits(node.right)
        return None if left is None or right is None else min(_HUGE, left + right)
    number = _number(node)
    return None if number is None else len(str(abs(number)))


def _built(tree: nodes.Node) -> Iterator[int]:
    """The sizes of the paddings and repetitions the source spells out."""
    for node in tree.find_all((nodes.Mul, nodes.Call, nodes.Filter)):
        if isinstance(node, nodes.Mul) and (length := _length(node)) is not None:
            yield length
        elif isinstance(node, nodes.Call) and isinstance(node.node, nodes.Getattr) \
                and node.node.attr in _PADDING and node.args:
            yield _number(node.args[0]) or 0
        elif isinstance(node, nodes.Filter) and node.name in ("center", "indent") and node.args:
            yield _number(node.args[0]) or 0
