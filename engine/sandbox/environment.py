"""Jinja2's immutable sandbox, with every render held to its budget (`engine.sandbox.budget`).

Where the budget is charged:

- every loop (`{% for %}` over a string, list, range, dict's items, anything) goes through
  `counted`, a step per iteration: the compiled template is rewritten before code generation;
- every call (a macro, a method, `loop()` of a recursive loop), filter and intercepted operator
  (`*`, `**`, `+`, `%`) is a step;
- what can build more than it is given is estimated first and refused past the limits: padding
  and formatting methods of strings (`ljust`, `center`, `zfill`, `expandtabs`, `replace`, `join`,
  `format`), `*` repetition, `+` and `~` concatenation, `%` formatting, and numbers (`**`, `*`)
  by their digits;
- what a call or filter built, each `{{ ... }}` printed and each `in` scanned is charged.

Only the string methods that read or reshape text are reachable (not `encode`, `translate`), nor
`to_bytes` of numbers, nor Jinja's `lipsum`; lists and dicts cannot be changed in place (the
immutable sandbox), so a loop cannot double a list at each turn.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from types import BuiltinMethodType, FunctionType, MethodType
from typing import Any

from jinja2 import BaseLoader, StrictUndefined, nodes
from jinja2.runtime import Context, LoopContext, markup_join, str_join
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer

from engine.errors import RenderLimitError
from engine.sandbox import sizes
from engine.sandbox.budget import MAX_SIZE, MAX_STEPS, Budget, check_digits, current, digits, size, weight
from engine.sandbox.filters import bounded, bounded_filters, checked, counted
from engine.sandbox.locale_filters import LOCALE_FILTERS

STR_METHODS = frozenset({
    "capitalize", "casefold", "center", "count", "endswith", "expandtabs", "find", "format", "format_map", "index",
    "isalnum", "isalpha", "isascii", "isdecimal", "isdigit", "isidentifier", "islower", "isnumeric", "isprintable",
    "isspace", "istitle", "isupper", "join", "ljust", "lower", "lstrip", "partition", "removeprefix", "removesuffix",
    "replace", "rfind", "rindex", "rjust", "rpartition", "rsplit", "rstrip", "split", "splitlines", "startswith",
    "strip", "swapcase", "title", "upper", "zfill", "escape", "unescape", "striptags"})
"""What templates may call on a string: reading and reshaping text (Markup's own three included)."""
_SEQUENCES = (str, list, tuple)


def scanned(value: Any) -> Any:
    """The right side of `in`: a string or list is read through (a mapping or set is looked up)."""
    if isinstance(value, _SEQUENCES):
        current().read(value)
    return value


def concatenated(context: Context, parts: list[Any]) -> str:
    """`a ~ b ~ c`, refused before joining when the result would be over the size limit."""
    current().expect(sum(weight(part) for part in parts), "'~'")
    return (markup_join if context.eval_ctx.autoescape else str_join)(parts)


def _test_in(value: Any, seq: Any) -> bool:
    """`x is in y`, charged as `x in y` is."""
    return value in scanned(seq)


_INTERNAL = frozenset({id(counted), id(scanned), id(concatenated)})


def _helper(name: str, *args: nodes.Node, lineno: int) -> nodes.Call:
    return nodes.Call(nodes.ImportedName(f"{__name__}.{name}", lineno=lineno), list(args), [], None, None,
                      lineno=lineno)


class _Bounded(NodeTransformer):
    """Rewrites a parsed template so that its loops, `~` and `in` charge the budget."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = _helper("counted", node.iter, lineno=node.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        items = nodes.List(node.nodes, lineno=node.lineno)
        return _helper("concatenated", nodes.ContextReference(lineno=node.lineno), items, lineno=node.lineno)

    def visit_Compare(self, node: nodes.Compare) -> nodes.Node:
        self.generic_visit(node)
        for operand in node.ops:
            if operand.op in ("in", "notin"):
                operand.expr = _helper("scanned", operand.expr, lineno=node.lineno)
        return node


def _printed(value: Any) -> Any:
    """`finalize`: each `{{ ... }}` is weighed before it is printed, and charged."""
    cost = weight(value)
    current().expect(cost, "printing a value")
    return value


class BoundedEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox every expression and template runs in. `event.properties.items` means the key
    'items', not dict.items: keys win over methods."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, autoescape: bool = False, loader: BaseLoader | None = None) -> None:
        super().__init__(undefined=StrictUndefined, autoescape=autoescape, keep_trailing_newline=True,
                         finalize=_printed, loader=loader)
        self.filters = bounded_filters({**self.filters, **LOCALE_FILTERS})
        self.tests["in"] = _test_in
        self.globals["range"] = _range
        self.globals.pop("lipsum", None)

    def add_filter(self, name: str, function: Any) -> None:
        """Add a filter of the engine's own, held to the budget like the rest."""
        self.filters[name] = bounded(name, function)

    def _generate(self, source: nodes.Template, name: str | None, filename: str | None,
                  defer_init: bool = False) -> str:
        return super()._generate(_Bounded().visit(source), name, filename, defer_init)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        budget = current()
        budget.step()
        _BINOPS[operator](budget, left, right)
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805 - Jinja's
        if id(__obj) in _INTERNAL:  # the rewritten template's own calls (not the loop's variables Jinja adds)
            return __obj(*args)
        budget = current()
        budget.step()
        target = getattr(__obj, "__wrapped__", __obj) if type(__obj) is FunctionType else __obj  # str.format
        owner = target.__self__ if isinstance(target, BuiltinMethodType | MethodType) else None
        if isinstance(owner, str):
            args = _string_method(budget, owner, target.__name__, args, kwargs)
        elif isinstance(__obj, LoopContext) and args:  # `loop(children)`: a recursive loop goes through them
            budget.step(size(args[0]))
        args = tuple(counted(a) if isinstance(a, Iterator) else a for a in args)
        return checked(super().call(__context, __obj, *args, **kwargs), budget)

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if isinstance(obj, str):
            return attr in STR_METHODS
        if isinstance(obj, int | float) and attr in ("to_bytes", "from_bytes"):
            return False
        return super().is_safe_attribute(obj, attr, value)

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, Mapping):
            try:
                return obj[attribute]
            except (KeyError, TypeError):
                pass
        return super().getattr(obj, attribute)


