"""Store backends for the contract suite: memory, SQLite (a file), PostgreSQL (a fresh database) and
Citus (a fresh database on a coordinator and two workers, its tables distributed when opened)."""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from sqlalchemy import create_engine

from engine.ports import Store
from engine.stores.memory import MemoryStore

SQL_BACKENDS = ["sqlite", "postgresql"]
CITUS = pytest.param("citus", marks=pytest.mark.citus)  # the cluster starts only when one of these runs


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
    if backend == "citus":
        return str(request.getfixturevalue("citus_fresh_db_url"))
    return str(request.getfixturevalue("postgres_fresh_db_url"))


@pytest.fixture(params=["memory", *SQL_BACKENDS, "sqlite-uncached", CITUS])
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


@pytest.fixture(params=[*SQL_BACKENDS, CITUS])
def sql_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A `SqlStore` on every SQL backend, Citus included, each test on empty storage."""
    made = sql_module().SqlStore(sql_url(request.param, request, tmp_path))
    yield made
    close(made)


@pytest.fixture(params=[*SQL_BACKENDS, CITUS])
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


SNAPSHOTS = Path(__file__).parent / "snapshots"


def made_by_version_20(url: str) -> None:
    """An empty database as the previous release (schema 20) made it: its tables from a snapshot of
    that release's DDL (tests/stores/snapshots), its `meta` rows. Older versions are made from it by
    dropping what they lacked."""
    dialect = "sqlite" if url.startswith("sqlite") else "postgresql"
    ddl = (SNAPSHOTS / f"schema_v20_{dialect}.sql").read_text(encoding="utf-8")
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            for statement in ddl.split(";\n"):
                body = "\n".join(line for line in statement.splitlines() if not line.startswith("--")).strip()
                if body:
                    conn.exec_driver_sql(body)
            conn.exec_driver_sql("INSERT INTO meta (key, value) VALUES ('schema_version', '20'), "
                                 "('partitions', '256'), ('partition_hash', 'blake2b-64')")
    finally:
        engine.dispose()


def rows_scanned(plan: dict[str, Any], table: str) -> int:
    """Rows the nodes of a plan (`EXPLAIN (ANALYZE, FORMAT JSON)`) read of `table`: those they
    returned and those their filters dropped."""
    mine = plan.get("Relation Name") == table
    own = plan.get("Actual Rows", 0) + plan.get("Rows Removed by Filter", 0) if mine else 0
    return own + sum(rows_scanned(child, table) for child in plan.get("Plans", []))
