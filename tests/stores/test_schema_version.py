"""The schema version kept in `meta`: an older database is upgraded on open, a newer one refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select, update

from engine.stores.sql import SqlStore, StoreError
from engine.stores.sql_schema import META, SCHEMA_VERSION


def _set_version(url: str, version: int) -> None:
    store = SqlStore(url)
    with store.engine.begin() as conn:
        conn.execute(update(META).where(META.c.key == "schema_version").values(value=str(version)))
    store.close()


def _version(store: SqlStore) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(META.c.value).where(META.c.key == "schema_version")).scalar_one())


def test_an_older_database_is_marked_current_so_older_engines_refuse_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/journey.db"
    _set_version(url, 1)
    store = SqlStore(url)
    assert _version(store) == SCHEMA_VERSION == 2
    store.close()


def test_a_newer_database_is_refused_with_both_versions_named(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/journey.db"
    _set_version(url, SCHEMA_VERSION + 1)
    with pytest.raises(StoreError, match=f"schema version {SCHEMA_VERSION + 1} is newer .*\\({SCHEMA_VERSION}\\)"):
        SqlStore(url)
