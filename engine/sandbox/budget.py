"""One render's budget, and the size of a value as what printing it would build.

A template is written by a journey author and filled with an event's data; neither may hold
the engine. So each render (one expression, or one string field of a message) gets a budget:
`MAX_STEPS` steps (every loop iteration, call, filter and power) and `MAX_WORK` characters built
or scanned (padding, formatting, repetition, joins, concatenation, output). No single value may
be over `MAX_SIZE` characters, and no number over `MAX_DIGITS` digits: both are checked with an
estimate *before* the value is built, so a 50 MB string is refused rather than allocated. Past
any of them the render raises `RenderLimitError` naming the limit.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from engine.errors import RenderLimitError

MAX_STEPS = 100_000  # loop iterations, calls, filters and powers in one render
MAX_WORK = 10_000_000  # characters built or scanned in one render
MAX_SIZE = 1_000_000  # characters in any one value, and in a render's output
MAX_DIGITS = 4_300  # digits of any one whole number (Python will not print longer ones either)

_current: ContextVar[Budget | None] = ContextVar("render_budget", default=None)


class Budget:
    """What is left of one render's allowance of steps and work."""

    __slots__ = ("steps", "work")

    def __init__(self) -> None:
        self.steps = MAX_STEPS
        self.work = MAX_WORK

    def step(self, count: int = 1) -> None:
        self.steps -= count
        if self.steps < 0:
            raise RenderLimitError(f"went over the limit of {MAX_STEPS:,} steps (loop iterations, calls, "
                                   f"filters) in one render")

    def spend(self, characters: int) -> None:
        """Characters built or scanned."""
        self.work -= characters
        if self.work < 0:
            raise RenderLimitError(f"went over the limit of {MAX_WORK:,} characters built in one render")

    def read(self, value: Any) -> None:
        """Going through `value`: a string's characters are work, a collection's items are steps."""
        if isinstance(value, str):
            self.spend(len(value))
        elif length := size(value):
            self.step(length)

    def expect(self, characters: int, what: str) -> None:
        """Before building a value of about `characters`: refuse one over `MAX_SIZE`, or over what
        is left of the budget, without building it."""
        if characters > MAX_SIZE:
            raise RenderLimitError(f"{what} would build {characters:,} characters, over the limit of {MAX_SIZE:,}")
        self.spend(characters)


def current() -> Budget:
    """The budget of the render under way; a fresh one outside any (Jinja folds constants at compile
    time by calling filters, which must hold to the same limits)."""
    return _current.get() or Budget()


@contextmanager
def render_budget() -> Iterator[Budget]:
    """One render's budget; a render nested in another (a macro, an expression) shares its caller's."""
    budget = _current.get()
    if budget is not None:
        yield budget
        return
    budget = Budget()
    token = _current.set(budget)
    try:
        yield budget
    finally:
        _current.reset(token)


def digits(number: int) -> int:
    """Decimal digits of `number`, at most one too many (without printing it)."""
    return number.bit_length() * 77 // 256 + 1


def check_digits(estimate: int, what: str) -> None:
    if estimate > MAX_DIGITS:
        raise RenderLimitError(f"{what} would have {estimate:,} digits, over the limit of {MAX_DIGITS:,}")


def weight(value: Any, cap: int = MAX_SIZE) -> int:
    """About how many characters printing `value` takes (containers by their items, deeply), counted
    only as far as `cap`: a list holding one long string 1,000 times weighs 1,000 times the string."""
    total = 0
    pending = [value]
    while pending and total <= cap:
        item = pending.pop()
        if isinstance(item, str):
            total += len(item)
        elif isinstance(item, bool) or item is None:
            total += 5
        elif isinstance(item, int):
            total += digits(item)
        elif isinstance(item, Mapping):
            total += 2 + 4 * len(item)
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            total += 2 + 2 * len(item)
            pending.extend(item)
        else:  # floats, dates, undefined: a few dozen characters at most
            total += 24
    return total


def size(value: Any) -> int:
    """The length of a sequence, string or mapping; 0 for anything else (an iterator, a number)."""
    try:
        return len(value) if isinstance(value, str | list | tuple | dict | set | frozenset | range) else 0
    except OverflowError:  # a range too long for len()
        return MAX_WORK + 1
