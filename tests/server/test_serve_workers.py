"""Several `journey serve` processes on one PostgreSQL database, as a user runs them: `--workers K`
behind one port answers /metrics with the same totals whichever worker takes the scrape."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.server.conftest import API_KEYS, ServerProcess, StartServer, wait_until
from tests.server.test_serve_process import RACE


def fresh(server: ServerProcess, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """A request on a connection of its own, so that the workers behind the port take turns
    answering (one kept-alive connection stays with one worker)."""
    with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {API_KEYS[0]}"},
                      timeout=30) as client:
        return client.request(method, path, **kwargs)


def accepted(server: ServerProcess) -> float:
    text = fresh(server, "GET", "/metrics").text
    return next((s.value for f in text_string_to_metric_families(text) for s in f.samples
                 if s.name == "journey_events_total" and s.labels.get("outcome") == "accepted"), 0.0)


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
