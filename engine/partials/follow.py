"""Following a journey's references to its partials and layouts.

A template includes a partial by name (`{% include "footer.sms" %}`, `{% from "macros.txt" import
price %}`), and an email names a layout (`layout: base.html`) that wraps its body. Which files a
journey uses is found when it is compiled, following includes from its messages, and their text is
kept with the journey's version: a running instance keeps the partials and layout it entered with,
whatever the folder holds later. `journey validate` names an unknown template, one that does not
parse, an include that loops and a name a partial may not read, each at its `file:line`.
"""

from __future__ import annotations

from jinja2 import TemplateSyntaxError, nodes

from channels.yaml_lines import did_you_mean
from engine.errors import Problem
from engine.expressions import NAMES, foreign_names, parse_template, syntax_error
from engine.partials.source import TemplateSource

LAYOUT_NAMES = ("content",)
"""What a layout (and what it includes) may read besides `NAMES`: the message's rendered html."""
_REFERENCES = (nodes.Include, nodes.Extends, nodes.Import, nodes.FromImport)


class Partials:
    """Follows a journey's references to its templates; `used` is what it needs, `problems` what is wrong
    inside the template files themselves (the journey's own lines are the compiler's to report)."""

    def __init__(self, source: TemplateSource) -> None:
        self.source = source
        self.used: dict[str, str] = {}
        self.problems: list[Problem] = []
        self._seen: set[tuple[str, bool]] = set()

    def references(self, text: str, layout: bool = False) -> list[tuple[int, str]]:
        """What is wrong with the templates `text` names, each with its line in `text`; the names it
        can use are followed (and their own problems collected)."""
        try:
            tree = parse_template(text)
        except TemplateSyntaxError:
            return []  # reported where the text is compiled
        return self._follow(tree, layout, ())

    def layout(self, name: str) -> str | None:
        """What is wrong with naming `name` as a layout, or None (and the layout is followed)."""
        unknown = self._unknown(name)
        if unknown is None:
            self._visit(name, True, ())
        return unknown

    def _follow(self, tree: nodes.Template, layout: bool, chain: tuple[str, ...]) -> list[tuple[int, str]]:
        found: list[tuple[int, str]] = []
        for node in tree.find_all(_REFERENCES):
            assert isinstance(node, _REFERENCES)
            name = node.template.value if isinstance(node.template, nodes.Const) else None
            if not isinstance(name, str):
                found.append((node.lineno, "a template is named by a quoted name (`{% include \"footer.sms\" %}`), "
                                           "so that it is known when the journey is validated"))
                continue
            unknown = self._unknown(name) if name not in chain else (
                f"template '{name}' includes itself: {' -> '.join((*chain[chain.index(name):], name))}")
            if unknown is not None:
                found.append((node.lineno, unknown))
            else:
                self._visit(name, layout, chain)
        return found

    def _unknown(self, name: str) -> str | None:
        if self.source.read(name) is not None:
            return None
        return f"unknown template '{name}' in {self.source.where('')}{did_you_mean(name, self.source.names())}"

    def _visit(self, name: str, layout: bool, chain: tuple[str, ...]) -> None:
        if (name, layout) in self._seen:
            return
        self._seen.add((name, layout))
        text = self.source.read(name) or ""
        self.used[name] = text
        file = self.source.where(name)
        try:
            tree = parse_template(text)
            names = foreign_names(text)
        except TemplateSyntaxError as exc:
            self.problems.append(Problem(file, exc.lineno or 1, f"template does not parse: {syntax_error(exc, text)}"))
            return
        for unknown in sorted(set(names) - set(LAYOUT_NAMES if layout else ())):
            line = next((n.lineno for n in tree.find_all(nodes.Name) if n.name == unknown), 1)
            allowed = ", ".join((*NAMES, *(LAYOUT_NAMES if layout else ())))
            self.problems.append(Problem(file, line, f"unknown name '{unknown}'; a template reads {allowed}"))
        for line, message in self._follow(tree, layout, (*chain, name)):
            self.problems.append(Problem(file, line, message))
