"""The core stays pure: `channels` never imports `engine`, and the core modules
never import I/O frameworks. Checked by reading imports, so a new module can't slip by."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORE_FORBIDDEN = {"sqlmodel", "sqlalchemy", "apscheduler", "fastapi", "httpx", "uvicorn"}
CORE_MODULES = ["engine/model.py", "engine/loader.py", "engine/compiler.py", "engine/errors.py"]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_channels_never_import_engine() -> None:
    files = sorted((ROOT / "channels").rglob("*.py"))
    assert files, "channels package has no modules"
    offenders = [str(f.relative_to(ROOT)) for f in files if "engine" in _imports(f)]
    assert offenders == []


def test_core_modules_import_no_io_frameworks() -> None:
    for rel in CORE_MODULES:
        path = ROOT / rel
        if path.exists():
            assert _imports(path) & CORE_FORBIDDEN == set(), rel
