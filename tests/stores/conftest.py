"""Store backends for the contract suite: memory, SQLite (a file) and PostgreSQL (a fresh database)."""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from engine.ports import Store
from engine.stores.memory import MemoryStore

SQL_BACKENDS = ["sqlite", "postgresql"]


def sql_module() -> ModuleType:
    """engine.stores.sql, imported when a SQL variant first needs it (the memory variants run without
    SQLAlchemy); an install without the `server` extra skips the SQL variants, saying so."""
    if importlib.util.find_spec("sqlalchemy") is None:
        pytest.skip("SQLAlchemy is not installed (pip install 'journey-engine[server]'): the SQL variants need it")
    return importlib.import_module("engine.stores.sql")


def close(store: Any) -> None:
    """Release the store's connections if it knows how (so its test database can be dropped)."""
    for name in ("close", "dispose"):
        method = getattr(store, name, None)
        if callable(method):
            method()
            return


def sql_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path}/journey.db"
    return str(request.getfixturevalue("postgres_fresh_db_url"))


@pytest.fixture(params=["memory", *SQL_BACKENDS, "sqlite-uncached"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """Every backend, each test on empty storage. `sqlite-uncached` reads every transaction's state
    from the file (as PostgreSQL does), not from the in-process cache."""
    if request.param == "memory":
        yield MemoryStore()
        return
    backend, _, variant = request.param.partition("-")
    made = sql_module().SqlStore(sql_url(backend, request, tmp_path), cache=variant != "uncached")
    yield made
    close(made)


@pytest.fixture(params=SQL_BACKENDS)
def reopen(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Store]]:
    """Opens a new SqlStore on the same database each call, as a restarted server would."""
    module = sql_module()
    url = sql_url(request.param, request, tmp_path)
    opened: list[Store] = []

    def open_store() -> Store:
        opened.append(module.SqlStore(url))
        return opened[-1]

    yield open_store
    for made in opened:
        close(made)
