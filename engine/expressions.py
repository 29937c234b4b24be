"""Jinja2 expressions and templates, compiled once at load in a sandbox.

Nothing in a journey file is ever imported or eval'd: conditions and message text run
in Jinja2's immutable sandbox with StrictUndefined, so a missing variable is an error the
author hears about rather than an empty string in a customer's SMS. Each render has a
budget of steps and characters (`engine.sandbox`): no template or event can hold the engine.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Callable, Collection, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple

from jinja2 import DictLoader, TemplateError, TemplateSyntaxError, Undefined, UndefinedError, meta, nodes
from jinja2.parser import Parser
from markupsafe import Markup, escape

from engine.errors import EvaluationError, RenderLimitError, TemplateRenderError
from engine.sandbox import MAX_SIZE, BoundedEnvironment, limit_warnings, render_budget, to_datetime

_FAILURES = (TemplateError, TypeError, ValueError, ArithmeticError, LookupError, MemoryError, RecursionError,
             EvaluationError)


def _days_since(value: Any, reference: Any) -> float:
    """`profile.attributes.last_purchase_at | days_since(event.timestamp) > 30`: days from one
    timestamp to another (fractional; negative when `value` comes after `reference`)."""
    return (to_datetime(reference) - to_datetime(value)).total_seconds() / 86400


def _environment(html: bool, partials: Mapping[str, str] | None = None) -> BoundedEnvironment:
    env = BoundedEnvironment(autoescape=html, loader=DictLoader(dict(partials)) if partials else None)
    env.add_filter("days_since", _days_since)
    return env


_ENV = _environment(False)
_HTML_ENV = _environment(True)


class Environments:
    """Where a journey's templates compile: the shared sandboxes, or, for a journey that includes
    partials from its `templates/` folder, sandboxes of its own that load exactly those (the
    sources it was compiled with, so a running version keeps them)."""

    __slots__ = ("plain", "html")

    def __init__(self, partials: Mapping[str, str] | None = None) -> None:
        self.plain = _environment(False, partials) if partials else _ENV
        self.html = _environment(True, partials) if partials else _HTML_ENV


SHARED = Environments()


class Instant(str):
    """`now` as expressions and templates see it: the engine's time as RFC 3339 text (what
    `{{ now }}` prints), compared by instant with a timestamp on the other side, whatever its
    offset or precision (`event.properties.starts_at > now` with starts_at in +02:00 is right;
    as text it would not be). A value that is no timestamp is an evaluation error, not a guess."""

    __slots__ = ()

    def _other(self, other: object) -> datetime:
        try:
            return to_datetime(other)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"now compared with {other!r}, which is not a timestamp") from exc

    def __lt__(self, other: object) -> bool:
        return to_datetime(str(self)) < self._other(other)

    def __le__(self, other: object) -> bool:
        return to_datetime(str(self)) <= self._other(other)

    def __gt__(self, other: object) -> bool:
        return to_datetime(str(self)) > self._other(other)

    def __ge__(self, other: object) -> bool:
        return to_datetime(str(self)) >= self._other(other)

    def __eq__(self, other: object) -> bool:
        try:
            return to_datetime(str(self)) == to_datetime(other)
        except (TypeError, ValueError):
            return False

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = str.__hash__


def instant(value: datetime) -> Instant:
    """The `now` of an evaluation at `value` (aware, UTC)."""
    return Instant(value.astimezone(UTC).isoformat().replace("+00:00", "Z"))


Context = Mapping[str, Any]


class Expression:
    """A compiled condition or value expression, e.g. `event.properties.value >= 20`."""

    __slots__ = ("source", "_fn")

    def __init__(self, source: str) -> None:
        self.source = source
        self._fn: Callable[..., Any] = _ENV.compile_expression(source, undefined_to_none=False)

    def __call__(self, context: Context) -> Any:
        try:
            with render_budget():
                value = self._fn(**context)
        except _FAILURES as exc:
            raise EvaluationError(f"expression {self.source!r} failed: {exc}") from exc
        if isinstance(value, Undefined):  # a bare missing name comes back undefined rather than raising
            raise EvaluationError(f"expression {self.source!r} failed: {value._undefined_message}")
        return value


_SUBSTITUTION = re.compile(r"\{\{\s*([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\s*\}\}")
_JINJA_MARKS = ("{{", "{%", "{#")


class Template:
    """One string field of a message. Constant strings skip Jinja entirely, and text whose
    only tags are `{{ dotted.name }}` is filled in directly: same result, a fraction of the cost
    on the send path. Anything else (filters, blocks) goes through the sandboxed Jinja template.
    With `html`, every inserted value is HTML-escaped (Jinja autoescaping; `|safe` opts out)."""

    __slots__ = ("source", "_template", "_parts", "_fill")

    def __init__(self, source: str, html: bool = False, envs: Environments = SHARED) -> None:
        self.source = source
        env = envs.html if html else envs.plain
        self._template = env.from_string(source) if any(m in source for m in _JINJA_MARKS) else None
        self._parts = _simple_parts(source) if self._template is not None else None
        self._fill: Callable[[Any], str] = escape if html else str

    @property
    def is_template(self) -> bool:
        return self._template is not None

    def render(self, context: Context) -> str:
        if self._template is None:
            return self.source
        try:
            if self._parts is not None:
                fill = self._fill
                return "".join(p if isinstance(p, str) else fill(_lookup(p, context)) for p in self._parts)
            with render_budget():
                return _bounded(self._template.generate(context))
        except _FAILURES as exc:
            raise TemplateRenderError(f"template {self.source!r} failed: {exc}") from exc


def _bounded(chunks: Iterator[str]) -> str:
    """The rendered text, stopped as soon as it goes past `MAX_SIZE` characters."""
    out: list[str] = []
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > MAX_SIZE:
            raise RenderLimitError(f"output went over the limit of {MAX_SIZE:,} characters")
        out.append(chunk)
    return "".join(out)


def _simple_parts(source: str) -> list[str | tuple[str, ...]] | None:
    """Literal text and dotted names, or None when the template uses anything more."""
    parts: list[str | tuple[str, ...]] = []
    position = 0
    for match in _SUBSTITUTION.finditer(source):
        parts.append(source[position:match.start()])
        parts.append(tuple(match.group(1).split(".")))
        position = match.end()
    parts.append(source[position:])
    literal = "".join(p for p in parts if isinstance(p, str))
    return None if any(m in literal for m in _JINJA_MARKS) else [p for p in parts if p != ""]


def _lookup(path: tuple[str, ...], context: Context) -> Any:
    """`a.b.c` as Jinja resolves it here: mapping keys first, then sandboxed attributes."""
    if path[0] not in context:
        raise UndefinedError(f"'{path[0]}' is undefined")
    value = context[path[0]]
    for depth, name in enumerate(path[1:], 1):
        if type(value) is dict and name in value:  # the common case, as the sandbox would resolve it
            value = value[name]
            continue
        value = _ENV.getattr(value, name)
        if isinstance(value, Undefined):
            raise UndefinedError(f"'{'.'.join(path[:depth])}' has no attribute '{name}'")
    return value


NAMES = ("event", "profile", "journey", "now", "preferences_url")
"""The only top-level names an expression or template can read (besides what it sets itself), but
for `digest` in a journey with a digest step (`DIGEST`)."""
DIGEST = "digest"
_PROFILE_FIELDS = ("user_id", "timezone", "locale", "email", "phone", "rcs_capable", "attributes")
_EVENT_FIELDS = ("properties", "timestamp")
_PERSON = ("user", "customer", "contact", "recipient", "person", "member", "subscriber", "account")


def limit_warning(source: str, expression: bool = False) -> str | None:
    """What `journey validate` says of the limits `source` is sure to go past (loops, powers and
    paddings whose sizes it spells out): they always end in `template_error`."""
    found = limit_warnings(_tree(source, expression))
    return "; ".join(found) if found else None


def foreign_names(source: str, expression: bool = False, allowed: tuple[str, ...] = NAMES) -> dict[str, str]:
    """Each top-level name `source` reads that is none of `allowed` and not set by the template
    itself (`set`, `for`, `macro`), with the longest dotted path read from it (`user.first_name`).
    Raises TemplateSyntaxError like compiling it would."""
    return dict(_foreign_names(source, expression, allowed))


@functools.lru_cache(maxsize=4096)  # journeys repeat their conditions and texts; each is read once
def _foreign_names(source: str, expression: bool, allowed: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    tree = _tree(source, expression)
    paths = {name: name for name in meta.find_undeclared_variables(tree) - set(allowed)}
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        parts: list[str] = []
        while isinstance(node, nodes.Getattr | nodes.Getitem):
            key = node.attr if isinstance(node, nodes.Getattr) else getattr(node.arg, "value", None)
            parts = [key, *parts] if isinstance(key, str) else []
            node = node.node
        if isinstance(node, nodes.Name) and node.name in paths and parts:
            dotted = ".".join([node.name, *parts])
            paths[node.name] = max(paths[node.name], dotted, key=len)
    return tuple(sorted(paths.items()))


class ReadPaths(NamedTuple):
    """What a template or expression reads: `used`, the paths it computes with (a condition, a
    filter, a loop...), and `shown`, the ones only written out whole (`{{ profile.attributes.first_name }}`),
    whose values change what is rendered only by their characters."""

    used: frozenset[tuple[str, ...]]
    shown: frozenset[tuple[str, ...]]


def read_paths(source: str, expression: bool = False) -> ReadPaths:
    """Every path `source` reads from a name (`("profile", "attributes", "first_name")`), as far
    as it is spelled out: a name used whole (`profile | tojson`, `{% set p = profile %}`) is read
    whole (`("profile",)`), a computed key (`event.properties[k]`) reads what is before it, a
    method (`profile.attributes.get('x')`) the value it is called on. What a forecast may leave
    out of the inputs that make two people alike (engine/forecast/classes.py). Raises
    TemplateSyntaxError like compiling it would."""
    used: set[tuple[str, ...]] = set()
    shown: set[tuple[str, ...]] = set()
    tree = _tree(source, expression)
    for output in ([] if expression else tree.find_all(nodes.Output)):
        for child in output.nodes:
            chain = _chain(child)
            if chain is not None and len(chain) == _depth(child) > 1:  # every key spelled out
                shown.add(chain)
    _collect(tree, used, shown if not expression else set())
    return ReadPaths(frozenset(used), frozenset(shown))


def _collect(node: nodes.Node, found: set[tuple[str, ...]], shown: set[tuple[str, ...]],
             parent: nodes.Node | None = None) -> None:
    called = _chain(node.node) if isinstance(node, nodes.Call) else None
    if isinstance(node, nodes.Call) and called is not None:
        found.add(called[:-1] or called)
        for child in (*node.args, *node.kwargs):
            _collect(child, found, shown, node)
        return
    chain = _chain(node)
    if chain is not None:
        if not (isinstance(parent, nodes.Output) and chain in shown):
            found.add(chain)
        for item in node.find_all(nodes.Getitem):  # computed keys read names of their own
            _collect(item.arg, found, shown, item)
        return
    for child in node.iter_child_nodes():
        _collect(child, found, shown, node)


def _depth(node: nodes.Node) -> int:
    """How many names and keys a chain of lookups has (`a.b[c]`: 3)."""
    depth = 1
    while isinstance(node, nodes.Getattr | nodes.Getitem):
        depth, node = depth + 1, node.node
    return depth


def _chain(node: nodes.Node) -> tuple[str, ...] | None:
    """A name and the constant keys read from it (up to the first computed one), or None."""
    parts: list[str] = []
    while isinstance(node, nodes.Getattr | nodes.Getitem):
        key = node.attr if isinstance(node, nodes.Getattr) else getattr(node.arg, "value", None)
        parts = [key, *parts] if isinstance(key, str) else []
        node = node.node
    if isinstance(node, nodes.Name) and node.ctx == "load":
        return (node.name, *parts)
    return None


def parse_template(source: str) -> nodes.Template:
    """A template's syntax tree (not compiled); raises TemplateSyntaxError like compiling it would."""
    return _tree(source, False)


