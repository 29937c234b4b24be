"""What the layering contracts cannot say. Which room may import which (`channels` never imports
`engine`, the core no framework and no room above it, only the SQL store SQLAlchemy, no cycles)
is said by the import-linter contracts in pyproject.toml, which `.ci/run` checks with
`lint-imports`. Here, read off the code's calls: nothing but `engine/clock.py` reads the wall
clock. Sizes are held by classes and functions (tests/test_sizes.py), not by counting lines or
modules.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WALL_CLOCK = {("datetime", "now"), ("datetime", "utcnow"), ("datetime", "today"), ("date", "today"),
              ("time", "time"), ("time", "time_ns"), ("time", "localtime"), ("time", "gmtime"), ("time", "ctime")}


def _modules(*folders: str) -> list[Path]:
    found = sorted(path for folder in folders for path in (ROOT / folder).rglob("*.py"))
    assert found, f"no modules under {folders}"
    return found


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _wall_clock_reads(path: Path) -> list[str]:
    reads = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                and (node.value.id, node.attr) in WALL_CLOCK:
            reads.append(f"{_rel(path)}:{node.lineno}: {node.value.id}.{node.attr}")
        elif isinstance(node, ast.ImportFrom) and node.module in ("time", "datetime"):
            reads += [f"{_rel(path)}:{node.lineno}: from {node.module} import {a.name}" for a in node.names
                      if (node.module, a.name) in WALL_CLOCK]
    return reads


def test_nothing_but_the_clock_module_reads_the_wall_clock() -> None:
    reads = [r for f in _modules("engine", "channels") if f != ROOT / "engine" / "clock.py"
             for r in _wall_clock_reads(f)]
    assert reads == []


def test_the_clock_module_is_where_the_wall_clock_is_read() -> None:
    assert _wall_clock_reads(ROOT / "engine" / "clock.py"), "the check above would pass for the wrong reason"

