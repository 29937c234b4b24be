"""The `journey serve` child process that `journey bench --via http` talks to: started on a free
loopback port, posted to with `Prefer: respond-async`, read through /metrics and /proc."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

from engine.bench.costs import children_of
from engine.errors import BenchError
from engine.events import Event


@contextmanager
def poster(base: str, spread: bool = False) -> Iterator[Callable[[bytes], None]]:
    """Posts request bodies with `Prefer: respond-async`. `spread`: a new connection for every
    request, so that the workers behind one port (`--workers K`) take turns accepting them, as
    they would from many clients, rather than one worker taking every batch."""
    limits = httpx.Limits(max_keepalive_connections=0) if spread else httpx.Limits()
    with httpx.Client(base_url=base, headers={"Authorization": "Bearer bench"}, timeout=60, limits=limits) as client:
        def post(body: bytes) -> None:
            response = client.post("/v1/events", content=body,
                                   headers={"Content-Type": "application/json", "Prefer": "respond-async"})
            response.raise_for_status()

        yield post


def request_body(events: Sequence[Event]) -> bytes:
    return json.dumps({"events": [e.to_dict() for e in events]}).encode()


@contextmanager
def serve(url: str, journeys: Path, tmp: Path, workers: int | None = None,
          env: dict[str, str] | None = None) -> Iterator[tuple[str, list[int]]]:
    """`journey serve` (with `--workers K`: K workers on one port) in a child process on a free
    loopback port; yields its URL and the pids of its processes (for their peak memory)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [str(Path(sys.executable).parent / "journey"), "serve", "--db", url, "--journeys", str(journeys),
               "--port", str(port), "--outbox", str(tmp / "outbox.jsonl"), "--policy", str(tmp / "policy.yaml"),
               "--log-level", "warning",  # a line per decision and request is not what is measured
               *(["--workers", str(workers)] if workers is not None else [])]
    log = open(tmp / "serve.log", "wb")  # noqa: SIM115 - closed below, after the child exits
    child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                             env={**os.environ, **(env or {}), "JOURNEY_API_KEYS": "bench"})
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, child, tmp / "serve.log")
        yield base, [child.pid, *children_of(child.pid)]
    finally:
        child.terminate()
        child.wait(timeout=30)
        log.close()


HEALTHY_WITHIN = 120.0  # seconds: two workers starting on a loaded 2-core machine took over 30


def wait_healthy(base: str, child: subprocess.Popen[bytes], log: Path) -> None:
    """Wait for the child's /healthz; a server that exits or never answers is a BenchError."""
    deadline = time.perf_counter() + HEALTHY_WITHIN
    while time.perf_counter() < deadline:
        if child.poll() is not None:
            raise BenchError(f"the journey serve the bench started exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)
    raise BenchError(f"the journey serve the bench started did not become healthy within {HEALTHY_WITHIN:g} s")


def metrics(base: str) -> dict[str, float]:
    response = httpx.get(f"{base}/metrics", headers={"Authorization": "Bearer bench"}, timeout=10)
    response.raise_for_status()
    text = response.text
    return {line.split()[0]: float(line.split()[1]) for line in text.splitlines() if line and not line.startswith("#")}


def rate(metrics: dict[str, float], count: str, seconds: str) -> float:
    spent = metrics.get(seconds, 0.0)
    return metrics.get(count, 0.0) / spent if spent else 0.0


def peak_rss_of(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0