def _tree(source: str, expression: bool) -> nodes.Template:
    """`source` parsed (not compiled); raises TemplateSyntaxError like compiling it would."""
    if not expression:
        return _ENV.parse(source)
    parser = Parser(_ENV, source, state="variable")
    body = parser.parse_expression()
    if not parser.stream.eos:
        raise TemplateSyntaxError("chunk after expression", parser.stream.current.lineno)
    tree = nodes.Template([nodes.Output([body])], lineno=1)
    tree.set_environment(_ENV)
    return tree


def suggest_name(dotted: str) -> str:
    """` (did you mean 'profile.attributes.first_name'?)` for `user.first_name`, or nothing."""
    head, _, rest = dotted.partition(".")
    close = difflib.get_close_matches(head, NAMES, n=1, cutoff=0.6)
    if close:
        meant = ".".join(filter(None, (close[0], rest)))
    elif head in _PROFILE_FIELDS:
        meant = f"profile.{dotted}"
    elif head in _EVENT_FIELDS:
        meant = f"event.{dotted}"
    elif difflib.get_close_matches(head, _PERSON, n=1, cutoff=0.75):
        inside = "" if not rest or rest.partition(".")[0] in _PROFILE_FIELDS else "attributes."
        meant = f"profile.{inside}{rest}".rstrip(".")
    else:
        return ""
    return f" (did you mean '{meant}'?)"