def _range(*args: int) -> range:
    """`range` as templates see it: longer than the steps of a whole render is refused at once."""
    numbers = range(*args)
    length = size(numbers)
    if length > MAX_STEPS:
        raise RenderLimitError(f"range of {length:,} numbers is over the limit of {MAX_STEPS:,} steps in one render")
    return numbers


def _string_method(budget: Budget, text: str, name: str, args: tuple[Any, ...],
                   kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """Before calling `text.<name>(*args)`: its length charged, and what it would build estimated
    for the methods that can build more than they read. `join` reads its items once, here."""
    budget.spend(len(text))
    estimate = None
    if name in sizes.PADDING and args:
        estimate = sizes.padded(text, args[0])
    elif name == "expandtabs":
        estimate = len(text) + text.count("\t") * max(0, sizes.whole(args[0] if args else kwargs.get("tabsize", 8)))
    elif name == "replace" and len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str):
        estimate = sizes.replaced(text, args[0], args[1], args[2] if len(args) > 2 else kwargs.get("count", -1))
    elif name == "join" and args:
        args = (list(counted(args[0])), *args[1:])
        estimate = sizes.joined(text, args[0])
    elif name == "format":
        estimate = sizes.formatted(text, args, kwargs)
    elif name == "format_map" and args and isinstance(args[0], Mapping):
        estimate = sizes.formatted(text, (), args[0])
    if estimate is not None:
        budget.expect(estimate, f"'{name}'")
    return args


def _times(budget: Budget, left: Any, right: Any) -> None:
    if _whole(left) and _whole(right):
        check_digits(digits(left) + digits(right), "'*'")
        return
    for sequence, count in ((left, right), (right, left)):
        if isinstance(sequence, _SEQUENCES) and _whole(count) and count > 0:
            budget.expect(weight(sequence, MAX_SIZE // count + 1) * count, "'*'")


def _power(budget: Budget, left: Any, right: Any) -> None:
    if _whole(left) and _whole(right) and right > 0 and abs(left) > 1:
        estimate = int(right * math.log10(abs(left))) + 1
        check_digits(estimate, "'**'")
        budget.spend(estimate)


def _plus(budget: Budget, left: Any, right: Any) -> None:
    if isinstance(left, _SEQUENCES) and isinstance(right, _SEQUENCES):
        budget.expect(weight(left) + weight(right), "'+'")


def _modulo(budget: Budget, left: Any, right: Any) -> None:
    if isinstance(left, str):
        budget.expect(sizes.printf(left, right), "'%'")


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_BINOPS = {"*": _times, "**": _power, "+": _plus, "%": _modulo}
