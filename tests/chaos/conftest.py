"""The chaos suite: real `journey serve` processes killed with -9, and a PostgreSQL server stopped
under them, each test bounded in time (no unbounded wait: `wait_until` everywhere).

Shared here: the journey every chaos test runs (`chaos-ping`: one transactional push per
`chaos.ping` event), 2,000-odd profiles written straight into the database before the server
starts (there is no bulk profile API), a read of every message row in one query (2,000 HTTP
reads per poll would be the test's own load), the events as a client posts them, and
`own_postgres`: a PostgreSQL server of the test's own, which it may stop and start again
without disturbing the session's server the other tests share.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from channels import Profile
from engine.stores.sql import SqlStore
from tests.conftest import PostgresServer, _admin_execute, pg_bindir_or_skip
from tests.server.conftest import journeys_dir, local, start_local, start_server  # noqa: F401 - shared fixtures

CHAOS_JOURNEY = """\
id: chaos-ping
name: Chaos ping
category: transactional
trigger:
  event: chaos.ping
steps:
  - {id: ping, type: send, message: ping, channels: [push]}
messages:
  ping:
    push: {title: "Ping", body: "Ping {{ event.properties.n }}"}
"""


@pytest.fixture
def chaos_journeys(journeys_dir: Path) -> Path:  # noqa: F811 - the fixture imported above
    """The test journeys folder with `chaos-ping` in it."""
    (journeys_dir / "chaos-ping.yaml").write_text(CHAOS_JOURNEY, encoding="utf-8")
    return journeys_dir


def user_ids(count: int, prefix: str = "c") -> list[str]:
    return [f"{prefix}{n:05d}" for n in range(count)]


def load_profiles(url: str, users: Sequence[str]) -> None:
    """Each user with a push token, written in one transaction before any server runs."""
    store = SqlStore(url)
    try:
        with store.transaction() as tx:
            tx.prefetch(list(users), datetime.fromtimestamp(0, UTC))
            for user in users:
                tx.put_profile(Profile(user, "UTC", push_token=f"tok-{user}"))
    finally:
        store.close()


def ping(user: str, n: int = 0) -> dict[str, Any]:
    """The `chaos.ping` event of `user`; its id is the user's, so a repost is a duplicate."""
    return {"id": f"ping-{user}", "type": "chaos.ping", "user_id": user, "properties": {"n": n}}


class MessageRows:
    """Every message row of a database, read in one query (`user_id`, `message_id`, `dispatch`)."""

    def __init__(self, url: str) -> None:
        self._engine = create_engine(url)

    def __call__(self) -> list[dict[str, Any]]:
        with self._engine.connect() as conn:
            rows = conn.execute(text("SELECT user_id, message_id, dispatch, channel FROM messages"))
            return [dict(row._mapping) for row in rows]

    def close(self) -> None:
        self._engine.dispose()


@pytest.fixture
def message_rows() -> Iterator[Callable[[str], MessageRows]]:
    """Opens `MessageRows` on a URL; every one opened is closed at teardown."""
    opened: list[MessageRows] = []

    def open_rows(url: str) -> MessageRows:
        opened.append(MessageRows(url))
        return opened[-1]

    yield open_rows
    for rows in opened:
        rows.close()


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server for this test alone (`halt()` and `restart()` it at will), with an empty
    database `chaos`: `own_postgres.url("chaos")`."""
    server = PostgresServer(pg_bindir_or_skip())
    try:
        server.initdb()
        server.start()
        _admin_execute(server.url("chaos"), "CREATE DATABASE chaos")
        yield server
    finally:
        server.stop()