LIQUID_HINT = 'templates are Jinja2: use {{ x | default("y") }}'
_LIQUID_ARGUMENT = re.compile(r"\|\s*[A-Za-z_]\w*\s*:")  # `| default: "y"`: a Liquid filter's argument
_NO_FILTER = re.compile(r"No filter named '(\w+)'")
_LIQUID_FILTERS = {  # Liquid's name -> what Jinja2 calls it (None: no filter of the same kind)
    "upcase": "upper", "downcase": "lower", "strip_html": "striptags", "size": "length", "strip": "trim",
    "url_encode": "urlencode", "escape_once": "escape", "append": "the ~ operator", "prepend": "the ~ operator",
    "plus": "+", "minus": "-", "times": "*", "divided_by": "/", "modulo": "%", "remove": 'replace(text, "")',
    "newline_to_br": None, "split": None, "truncatewords": None,
}


def syntax_error(exc: TemplateSyntaxError, source: str | None = None) -> str:
    """The author-facing text of a Jinja syntax error. Liquid's filter syntax, common in other journey tools
    (`{{ x | default: "y" }}`, `{{ x | upcase }}`), gets a hint on Jinja2's."""
    text = exc.message or str(exc)
    source = source if source is not None else exc.source
    unknown = _NO_FILTER.search(text)
    if unknown and unknown.group(1) in _LIQUID_FILTERS:
        meant = _LIQUID_FILTERS[unknown.group(1)]
        return f"No filter named '{unknown.group(1)}'{f' (in Jinja2: {meant})' if meant else ''}; {LIQUID_HINT}"
    if source is not None and _LIQUID_ARGUMENT.search(source):
        return f"{text}; {LIQUID_HINT}"
    return text


