from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from provider_fakes import FakeFcm, FakeRbm, FakeTwilio, HookSink, SmtpSink, service_account


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reaches outside loopback: any other connection fails the test."""
    real = socket.socket.connect

    def connect(self: socket.socket, address: object) -> None:
        if isinstance(address, tuple) and str(address[0]) not in ("127.0.0.1", "::1", "localhost"):
            raise AssertionError(f"a test tried to reach {address}")
        return real(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", connect)


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink().start()
    yield sink
    sink.stop()


@pytest.fixture
def fake_twilio() -> Iterator[FakeTwilio]:
    server = FakeTwilio()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def fake_fcm() -> Iterator[tuple[FakeFcm, dict[str, str]]]:
    account, public_key = service_account()
    server = FakeFcm(public_key)
    server.start()
    yield server, account
    server.stop()


@pytest.fixture
def hook_sink() -> Iterator[HookSink]:
    server = HookSink()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def fake_rbm() -> Iterator[tuple[FakeRbm, dict[str, str]]]:
    account, public_key = service_account("rbm-acme")
    server = FakeRbm(public_key)
    server.start()
    yield server, account
    server.stop()
