"""How fast `GET /v1/messages` without `user_id` and `GET /v1/journeys/{id}/stats` answer over a
store of 100,000 messages and 100,000 instances, on SQLite and on PostgreSQL, and the query plan
of every statement they run (each must read through an index, never scan a table).

    python -m benchmarks.stats_routes                       # SQLite, and PostgreSQL if installed
    python -m benchmarks.stats_routes --db postgresql+psycopg://...   # one database of yours

The store is filled with bulk inserts (no engine: it is the reads that are measured), spread
over 30 days of hourly counters; the routes are called through the FastAPI app (TestClient),
each timed as the median of several calls after a first warm one.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import event, text

from channels import load_policy
from engine.compiler import load_paths
from engine.host.server import Server, default_providers
from engine.http.app import create_app
from engine.state import hour_of
from engine.stores.sql import SqlStore
from engine.stores.sql.schema import INSTANCES, MESSAGES, CounterRow

ROOT = Path(__file__).resolve().parents[1]
JOURNEY = "cart-abandonment"
START = datetime(2026, 1, 1, tzinfo=UTC)
ROWS = 100_000
KEY = "bench-key"
CHANNELS = ("push", "sms", "email")
STATUSES = ("delivered",) * 6 + ("sent",) * 2 + ("failed", "opened")  # a tenth failed
PAGE = f"/v1/messages?journey={JOURNEY}&channel=sms&status=failed&limit=100"


def fill(store: SqlStore, rows: int = ROWS) -> None:
    """`rows` instances and as many messages (nine in ten of the journey, one a user's in five
    of another), one every 26 s over 30 days, and their hourly counters."""
    version = "v1"
    with store.engine.begin() as conn:
        instances: list[dict[str, Any]] = []
        messages: list[dict[str, Any]] = []
        for n in range(rows):
            at = START + timedelta(seconds=26 * n)
            journey = JOURNEY if n % 10 else "welcome"
            instances.append({"instance_id": f"i{n:06d}", "journey_id": journey, "version": version,
                              "user_id": f"u{n % 20_000}", "key": None, "status": "completed", "step": "done",
                              "entered_at": at, "doc": {}})
            messages.append({"message_id": f"m{n:06d}", "instance_id": f"i{n:06d}", "journey_id": journey,
                             "user_id": f"u{n % 20_000}", "step": "nudge", "message": "cart_reminder",
                             "channel": CHANNELS[n % 3], "category": "marketing", "content": {"body": "Still there"},
                             "cost": 0.0083, "decisions": [], "at": at, "status": STATUSES[n % 10 * 7 % 10],
                             "dispatch": "sent", "next_attempt_at": at, "attempts": 1,
                             "tally": f"{version}|{hour_of(at)}|"})
        conn.execute(INSTANCES.insert(), instances)
        conn.execute(MESSAGES.insert(), messages)
        conn.execute(CounterRow.__table__.insert(), list(_counters(version, rows)))  # type: ignore[attr-defined]


def _counters(version: str, rows: int) -> Iterator[dict[str, Any]]:
    names = ["entered", "ended:completed", "conversions", *(f"step:{s}:entered" for s in ("wait_1h", "nudge")),
             "edge:wait_1h:nudge", *(f"msg:{c}:{s}" for c in CHANNELS for s in ("sent", "delivered", "failed")),
             *(f"cost:{c}" for c in CHANNELS)]
    hours = {hour_of(START + timedelta(seconds=26 * n)) for n in range(0, rows, 100)}
    for hour in sorted(hours):
        for writer in ("w0/", "w0/outbox"):
            for name in names:
                yield {"journey_id": JOURNEY, "hour": hour, "version": version, "path": "", "name": name,
                       "writer": writer, "value": 3.0}


@contextmanager
def statements(store: SqlStore) -> Iterator[list[tuple[str, Any]]]:
    """Every statement the store runs meanwhile, with its parameters."""
    seen: list[tuple[str, Any]] = []

    def note(conn: Any, cursor: Any, sql: str, params: Any, context: Any, many: bool) -> None:
        seen.append((sql, params))

    event.listen(store.engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(store.engine, "before_cursor_execute", note)


def timed(client: TestClient, url: str, times: int = 7) -> tuple[float, Any]:
    """The median time of `url` in ms after a warm call, and its last answer."""
    answer = client.get(url)
    assert answer.status_code == 200, answer.text
    spent = []
    for _ in range(times):
        began = time.perf_counter()
        answer = client.get(url)
        spent.append((time.perf_counter() - began) * 1000)
    return statistics.median(spent), answer.json()


def plans(store: SqlStore, seen: list[tuple[str, Any]]) -> list[str]:
    """The plan of each SELECT seen, one line each."""
    lines = []
    with store.engine.connect() as conn:
        for sql, params in seen:
            if not sql.lstrip().upper().startswith("SELECT"):
                continue
            explain = "EXPLAIN QUERY PLAN " if store.dialect == "sqlite" else "EXPLAIN "
            rows = conn.exec_driver_sql(explain + sql, params).all()
            plan = " / ".join(str(r[-1]).strip() for r in rows)
            lines.append(f"  {sql.split('FROM')[1].split()[0]:<18} {plan[:160]}")
    return lines


def run(url: str, journeys: Path) -> dict[str, float]:
    store = SqlStore(url)
    began = time.perf_counter()
    fill(store)
    with store.engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    print(f"{store.dialect}: filled {ROWS:,} instances and messages in {time.perf_counter() - began:.1f} s")
    server = Server(store, load_paths([journeys]), load_policy(), default_providers(journeys / "outbox.jsonl"))
    figures: dict[str, float] = {}
    with TestClient(create_app(server, frozenset({KEY})), headers={"Authorization": f"Bearer {KEY}"}) as client:
        first_ms, first = timed(client, PAGE)
        later = f"{PAGE}&cursor={first['next_cursor']}"
        for _ in range(4):  # the fifth page
            later = f"{PAGE}&cursor={client.get(later).json()['next_cursor']}"
        for name, route in (("messages, first page", PAGE), ("messages, fifth page", later),
                            ("messages, no filter", "/v1/messages?limit=100"),
                            ("messages, none match", f"/v1/messages?journey={JOURNEY}&status=cancelled"),
                            ("stats", f"/v1/journeys/{JOURNEY}/stats"),
                            ("stats, one week", f"/v1/journeys/{JOURNEY}/stats?since=2026-01-10T00:00:00Z"
                                                "&until=2026-01-17T00:00:00Z")):
            with statements(store) as seen:
                figures[name], _ = timed(client, route)
            print(f"  {name:<22} {figures[name]:7.1f} ms")
            for line in plans(store, seen[:len(seen) // 8]):  # one call's statements
                print(line)
    server.stop()
    store.close()
    return figures


def _postgres() -> Iterator[str] | None:
    """A PostgreSQL server of our own for the run, when its binaries are installed."""
    from tests.conftest import PostgresServer, _admin_execute, find_pg_bindir

    bindir = find_pg_bindir()
    if bindir is None:
        return None

    def serve() -> Iterator[str]:
        server = PostgresServer(bindir)
        server.initdb()
        server.start()
        try:
            url = server.url("bench")
            _admin_execute(url, "CREATE DATABASE bench")
            yield url
        finally:
            server.stop()

    return serve()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="one database URL (empty) instead of SQLite and a PostgreSQL of its own")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        journeys = Path(folder) / "journeys"
        journeys.mkdir()
        for name in (JOURNEY, "welcome"):
            source = ROOT / "journeys" / f"{name}.yaml"
            if source.exists():
                (journeys / source.name).write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
        results: dict[str, dict[str, float]] = {}
        if args.db:
            results[args.db.split(":")[0]] = run(args.db, journeys)
        else:
            results["sqlite"] = run(f"sqlite:///{folder}/bench.db", journeys)
            postgres = _postgres()
            if postgres is not None:
                for url in postgres:
                    results["postgresql"] = run(url, journeys)
        print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
