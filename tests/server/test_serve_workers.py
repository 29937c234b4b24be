"""Several `journey serve` processes on one PostgreSQL database, as a user runs them: `--workers K`
behind one port answers /metrics with the same totals whichever worker takes the scrape."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

import engine.stores.sql  # noqa: F401 - its tables, in SQLModel's metadata
from tests.server.conftest import (
    API_KEYS,
    JOURNEY,
    ServerProcess,
    StartServer,
    free_port,
    put_profile,
    server_env,
    tail,
    wait_until,
)
from tests.server.test_serve_process import RACE


def fresh(server: ServerProcess, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """A request on a connection of its own, so that the workers behind the port take turns
    answering (one kept-alive connection stays with one worker)."""
    with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {API_KEYS[0]}"},
                      timeout=30) as client:
        return client.request(method, path, **kwargs)


def accepted(server: ServerProcess) -> float:
    return sample(server, "journey_events_total", outcome="accepted")


def sample(server: ServerProcess, name: str, **labels: str) -> float:
    """One sample of a scrape (0 if it has none), whichever worker answers it."""
    text = fresh(server, "GET", "/metrics").text
    return next((s.value for f in text_string_to_metric_families(text) for s in f.samples
                 if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())), 0.0)


def test_every_worker_answers_metrics_with_the_same_totals_and_they_never_go_back(
        postgres_fresh_db_url: str, start_server: StartServer, journeys_dir: Path) -> None:
    """150 events posted to `--workers 2` (each request on its own connection, so both workers
    accept some): every scrape, whichever worker answers it, counts all of them, and no scrape
    shows fewer than the one before (Prometheus would read a counter reset)."""
    (journeys_dir / "race.yaml").write_text(RACE, encoding="utf-8")
    server = start_server(db=postgres_fresh_db_url, name="workers", args=["--workers", "2"])
    seen = []
    for start in range(0, 150, 10):
        batch = [{"id": f"go-{n}", "type": "go", "user_id": f"m{n:03d}"} for n in range(start, start + 10)]
        reply = fresh(server, "POST", "/v1/events", json={"events": batch}, headers={"Prefer": "respond-async"})
        assert reply.status_code == 202, reply.text
        seen.append(accepted(server))
    wait_until(lambda: accepted(server) == 150, timeout=30, what="a scrape counting all 150 events")
    seen += [accepted(server) for _ in range(12)]
    assert seen == sorted(seen), seen
    assert seen[-12:] == [150.0] * 12, seen


def test_once_every_event_is_processed_no_worker_counts_events_still_queued(
        postgres_fresh_db_url: str, start_server: StartServer, journeys_dir: Path) -> None:
    """Each worker accepts any user's events and only the user's owner takes them out. The owner
    counted out what it had never counted in: after a burst, `journey_events_queued` read about
    minus the events the other workers had accepted for its users (-13,000 of 26,000 in `journey
    bench --workers 2`), and a worker's inbox was never full, whatever had been queued for it."""
    (journeys_dir / "race.yaml").write_text(RACE, encoding="utf-8")
    server = start_server(db=postgres_fresh_db_url, name="workers", args=["--workers", "2"])
    for start in range(0, 200, 10):
        batch = [{"id": f"go-{n}", "type": "go", "user_id": f"q{n:03d}"} for n in range(start, start + 10)]
        reply = fresh(server, "POST", "/v1/events", json={"events": batch}, headers={"Prefer": "respond-async"})
        assert reply.status_code == 202, reply.text
    wait_until(lambda: sample(server, "journey_inbox_processed_total") == 200, timeout=60,
               what="both workers processing all 200 events")
    assert [sample(server, "journey_events_queued") for _ in range(6)] == [0.0] * 6


