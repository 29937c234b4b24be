"""Jinja2's filters, each held to the render's budget.

Every filter call is a step; a filter that goes through its input is charged the input's length
(an iterator, such as `map`'s output, one step per item as it is read); those that can build more
than they are given (`center`, `indent`, `format`, `join`, `replace`, `batch`, `wordwrap`,
`tojson`, `sum` of lists, `urlize`) estimate the result first and are refused past the limit;
and no result may be over the size limit.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from engine.errors import RenderLimitError
from engine.sandbox import sizes
from engine.sandbox.budget import MAX_SIZE, Budget, current, weight

CHEAP = frozenset({"length", "count", "default", "d", "first", "last", "attr", "abs", "int", "float", "round",
                   "safe", "random", "items", "days_since"})
"""Filters that read a value without going through it: charged a step, not the value's length."""
MAX_PRECISION = 1_000  # digits `|round` may keep: it raises 10 to that power

Estimate = Callable[[Budget, Any, tuple[Any, ...], dict[str, Any]], Any]


def counted(items: Iterable[Any]) -> Iterator[Any]:
    """`items`, one step of the render's budget per item read."""
    budget = current()
    for item in items:
        budget.step()
        yield item


def checked(result: Any, budget: Budget) -> Any:
    """A value some call built: refused over the size limit, its length charged to the budget."""
    if isinstance(result, str | list | tuple | dict):
        length = len(result)
        if length > MAX_SIZE:
            raise RenderLimitError(f"a value of {length:,} characters or items is over the limit of {MAX_SIZE:,}")
        budget.spend(length)
    return result


def bounded_filters(filters: Mapping[str, Callable[..., Any]]) -> dict[str, Callable[..., Any]]:
    """Each of `filters`, held to the budget (`bounded`)."""
    return {name: bounded(name, function) for name, function in filters.items()}


def bounded(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """`function` as filter `name`: a step, its input charged, its result estimated and checked.
    Jinja's `pass_context`/`pass_environment` marks are kept (they come before the value)."""
    skip = 1 if getattr(function, "jinja_pass_arg", None) is not None else 0
    estimate = ESTIMATES.get(name)
    cheap = name in CHEAP

    @functools.wraps(function)
    def filtered(*args: Any, **kwargs: Any) -> Any:
        budget = current()
        budget.step()
        if len(args) > skip:
            value = args[skip]
            if isinstance(value, Iterator):
                value = counted(value)
            elif not cheap:
                budget.read(value)
            if estimate is not None:
                value = estimate(budget, value, args[skip + 1:], kwargs)
            args = (*args[:skip], value, *args[skip + 1:])
        return checked(function(*args, **kwargs), budget)

    return filtered


def _arg(args: tuple[Any, ...], kwargs: dict[str, Any], index: int, name: str, default: Any = None) -> Any:
    return args[index] if len(args) > index else kwargs.get(name, default)


def _center(budget: Budget, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    budget.expect(max(weight(value), sizes.padded("", _arg(args, kwargs, 0, "width", 80))), "|center")
    return value


def _indent(budget: Budget, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    budget.expect(sizes.indented(value, _arg(args, kwargs, 0, "width", 4)), "|indent")
    return value


def _format(budget: Budget, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    budget.expect(sizes.printf(str(value), kwargs or args), "|format")
    return value


def _join(budget: Budget, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    items = list(value)
    budget.expect(sizes.joined(str(_arg(args, kwargs, 0, "d", "")), items), "|join")
    return items


def _replace(budget: Budget, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    old, new = str(_arg(args, kwargs, 0, "old", "")), str(_arg(args, kwargs, 1, "new", ""))
    budget.expect(sizes.replaced(str(value), old, new, _arg(args, kwargs, 2, "count")), "|replace")
    return value


def _batch(budget: Budget, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    fill = _arg(args, kwargs, 1, "fill_with")
    if fill is not None:
        budget.expect(weight(value) + max(0, sizes.whole(_arg(args, kwargs, 0, "linecount"))) * weight(fill), "|batch")
    return value


def _slice(budget: Budget, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    budget.step(max(0, sizes.whole(_arg(args, kwargs, 0, "slices"))))  # it loops once per slice
    return _batch(budget, value, (None, _arg(args, kwargs, 1, "fill_with")), {})


def _wordwrap(budget: Budget, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    width, wrapstring = _arg(args, kwargs, 0, "width", 79), _arg(args, kwargs, 2, "wrapstring")
    budget.expect(sizes.wrapped(value, width, wrapstring), "|wordwrap")
    return value


def _tojson(budget: Budget, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    indent = _arg(args, kwargs, 0, "indent")
    step = len(indent) if isinstance(indent, str) else max(0, sizes.whole(indent))
    budget.expect(weight(value) * (1 + step), "|tojson")
    return value


def _sum(budget: Budget, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    start = _arg(args, kwargs, 1, "start", 0)
    if isinstance(start, int | float):
        return value
    items = [start, *value]
    budget.expect(weight(items), "|sum")
    budget.spend(sizes.summed(items))
    return items[1:]


def _urlize(budget: Budget, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    extra = sum(len(str(_arg(args, kwargs, i, key) or "")) for i, key in ((2, "target"), (3, "rel")))
    words = len(value.split()) if isinstance(value, str) else weight(value)
    budget.expect(2 * weight(value) + words * (64 + extra), "|urlize")
    return value


def _round(budget: Budget, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    precision = _arg(args, kwargs, 0, "precision", 0)
    if isinstance(precision, int) and abs(precision) > MAX_PRECISION:
        raise RenderLimitError(f"|round precision {precision:,} is over the limit of {MAX_PRECISION:,}")
    return value


ESTIMATES: dict[str, Estimate] = {
    "center": _center, "indent": _indent, "format": _format, "join": _join, "replace": _replace, "batch": _batch,
    "slice": _slice, "wordwrap": _wordwrap, "tojson": _tojson, "sum": _sum, "urlize": _urlize, "round": _round,
}
