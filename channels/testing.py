"""Providers for tests: real `Provider`s that keep what they are given instead of delivering it.

Hand them to `engine.host.Server(..., providers={...})` (or to any code that takes a
`Provider`) and assert on what arrived, the way httpx's `MockTransport` stands in for a
network::

    sms = RecordingProvider("sms-test")
    push = FlakyProvider("push-test", failures=2)   # two timeouts, then it works
    server = Server(store, journeys, load_policy(), providers={"sms": [sms], "push": [push]})
    ...
    assert [m.address for m in sms.sent] == ["+14155550100"]

Both are thread-safe, so they also serve a server whose sweeps run in the background.
"""

from __future__ import annotations

import threading

from channels.providers.base import OutboundMessage, PermanentDeliveryError, TemporaryDeliveryError

__all__ = ["FlakyProvider", "RecordingProvider"]


class RecordingProvider:
    """Accepts every message and keeps it, in order; returns `<name>:<n>` as the provider's id."""

    def __init__(self, name: str = "recording") -> None:
        self.name = name
        self.sent: list[OutboundMessage] = []
        self.ids: list[str] = []
        self.calls = 0
        self._lock = threading.Lock()

    def send(self, message: OutboundMessage) -> str:
        with self._lock:
            self.calls += 1
            return self._record(message)

    def _record(self, message: OutboundMessage) -> str:
        provider_id = f"{self.name}:{len(self.sent) + 1}"
        self.sent.append(message)
        self.ids.append(provider_id)
        return provider_id

    @property
    def message_ids(self) -> list[str]:
        """The engine's message ids of everything accepted, in order."""
        with self._lock:
            return [m.message_id for m in self.sent]

    def clear(self) -> None:
        with self._lock:
            self.sent.clear()
            self.ids.clear()
            self.calls = 0


class FlakyProvider(RecordingProvider):
    """Fails the first `failures` calls, then records like `RecordingProvider`.

    A failure is a `TemporaryDeliveryError` (a timeout: worth retrying) or, with
    `permanent=True`, a `PermanentDeliveryError` (a rejected message). A very large
    `failures` makes a provider that is down for good. `failed` counts the failures
    raised so far; `calls` counts every call.
    """

    def __init__(self, name: str = "flaky", failures: int = 1, permanent: bool = False) -> None:
        super().__init__(name)
        if failures < 0:
            raise ValueError("failures: expected a number >= 0")
        self.failures = failures
        self.permanent = permanent
        self.failed = 0

    def send(self, message: OutboundMessage) -> str:
        with self._lock:
            self.calls += 1
            if self.failed < self.failures:
                self.failed += 1
                if self.permanent:
                    raise PermanentDeliveryError(f"{self.name}: rejected {message.message_id} (failure {self.failed})")
                raise TemporaryDeliveryError(f"{self.name}: timed out on {message.message_id} (failure {self.failed})")
            return self._record(message)
