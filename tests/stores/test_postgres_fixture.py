"""The PostgreSQL fixture really starts a server, and each test gets its own empty database."""

from __future__ import annotations

import pytest


def libpq(url: str) -> str:
    """SQLAlchemy's `postgresql+psycopg://` URL as a libpq one."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def test_server_answers(postgres_url: str) -> None:
    import psycopg  # after the fixture, which skips (fails in CI) when psycopg is missing

    with psycopg.connect(libpq(postgres_url)) as conn:
        assert conn.execute("select 1").fetchone() == (1,)
        assert conn.execute("select current_database()").fetchone() == ("journey_test",)


@pytest.mark.parametrize("round_", [1, 2])
def test_fresh_database_is_empty_and_private(postgres_fresh_db_url: str, round_: int) -> None:
    """Both rounds create the same table: the second would fail if it saw the first's database."""
    import psycopg

    with psycopg.connect(libpq(postgres_fresh_db_url)) as conn:
        conn.execute("create table t (n int)")
        conn.execute("insert into t values (%s)", (round_,))
        assert conn.execute("select n from t").fetchall() == [(round_,)]
        assert conn.execute("show server_encoding").fetchone() == ("UTF8",)
