"""What `journey serve` runs: one worker in this process, or K worker processes on one port.

A worker is the whole server: the HTTP API, the sweeps and the dispatcher over one store.
`--workers K` starts K of them behind one listening socket (`engine.host.workers`); on
PostgreSQL they split the users by partition leases, the same as K machines would.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from channels import load_policy
from engine.clock import SystemClock
from engine.compiler import load_paths
from engine.errors import JourneyDefinitionError

if TYPE_CHECKING:
    from engine.host.server import Server

log = logging.getLogger("journey.serve")


@dataclass(frozen=True)
class ServeOptions:
    """`journey serve`'s options, as every worker process receives them."""

    db: str
    journeys: Path
    host: str
    port: int
    policy: Path | None
    outbox: Path
    providers: Path | None
    log_format: str
    log_level: str
    keys: frozenset[str]
    outbox_lease: timedelta
    partition_ttl: timedelta
    stuck_turn: timedelta
    max_body: int
    bulk_max_body: int
    worker_id: str | None = None  # JOURNEY_WORKER_ID: the base of this server's worker ids (default: host:port)
    metrics_public: bool = False  # JOURNEY_METRICS_PUBLIC: /metrics without a key
    user_key_secret: str | None = None  # JOURNEY_USER_KEY_SECRET: what user keys are HMACs under
    public_url: str = ""  # JOURNEY_PUBLIC_URL: where people reach this server (default: http://host:port)


def build(options: ServeOptions, worker_id: str) -> Server:
    """The server of one worker; raises the user's error (a bad journey, policy, providers file
    or database URL) before anything starts."""
    from channels.providers.config import load_providers
    from engine.host.logs import configure
    from engine.host.server import Server, default_providers
    from engine.stores.sql import SqlStore

    compiled = load_paths([options.journeys])
    chosen = load_policy(options.policy)
    senders = load_providers(options.providers, options.outbox, environ=os.environ, clock=SystemClock().seconds) \
        if options.providers else default_providers(options.outbox)
    store = SqlStore(options.db)
    configure(options.log_format, options.log_level)  # from here on every line on stderr is a log record
    return Server(store, compiled, chosen, senders, journeys_dir=options.journeys, outbox_lease=options.outbox_lease,
                  worker_id=worker_id, partition_ttl=options.partition_ttl, stuck_turn=options.stuck_turn)


def run(server: Server, options: ServeOptions, sock: socket.socket | None = None) -> None:
    """Serve until stopped: on `sock` when given (a worker of several), else on host:port."""
    import uvicorn  # the server's stack (the `server` extra) is only loaded by the commands that need it

    from engine.host.logs import fields
    from engine.host.server import tune_runtime
    from engine.http.app import create_app

    tune_runtime()
    logging.getLogger("uvicorn.access").addFilter(server.outage)  # 503s of an outage: counted, not a line each
    api = create_app(server, options.keys, max_body=options.max_body, bulk_max_body=options.bulk_max_body,
                     metrics_public=options.metrics_public, user_key_secret=options.user_key_secret,
                     public_url=options.public_url or f"http://{options.host}:{options.port}")
    server.start()
    _reload_on_sighup(server)
    log.info("serving", extra=fields(journeys=len(server.engine.journeys), folder=str(options.journeys),
                                      database=server.store.location, worker=_worker(server),
                                      url=f"http://{options.host}:{options.port}"))
    config = uvicorn.Config(api, host=options.host, port=options.port, log_config=None, log_level=options.log_level,
                            access_log=True)
    for signum in (signal.SIGTERM, signal.SIGINT):  # uvicorn shuts down, restores these and raises its signal again:
        signal.signal(signum, _exit)  # then this ends the process through `finally`, which stops the server cleanly
    try:
        uvicorn.Server(config).run(sockets=[sock] if sock is not None else None)
    finally:
        server.stop()


def worker_process(k: int, sock: socket.socket, options: ServeOptions) -> None:
    """One of `--workers K` (spawned): its own server on the shared socket."""
    from engine.host.partitions import default_worker_id

    try:
        server = build(options, default_worker_id(options.port, k + 1, options.worker_id))
    except Exception as exc:  # the parent checked the options already: this is the database, most likely
        logging.basicConfig()
        log.error("worker %d could not start: %s", k + 1, exc)
        raise SystemExit(1) from None
    run(server, options, sock)


def _exit(signum: int, _frame: Any) -> None:
    raise SystemExit(0)


def _worker(server: Server) -> Any:
    return server.ownership.worker if server.ownership is not None else None


def _reload_on_sighup(server: Server) -> None:
    """`kill -HUP` reloads the journeys folder, in a thread of its own (the handler must return
    at once); a bad file is reported and changes nothing."""

    def reload() -> None:
        with contextlib.suppress(JourneyDefinitionError):  # logged by the reload, as any reload is
            server.reload()

    signal.signal(signal.SIGHUP, lambda *_: threading.Thread(target=reload, daemon=True, name="reload").start())