def is_template(text: str) -> bool:
    """Whether `text` is a template, its value known only once rendered (else a constant)."""
    return any(mark in text for mark in _JINJA_MARKS)


def compile_tree(tree: Any, html: Collection[str] = (), envs: Environments = SHARED) -> Any:
    """Compile every string leaf of a content mapping; raises TemplateSyntaxError. The top-level
    keys named in `html` render as HTML: what they insert is escaped. A mapping with no template
    anywhere in it compiles to a `Constant`, rendered for free."""
    if html and isinstance(tree, Mapping):
        compiled = {k: _compile(v, envs, k in html) for k, v in tree.items()}
    else:
        compiled = _compile(tree, envs)
    return compiled if _has_template(compiled) else Constant(tree)


class Layout:
    """An email wrapped in a layout from `templates/`: the layout is HTML (autoescaped) and reads the
    message's rendered `html` (else its `body`, escaped) as `content`; what it renders is the html sent."""

    __slots__ = ("template", "inner")

    def __init__(self, template: Template, inner: Any) -> None:
        self.template = template
        self.inner = inner

    def render(self, context: Context) -> dict[str, Any]:
        inner = dict(render_tree(self.inner, context))
        content = Markup(inner["html"]) if inner.get("html") is not None else escape(inner.get("body", ""))
        inner["html"] = self.template.render({**context, "content": content})
        return inner


class Constant:
    """Content with no template in it: every render returns (a copy of) the same data."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def _compile(tree: Any, envs: Environments, html: bool = False) -> Any:
    if isinstance(tree, str):
        return Template(tree, html, envs)
    if isinstance(tree, Mapping):
        return {k: _compile(v, envs, html) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_compile(v, envs, html) for v in tree]
    return tree


def _has_template(tree: Any) -> bool:
    if isinstance(tree, Template):
        return tree.is_template
    if isinstance(tree, dict):
        return any(_has_template(v) for v in tree.values())
    if isinstance(tree, list):
        return any(_has_template(v) for v in tree)
    return False


def render_tree(tree: Any, context: Context) -> Any:
    """Render a compiled content tree into plain data."""
    if isinstance(tree, Constant):
        return tree.value
    if isinstance(tree, Template | Layout):
        return tree.render(context)
    if isinstance(tree, dict):
        return {k: render_tree(v, context) for k, v in tree.items()}
    if isinstance(tree, list):
        return [render_tree(v, context) for v in tree]
    return tree
