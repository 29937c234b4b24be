"""Size rules, read from the syntax tree: no class in `engine/` or `channels/` defines more than
25 methods, and no function or method is longer than 60 lines.

A file's line count is not a rule: it was being met by packing lines to the column limit rather
than by splitting along responsibilities. What hurts the next engineer is a class that does many
things (it changes for many reasons) and a function too long to hold in one's head; a module is
as long as its one responsibility needs.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MOST_METHODS = 25
MOST_LINES = 60


def _sizes(where: str, source: str) -> dict[str, str]:
    """The classes over `MOST_METHODS` methods and the functions over `MOST_LINES` lines of one module."""
    found: dict[str, str] = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef):
            methods = sum(isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) for n in node.body)
            if methods > MOST_METHODS:
                found[f"{where}::{node.name}"] = f"{where}:{node.lineno}: class {node.name}: {methods} methods"
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            lines = (node.end_lineno or node.lineno) - node.lineno + 1
            if lines > MOST_LINES:
                found[f"{where}::{node.name}"] = f"{where}:{node.lineno}: def {node.name}: {lines} lines"
    return found


def _offenders() -> dict[str, str]:
    found: dict[str, str] = {}
    for folder in ("engine", "channels"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            found.update(_sizes(path.relative_to(ROOT).as_posix(), path.read_text(encoding="utf-8")))
    return found


def test_no_class_has_more_than_25_methods_and_no_function_more_than_60_lines() -> None:
    assert sorted(_offenders().values()) == []


def test_the_rules_see_a_class_and_a_function_one_over() -> None:
    """The checks above would pass for the wrong reason if the measure were off by one."""
    methods = "".join(f"    def m{n}(self) -> None: ...\n" for n in range(MOST_METHODS))
    body = "".join("    x = 1\n" for _ in range(MOST_LINES - 1))
    at_the_limit = f"class Fits:\n{methods}\n\ndef fits() -> None:\n{body}"
    assert _sizes("m.py", at_the_limit) == {}
    one_over = at_the_limit.replace("class Fits:\n", "class Big:\n    def one_more(self) -> None: ...\n") \
        .replace("def fits() -> None:\n", "def long() -> None:\n    x = 0\n")
    assert sorted(_sizes("m.py", one_over)) == ["m.py::Big", "m.py::long"]