def test_four_servers_started_at_once_on_a_fresh_database_all_come_up_and_serve(
        postgres_fresh_db_url: str, tmp_path: Path, journeys_dir: Path) -> None:
    """Four `journey serve` processes started together on an empty PostgreSQL database: the schema
    is created once, and every one of them comes up and serves. To start them at the very same
    moment, the test holds the tables' creation open (created, uncommitted, in a transaction of
    its own) until all four wait on it, then rolls it back: they all go for the schema at once."""
    ports = [free_port() for _ in range(4)]
    logs = [tmp_path / f"serve-{n}.log" for n in range(4)]
    database = create_engine(postgres_fresh_db_url)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        with database.connect() as holder:
            held = holder.begin()
            SQLModel.metadata.create_all(holder)
            for port, log in zip(ports, logs, strict=True):
                argv = [str(JOURNEY), "serve", "--db", postgres_fresh_db_url, "--journeys", str(journeys_dir),
                        "--port", str(port), "--outbox", str(tmp_path / "outbox.jsonl")]
                with log.open("wb") as out:
                    processes.append(subprocess.Popen(argv, cwd=tmp_path, env=server_env(), stdout=out,
                                                      stderr=subprocess.STDOUT))
            wait_until(lambda: waiting_on_locks(database) >= 4, timeout=60, interval=0.1,
                       what="all four servers waiting for the schema")
            held.rollback()

        def serving() -> bool:
            for process, log in zip(processes, logs, strict=True):
                assert process.poll() is None, f"a server died at start:\n{tail(log)}"
            return all(_ready(port) for port in ports)

        wait_until(serving, timeout=60, interval=0.2, what="all four servers answering /readyz")
        clients = [httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30,
                                headers={"Authorization": f"Bearer {API_KEYS[0]}"}) for port in ports]
        for n, client in enumerate(clients):  # each serves: what one writes, every other reads
            assert client.put(f"/v1/profiles/p{n}", json={"timezone": "UTC"}).status_code == 200
        for client in clients:
            assert [client.get(f"/v1/profiles/p{n}").status_code for n in range(4)] == [200] * 4
            client.close()
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)
        database.dispose()


def waiting_on_locks(database: Engine) -> int:
    """Sessions on the database waiting for a lock (a table being created, or the schema's lock)."""
    with database.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                     "AND wait_event_type = 'Lock'")).scalar_one())


def _ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


NUDGE = """\
id: nudge
category: marketing
trigger: {event: go}
steps:
  - {id: hello, type: send, message: hello, channels: [sms]}
messages:
  hello:
    sms: {text: "Hello"}
"""


def test_a_consent_withdrawn_through_either_worker_is_honoured_by_the_users_owner(
        postgres_fresh_db_url: str, start_server: StartServer, journeys_dir: Path) -> None:
    """`--workers 2`: eight people each get an SMS for a first `go`; each then withdraws SMS
    consent through the API, on a connection of its own (so about half of the withdrawals land
    on the worker that does not own the person, while the owner keeps the person's state in
    memory); a second `go` sends none of them anything more."""
    (journeys_dir / "nudge.yaml").write_text(NUDGE, encoding="utf-8")
    server = start_server(db=postgres_fresh_db_url, name="workers", args=["--workers", "2"])
    users = [f"w{n}" for n in range(8)]
    for user in users:
        put_profile(server, user, "sms:marketing")
        assert fresh(server, "POST", "/v1/events", json={"id": f"{user}-1", "type": "go", "user_id": user}
                     ).status_code == 202
    wait_until(lambda: all(len(server.messages(u)) == 1 for u in users), timeout=60, what="one SMS each")
    for user in users:
        withdrawn = fresh(server, "POST", f"/v1/profiles/{user}/consents",
                          json={"channel": "sms", "category": "marketing", "granted": False, "source": "api"})
        assert withdrawn.status_code == 201, withdrawn.text
        assert fresh(server, "POST", "/v1/events", json={"id": f"{user}-2", "type": "go", "user_id": user}
                     ).status_code == 202
    wait_until(lambda: all(len(fresh(server, "GET", f"/v1/users/{u}/instances").json()["instances"]) == 2
                           for u in users), timeout=60, what="both events applied")
    assert {u: len(server.messages(u)) for u in users} == dict.fromkeys(users, 1)
