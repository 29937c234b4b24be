"""This worker's share of the users, when several workers share one PostgreSQL database.

Each user belongs to one partition (`engine.state.partition_of`) and each partition to one
worker at a time, by a lease the worker renews with a heartbeat (`PartitionLeases`). The
owner applies everything that changes its users' state: their queued events, their timers,
their synchronous events. Another worker that receives an event for them queues it in the
inbox, where the owner finds it. A worker that dies loses its partitions when its leases
run out (`ttl`); the others take them and carry on with the timers and queued events there.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from datetime import timedelta
from typing import Any

from engine.clock import Clock
from engine.host.backlog import Backlog
from engine.host.rates import Rates
from engine.ports import PartitionLeases
from engine.state import Lease

DEFAULT_TTL = timedelta(seconds=10)


def default_worker_id(port: int | None = None, number: int | None = None, base: str | None = None) -> str:
    """`base` (`journey serve` passes `JOURNEY_WORKER_ID`), else the host name and `port` (else the
    process id), with `/number` for one of `--workers K`. Stable across restarts on purpose: a
    restarted worker takes its own partitions back at once rather than waiting for its old leases
    to run out."""
    base = base or f"{socket.gethostname()}:{port if port is not None else os.getpid()}"
    return base if number is None else f"{base}/{number}"


class Ownership:
    """The partitions this worker owns, as of its last heartbeat, and the totals /metrics shows."""

    def __init__(self, leases: PartitionLeases, worker: str, ttl: timedelta = DEFAULT_TTL) -> None:
        self.leases = leases
        self.worker = worker
        self.ttl = ttl
        self.owned: frozenset[int] = frozenset()
        self.lease_changes = 0  # partitions taken or given up since start
        self.workers = 1  # live workers at the last heartbeat, this one included
        self.joined = False  # heartbeat at least once: it has a place among the workers to leave
        leases.worker = worker

    @property
    def interval(self) -> float:
        """Seconds between heartbeats: five a lease, so that a slow one or two do not lose it."""
        return self.ttl.total_seconds() / 5

    def owns(self, user_id: str) -> bool:
        return self.leases.partitioning.of(user_id) in self.owned

    def parts_of(self, user_ids: list[str]) -> set[int]:
        return {self.leases.partitioning.of(u) for u in user_ids}

    def beat(self, stats: Mapping[str, Any]) -> Lease:
        """Renew, and take partitions up to this worker's share (safe while a batch is in flight)."""
        def report(lease: Lease) -> dict[str, Any]:
            changes = self.lease_changes + len(lease.gained)
            return {**stats, "partitions": len(lease.owned), "lease_changes": changes}

        lease = self.leases.heartbeat(self.ttl, report)
        self.owned = lease.owned
        self.workers = lease.workers
        self.joined = True
        self.lease_changes += len(lease.gained)
        return lease

    def give_up(self, count: int) -> frozenset[int]:
        """Give up partitions above this worker's share; the caller holds the engine's turn."""
        lost = self.leases.give_up(count)
        self.owned = self.owned - lost
        self.lease_changes += len(lost)
        return lost

    def leave(self, stats: Mapping[str, Any]) -> None:
        """Give every partition up now (a clean stop), so the others need not wait for the leases."""
        if self.joined:
            self.owned = frozenset()
            self.leases.release({**stats, **self.stats()})

    def stats(self) -> dict[str, Any]:
        return {"partitions": len(self.owned), "lease_changes": self.lease_changes}


class Membership:
    """What each heartbeat changes for this worker: the partitions it renewed, took or must give
    up, the inbox's backlog that goes with them, and its share of the send rates."""

    def __init__(self, ownership: Ownership, lock: AbstractContextManager[Any], backlog: Backlog, rates: Rates,
                 clock: Clock, stats: Callable[[], Mapping[str, Any]], repace: Callable[[], None],
                 wake: Callable[[str], None]) -> None:
        self.ownership = ownership
        self.lock = lock
        self.backlog = backlog
        self.rates = rates
        self.clock = clock
        self.stats = stats
        self.repace = repace  # the send rates changed: book the messages held back again
        self.wake = wake

    def beat(self) -> int:
        """Renew this worker's partition leases and move toward an even share (the sweep job)."""
        ownership = self.ownership
        lease = ownership.beat(self.stats())  # not in turn: a long batch must not cost the leases
        if self.rates.share(lease.workers, self.clock.now()):  # the send rates are the cluster's
            self.repace()
        if lease.gained:
            self.backlog.admit(ownership.leases.queued_users(lease.gained), wait=False)
            self.wake("inbox")
            self.wake("timers")
        if lease.surplus:
            with self.lock:  # no batch in flight: a partition given up is not being worked on
                ownership.give_up(lease.surplus)
                self.backlog.hand_over(lambda user_id: not ownership.owns(user_id))
        return 0
