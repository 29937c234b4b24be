"""`journey serve --workers K`: K worker processes behind one listening socket.

The parent binds the port once and starts K processes (spawned, never forked: a process
with threads does not fork safely); each is a whole `journey serve` worker (HTTP API,
sweeps, dispatcher) accepting connections on the shared socket, with its own worker id.
They share their PostgreSQL database and split its users by partition leases, exactly as
K machines would. The parent forwards SIGHUP (reload) to every worker, stops them all on
SIGTERM or SIGINT, and starts again a worker that died, so its partitions come back.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import socket
import time
from collections.abc import Callable
from multiprocessing.connection import wait
from typing import Any

log = logging.getLogger("journey.workers")
RESTART_DELAY = 1.0  # seconds before a worker that died is started again
STARTUP_GRACE = 10.0  # a worker that dies sooner than this after the first start stops them all


def listening_socket(host: str, port: int) -> socket.socket:
    """The one socket every worker accepts on."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


class Workers:
    """Runs `target(k, sock, *args)` in K processes until told to stop; restarts any that die,
    after `died(pid)` (the metrics' bookkeeping for a process gone)."""

    def __init__(self, count: int, target: Callable[..., None], sock: socket.socket, args: tuple[Any, ...],
                 died: Callable[[int], None] = lambda pid: None) -> None:
        self.count = count
        self._died = died
        self._target = target
        self._sock = sock
        self._args = args
        self._context = multiprocessing.get_context("spawn")
        self._processes: dict[int, Any] = {}
        self._stopping = False

    def run(self) -> int:
        """Start the workers and watch them; returns the exit code for the command."""
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: self.stop())
        signal.signal(signal.SIGHUP, lambda *_: self._signal_all(signal.SIGHUP))
        started = time.monotonic()
        for k in range(self.count):
            self._start(k)
        while not self._stopping:
            wait([p.sentinel for p in self._processes.values()], timeout=1.0)
            for k, process in list(self._processes.items()):
                if process.is_alive() or self._stopping:
                    continue
                if time.monotonic() - started < STARTUP_GRACE:
                    log.error("worker %d of %d exited at start-up (code %s): stopping", k + 1, self.count,
                              process.exitcode)
                    self.stop()
                    return 1
                log.error("worker %d of %d died (code %s): starting it again", k + 1, self.count, process.exitcode)
                self._died(process.pid)
                time.sleep(RESTART_DELAY)
                self._start(k)
        self._join()
        return 0

    def stop(self) -> None:
        self._stopping = True
        self._signal_all(signal.SIGTERM)

    def _start(self, k: int) -> None:
        process = self._context.Process(target=self._target, args=(k, self._sock, *self._args),
                                        name=f"journey-worker-{k + 1}")
        process.start()
        self._processes[k] = process

    def _signal_all(self, signum: int) -> None:
        for process in self._processes.values():
            if process.is_alive() and process.pid is not None:
                with contextlib.suppress(ProcessLookupError):  # it exited just now
                    os.kill(process.pid, signum)

    def _join(self) -> None:
        for process in self._processes.values():
            process.join(30)
            if process.is_alive():
                process.kill()
