"""The providers' lanes: a pool of threads per provider, as many as it takes messages at once.

Provider clients are synchronous (the `twilio` client, `smtplib`), so a worker sends many
messages at once by calling them from several threads. A message goes to the lane of its
channel's first provider; every call to a provider, a failover's included, holds one of that
provider's `concurrency` permits, so no provider is ever handed more at once than it said it
takes. A provider that says nothing takes one at a time.

A provider that buffers what it is handed (the outbox file) has a `flush`, called with one of its
permits (so never while its single thread sends) before anything it took is recorded (`flush`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager, nullcontext

from channels import CHANNELS
from channels.providers import DeliveryError, Provider

Turn = Callable[[], AbstractContextManager[object]]


def concurrency(provider: Provider) -> int:
    return max(1, int(getattr(provider, "concurrency", 1) or 1))


class Lanes:
    """Providers per channel (in failover order; `"*"` serves channels not listed) and their threads."""

    def __init__(self, providers: Mapping[str, Sequence[Provider]], turn: Turn = nullcontext) -> None:
        """`turn`: held around each task on a lane's thread (the engine's CPU counter: a send is
        the engine's work, whichever thread does it)."""
        self.providers = providers
        self._turn = turn
        distinct = {id(p): p for chain in providers.values() for p in chain}
        self._buffering = [p for p in distinct.values() if callable(getattr(p, "flush", None))]
        self._permits = {key: threading.BoundedSemaphore(concurrency(p)) for key, p in distinct.items()}
        self._pools: dict[int, ThreadPoolExecutor] = {}
        self._opening = threading.Lock()
        self._seconds: dict[int, float] = {}  # a provider's time per call, smoothed

    def chain(self, channel: str) -> Sequence[Provider]:
        return self.providers.get(channel) or self.providers.get("*") or ()

    def threads(self, channels: Iterable[str]) -> int:
        """How many messages of these channels can be in their providers' hands at once."""
        return sum(concurrency(p) for p in self._firsts(channels))

    def speed(self, channels: Iterable[str]) -> float:
        """Messages a second these channels' lanes send with every thread busy, at their providers'
        measured time per call (0 until one has answered)."""
        return sum(concurrency(p) / seconds for p in self._firsts(channels)
                   if (seconds := self._seconds.get(id(p))) is not None)

    def _firsts(self, channels: Iterable[str]) -> list[Provider]:
        """The provider whose lane each of these channels' messages go to."""
        return list({id(chain[0]): chain[0] for c in set(channels) if (chain := self.chain(c))}.values())

    def idempotent_channels(self) -> frozenset[str]:
        """Channels every provider of which takes an idempotency key: a send in doubt (caught
        mid-call by a crash, or unanswered) is retried there rather than left `unknown`."""
        channels = set(CHANNELS) if "*" in self.providers else set()
        channels |= set(self.providers) - {"*"}
        return frozenset(c for c in channels if (chain := self.chain(c)) and all(
            getattr(p, "idempotent", False) for p in chain))

    def submit(self, provider: Provider, task: Callable[[], None]) -> None:
        """Run `task` on `provider`'s lane."""
        self._pool(provider).submit(self._turned, task)

    def _turned(self, task: Callable[[], None]) -> None:
        with self._turn():
            task()

    def flush(self) -> dict[str, DeliveryError]:
        """Every provider that buffers hands over what it took so far; returns the names of those
        that could not, with why. A flush holds one of the provider's permits, as a send does."""
        failed: dict[str, DeliveryError] = {}
        for provider in self._buffering:
            try:
                with self._permits[id(provider)]:
                    provider.flush()  # type: ignore[attr-defined]
            except DeliveryError as exc:
                failed[provider.name] = exc
        return failed

    @contextmanager
    def gate(self, provider: Provider) -> Iterator[None]:
        """Held around each call to `provider`: one of its permits. The call is timed."""
        with self._permits[id(provider)]:
            started = time.perf_counter()
            try:
                yield
            finally:
                took = max(time.perf_counter() - started, 1e-6)
                known = self._seconds.get(id(provider))
                self._seconds[id(provider)] = took if known is None else 0.8 * known + 0.2 * took

    def close(self) -> None:
        """Wait for the calls under way, then let the threads go."""
        with self._opening:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.shutdown(wait=True)

    def _pool(self, provider: Provider) -> ThreadPoolExecutor:
        with self._opening:
            pool = self._pools.get(id(provider))
            if pool is None:
                pool = self._pools[id(provider)] = ThreadPoolExecutor(
                    concurrency(provider), thread_name_prefix=f"send-{getattr(provider, 'name', 'provider')}")
            return pool
