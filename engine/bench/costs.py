"""What a W1 run cost, in figures a busy machine hardly moves: CPU per 1,000 events and SQL
statements and rows per event.

Events per second fall when other processes take the cores; the CPU a run spends does not.
`journey bench` takes a `Spent` before the burst and after the last SMS, and reports the
difference per event. The engine's CPU is the thread CPU of its turns (`EngineCpu`); the
process CPU and a local PostgreSQL's come from Linux's /proc (utime + stime): the server's
postmaster, its live backends, and through the postmaster's `cutime` + `cstime` the backends
that exited meanwhile.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_LOCAL = {"", "localhost", "127.0.0.1", "::1"}


@dataclass(frozen=True)
class Spent:
    """Running totals at one moment; subtract two for what happened between them."""

    engine_cpu: float = 0.0  # seconds of thread CPU in the engine's turns
    process_cpu: float = 0.0  # seconds of CPU of the engine's process(es)
    postgres_cpu: float | None = None  # seconds of CPU of a PostgreSQL server on this machine
    statements: int = 0
    rows: int = 0

    def __sub__(self, before: Spent) -> Spent:
        postgres = None if self.postgres_cpu is None or before.postgres_cpu is None else \
            self.postgres_cpu - before.postgres_cpu
        return Spent(self.engine_cpu - before.engine_cpu, self.process_cpu - before.process_cpu, postgres,
                     self.statements - before.statements, self.rows - before.rows)

    def per_event(self, events: int) -> dict[str, Any]:
        """The figures `journey bench` reports: CPU milliseconds per 1,000 events, statements and
        rows written per event."""
        per_k = 1_000_000 / max(events, 1)  # seconds -> ms per 1,000 events
        return {"engine_cpu_ms_per_1k": round(self.engine_cpu * per_k, 1),
                "process_cpu_ms_per_1k": round(self.process_cpu * per_k, 1),
                "postgres_cpu_ms_per_1k": None if self.postgres_cpu is None else round(self.postgres_cpu * per_k, 1),
                "statements_per_event": round(self.statements / max(events, 1), 3),
                "rows_per_event": round(self.rows / max(events, 1), 3)}


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state, ppid, ...), or None if gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()


def process_cpu(pids: Iterable[int]) -> float:
    """CPU seconds (user + system) the processes have used so far; those gone count 0."""
    total = 0
    for pid in pids:
        fields = _stat(pid)
        if fields is not None:
            total += int(fields[11]) + int(fields[12])
    return total / TICKS


def children_of(pid: int) -> list[int]:
    """The processes `pid` started, as Linux lists them (a scan of /proc where it does not)."""
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        pass
    found = []
    for entry in Path("/proc").iterdir():
        fields = _stat(int(entry.name)) if entry.name.isdigit() else None
        if fields is not None and int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def postmaster_of(url: str, backend: int) -> int | None:
    """The process id of the PostgreSQL server at `url` if it runs on this machine (a loopback
    host or a socket directory): the parent of `backend`, the server process of a connection."""
    host = urlsplit(url).hostname or ""
    if not url.startswith("postgresql") or (host not in _LOCAL and not host.startswith("/")):
        return None
    fields = _stat(backend)
    if fields is None:  # not a process of this machine (a container's, say)
        return None
    postmaster = int(fields[1])
    try:
        return postmaster if "postgres" in Path(f"/proc/{postmaster}/comm").read_text() else None
    except OSError:
        return None


def postgres_cpu(postmaster: int | None) -> float | None:
    """CPU seconds the server has used so far: the postmaster, the backends that exited (the
    postmaster's children times) and those alive."""
    if postmaster is None:
        return None
    fields = _stat(postmaster)
    if fields is None:
        return None
    own = sum(int(f) for f in fields[11:15]) / TICKS  # utime, stime, cutime, cstime
    return own + process_cpu(children_of(postmaster))
