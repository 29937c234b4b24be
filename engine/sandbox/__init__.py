"""Jinja2's sandbox with a budget per render: what journey expressions and templates run in.

`budget` (the limits, a render's allowance, the size of a value), `sizes` (what an operation will
build, worked out first), `filters` and `environment` (the sandbox, charging the budget),
`locale_filters` (dates, numbers and money in the recipient's language and zone), `static`
(what `journey validate` can see of the limits in the source)."""

from engine.sandbox.budget import MAX_DIGITS, MAX_SIZE, MAX_STEPS, MAX_WORK, render_budget
from engine.sandbox.environment import BoundedEnvironment
from engine.sandbox.locale_filters import DEFAULT_RECIPIENT, RECIPIENT, Recipient, to_datetime
from engine.sandbox.static import limit_warnings

__all__ = ["DEFAULT_RECIPIENT", "MAX_DIGITS", "MAX_SIZE", "MAX_STEPS", "MAX_WORK", "RECIPIENT", "BoundedEnvironment",
           "Recipient", "to_datetime", "limit_warnings", "render_budget"]
