"""The house's rules, checked by reading imports and calls, so a new module can't slip by:

- `channels` never imports `engine`;
- the core (the listed modules and packages, every one of which must exist) imports no I/O
  framework and no room above it: not the stores, the audience runs' entry, the simulator, the
  host, the HTTP API, the CLI or the bench;
- the simulator (the engine on the memory store, a dry-run host) imports no framework, nor the
  SQL store or a room of the server;
- nothing outside `engine/stores/` imports SQLAlchemy or SQLModel;
- nothing but `engine/clock.py` reads the wall clock.

Sizes are held by classes and functions (tests/test_sizes.py), not by counting lines or modules.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORE = ["model", "loader", "compiler", "expressions", "events", "state", "runtime", "ports", "service", "errors",
        "clock", "runs", "schedule", "sandbox"]
FRAMEWORKS = {"sqlmodel", "sqlalchemy", "apscheduler", "fastapi", "starlette", "httpx", "uvicorn", "typer", "rich",
              "prometheus_client", "psycopg", "twilio"}
SERVER_ROOMS = ("engine.host", "engine.http", "engine.cli", "engine.bench", "engine.stores.sql")
ROOMS_ABOVE_CORE = (*SERVER_ROOMS, "engine.stores", "engine.audience", "engine.simulator")
WALL_CLOCK = {("datetime", "now"), ("datetime", "utcnow"), ("datetime", "today"), ("date", "today"),
              ("time", "time"), ("time", "time_ns"), ("time", "localtime"), ("time", "gmtime"), ("time", "ctime")}


def _modules(*folders: str) -> list[Path]:
    found = sorted(path for folder in folders for path in (ROOT / folder).rglob("*.py"))
    assert found, f"no modules under {folders}"
    return found


def _imports(path: Path) -> set[str]:
    """Every module imported, in full (`a.b.c`), absolute imports only."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _roots(names: set[str]) -> set[str]:
    return {name.split(".")[0] for name in names}


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_channels_never_import_engine() -> None:
    offenders = [_rel(f) for f in _modules("channels") if "engine" in _roots(_imports(f))]
    assert offenders == []


@pytest.mark.parametrize("name", CORE)
def test_a_core_module_exists_and_imports_no_framework_and_no_room_above_it(name: str) -> None:
    module, package = ROOT / "engine" / f"{name}.py", ROOT / "engine" / name
    paths = [module] if module.is_file() else sorted(package.glob("*.py"))
    assert paths, f"core module engine/{name}.py (or package engine/{name}/) is missing: the rules cannot be checked"
    for path in paths:
        imported = _imports(path)
        assert _roots(imported) & FRAMEWORKS == set(), _rel(path)
        above = sorted(n for n in imported if n.startswith(ROOMS_ABOVE_CORE))
        assert above == [], f"{_rel(path)} imports a room above the core"


def test_the_simulator_imports_no_framework_and_no_room_of_the_server() -> None:
    imported = _imports(ROOT / "engine" / "simulator.py")
    assert _roots(imported) & FRAMEWORKS == set()
    assert sorted(n for n in imported if n.startswith(SERVER_ROOMS)) == []


def test_only_the_stores_import_sqlalchemy() -> None:
    offenders = [_rel(f) for f in _modules("engine", "channels")
                 if _roots(_imports(f)) & {"sqlalchemy", "sqlmodel"} and "engine/stores/" not in _rel(f)]
    assert offenders == []


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

