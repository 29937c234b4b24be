"""Jinja2 expressions and templates, compiled once at load in a sandbox.

Nothing in a journey file is ever imported or eval'd: conditions and message text run
in Jinja2's SandboxedEnvironment with StrictUndefined, so a missing variable is an
error the author hears about rather than an empty string in a customer's SMS.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError, Undefined
from jinja2.sandbox import SandboxedEnvironment

from engine.errors import EvaluationError, TemplateRenderError


class _Environment(SandboxedEnvironment):
    """`event.properties.items` means the key 'items', not dict.items: keys win over methods."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, Mapping):
            try:
                return obj[attribute]
            except (KeyError, TypeError):
                pass
        return super().getattr(obj, attribute)


_ENV = _Environment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)

Context = Mapping[str, Any]


class Expression:
    """A compiled condition or value expression, e.g. `event.properties.value >= 20`."""

    __slots__ = ("source", "_fn")

    def __init__(self, source: str) -> None:
        self.source = source
        self._fn: Callable[..., Any] = _ENV.compile_expression(source, undefined_to_none=False)

    def __call__(self, context: Context) -> Any:
        try:
            value = self._fn(**context)
        except (TemplateError, TypeError, ValueError, ArithmeticError, LookupError) as exc:
            raise EvaluationError(f"expression {self.source!r} failed: {exc}") from exc
        if isinstance(value, Undefined):  # a bare missing name comes back undefined rather than raising
            raise EvaluationError(f"expression {self.source!r} failed: {value._undefined_message}")
        return value


class Template:
    """One string field of a message; constant strings skip Jinja entirely."""

    __slots__ = ("source", "_template")

    def __init__(self, source: str) -> None:
        self.source = source
        is_template = "{{" in source or "{%" in source or "{#" in source
        self._template = _ENV.from_string(source) if is_template else None

    def render(self, context: Context) -> str:
        if self._template is None:
            return self.source
        try:
            return self._template.render(context)
        except (TemplateError, TypeError, ValueError, ArithmeticError, LookupError) as exc:
            raise TemplateRenderError(f"template {self.source!r} failed: {exc}") from exc


def syntax_error(exc: TemplateSyntaxError) -> str:
    """The author-facing text of a Jinja syntax error."""
    return exc.message or str(exc)


def compile_tree(tree: Any) -> Any:
    """Compile every string leaf of a content mapping; raises TemplateSyntaxError."""
    if isinstance(tree, str):
        return Template(tree)
    if isinstance(tree, Mapping):
        return {k: compile_tree(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [compile_tree(v) for v in tree]
    return tree


def render_tree(tree: Any, context: Context) -> Any:
    """Render a compiled content tree into plain data."""
    if isinstance(tree, Template):
        return tree.render(context)
    if isinstance(tree, dict):
        return {k: render_tree(v, context) for k, v in tree.items()}
    if isinstance(tree, list):
        return [render_tree(v, context) for v in tree]
    return tree
