"""Users sharded over worker processes: one whole `Server` per core, each on its own SQLite file.

One process runs its engine on one core (the GIL), however many threads it has. A
`ShardedServer` starts K worker processes; user u belongs to worker `shard_of(u, K)`, which
keeps u's profile, instances, timers, messages and queued events in its own database file
(`shard_url`) with its own cache, sweeps and dispatcher. Workers share nothing, so they
never wait for each other; a user's events all go to one worker, so they keep their order.
The parent only splits batches by user and forwards them over a pipe.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import threading
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from channels import Policy
from channels.providers import FileProvider
from engine.errors import ShardError
from engine.events import Event
from engine.state import Ingested


@dataclass(frozen=True)
class WorkerSpec:
    """What every worker builds its `Server` from (picklable: journeys as YAML text)."""

    url: str  # the undivided database URL; each worker opens its own `shard_url`
    journeys: tuple[tuple[str, str], ...]  # (file name, YAML text)
    policy: Policy
    outbox: str  # each worker appends to its own `<outbox>.<k>-of-<K>` file
    batch: int = 1000
    timer_interval: float = 1.0


def shard_of(user_id: str, shards: int) -> int:
    """Stable across processes and runs (unlike `hash`)."""
    return zlib.crc32(user_id.encode()) % shards


def shard_url(url: str, index: int, shards: int) -> str:
    """`sqlite:///data/journey.db` -> `sqlite:///data/journey.2-of-4.db` (index 1 of 4)."""
    if not url.startswith("sqlite:///"):
        raise ShardError(f"{url}: sharded workers need SQLite files; on PostgreSQL run several "
                         "`journey serve` workers on one database instead")
    path = Path(url.removeprefix("sqlite:///"))
    return "sqlite:///" + str(path.with_name(f"{path.stem}.{index + 1}-of-{shards}{path.suffix}"))


def shard_path(path: str, index: int, shards: int) -> str:
    return f"{path}.{index + 1}-of-{shards}"


class ShardedServer:
    """`accept` / `ingest` / `counters` of K workers behind one object; thread-safe."""

    def __init__(self, spec: WorkerSpec, shards: int) -> None:
        if shards < 1:
            raise ShardError(f"workers: expected at least 1, got {shards}")
        self.shards = shards
        self.urls = [shard_url(spec.url, k, shards) for k in range(shards)]
        context = multiprocessing.get_context("spawn")  # never fork a process that has threads
        self._pipes: list[Connection] = []
        self._locks = [threading.Lock() for _ in range(shards)]
        self.processes: list[Any] = []
        for k in range(shards):
            mine, theirs = context.Pipe()
            process = context.Process(target=_work, args=(theirs, spec, k, shards), name=f"journey-worker-{k + 1}",
                                      daemon=True)
            process.start()
            theirs.close()
            self._pipes.append(mine)
            self.processes.append(process)
        try:
            for k in range(shards):
                self._reply(k)  # "ready", or the worker's start-up error
        except (ShardError, EOFError, OSError) as exc:
            for process in self.processes:
                process.kill()
            raise exc if isinstance(exc, ShardError) else ShardError(f"a worker died while starting: {exc}") from None

    def accept(self, events: Sequence[Event]) -> list[Ingested]:
        """`Server.accept` on each event's worker; durable when this returns."""
        return self._forward("accept", events)

    def ingest(self, events: Sequence[Event]) -> list[Ingested]:
        """`Server.ingest` on each event's worker; processed when this returns."""
        return self._forward("ingest", events)

    def counters(self) -> list[dict[str, Any]]:
        """Each worker's `Server.counters`, in shard order."""
        return [self._ask(k, "counters", None) for k in range(self.shards)]

    def stop(self) -> None:
        for k in range(self.shards):
            with contextlib.suppress(ShardError, OSError, EOFError):  # a worker already gone is stopped
                self._ask(k, "stop", None)
        for process in self.processes:
            process.join(30)
            if process.is_alive():
                process.kill()

    def _forward(self, op: str, events: Sequence[Event]) -> list[Ingested]:
        """Split by worker, send every part before waiting for any, so the workers run together."""
        parts: dict[int, list[int]] = {}
        for n, event in enumerate(events):
            parts.setdefault(shard_of(event.user_id, self.shards), []).append(n)
        duplicate = [False] * len(events)
        held = sorted(parts)
        for k in held:
            self._locks[k].acquire()
        try:
            for k in held:
                self._pipes[k].send((op, [events[n] for n in parts[k]]))
            for k in held:
                for n, flag in zip(parts[k], self._reply(k), strict=True):
                    duplicate[n] = flag
        finally:
            for k in held:
                self._locks[k].release()
        return [Ingested(event, flag) for event, flag in zip(events, duplicate, strict=True)]

    def _ask(self, k: int, op: str, payload: Any) -> Any:
        with self._locks[k]:
            self._pipes[k].send((op, payload))
            return self._reply(k)

    def _reply(self, k: int) -> Any:
        status, value = self._pipes[k].recv()
        if status == "error":
            raise ShardError(f"worker {k + 1} of {self.shards}: {value}")
        return value


def _work(pipe: Connection, spec: WorkerSpec, index: int, shards: int) -> None:
    """A worker process: one whole `Server` on its own shard, answering the parent's requests."""
    from engine.compiler import load_text
    from engine.host.server import Server, tune_runtime
    from engine.stores.sql import SqlStore

    try:
        tune_runtime()
        journeys = [load_text(text, name) for name, text in spec.journeys]
        outbox = FileProvider(shard_path(spec.outbox, index, shards))
        server = Server(SqlStore(shard_url(spec.url, index, shards)), journeys, spec.policy, {"*": [outbox]},
                        batch=spec.batch, timer_interval=spec.timer_interval)
        server.start()
    except Exception as exc:  # reported to the parent, which raises it (unless it is gone already)
        with contextlib.suppress(OSError):
            pipe.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    pipe.send(("ok", "ready"))
    handlers = {"accept": lambda events: [r.duplicate for r in server.accept(events)],
                "ingest": lambda events: [r.duplicate for r in server.ingest(events)],
                "counters": lambda _: {**asdict(server.counters), "dequeued": server.backlog.dequeued,
                                       "queue_seconds": server.backlog.seconds}}
    try:
        while True:
            op, payload = pipe.recv()
            if op == "stop":
                break
            try:
                pipe.send(("ok", handlers[op](payload)))
            except Exception as exc:
                pipe.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        server.stop()
        pipe.send(("ok", "stopped"))
