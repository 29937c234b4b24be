"""The server for end-to-end tests, spoken to over HTTP: in this process on a virtual clock,
or as a real `journey serve` process for what only a process can show.

`start_local(...)` / `local`: a `LocalServer`, the real `Server` on a memory (default), SQLite
or PostgreSQL store and a `VirtualClock`, its app served by uvicorn over loopback. Nothing runs
by itself: `settle()` does what the sweeps would do now, `advance(seconds)` moves the clock
timer by timer; no test waits for time to pass. `any_db` runs a test on each store.

`start_server(...)` runs the console script on a free loopback port with its own SQLite
file (or any `--db` URL), a journeys folder and an outbox file in the test's tmp_path,
waits for `/healthz`, and gives back a `ServerProcess` with an authenticated httpx client:
for kill -9 and several processes on one database. Every server started is stopped at
teardown. `wait_for_sweeps` waits for a process's sweeps to have run (from /metrics), where
a duplicate would otherwise need a blind sleep to show.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, Protocol
from urllib.parse import urlencode

import httpx
import pytest
import uvicorn
from prometheus_client.parser import text_string_to_metric_families
from twilio.request_validator import RequestValidator

from channels import Policy, load_policy
from channels.providers import Provider
from engine.clock import VirtualClock
from engine.compiler import load_paths
from engine.host import Server, default_providers
from engine.http import create_app
from engine.ports import HostStore
from engine.stores.memory import MemoryStore
from engine.stores.sql import SqlStore
from tests.conftest import skip_or_fail
from tests.providers.provider_fakes import AUTH_TOKEN, FakeTwilio

JOURNEY = Path(sys.executable).parent / "journey"
API_KEYS = ("k1", "k2")
START_TIMEOUT = 60.0  # a server answers in a second or two; a machine shared by several suites is slower
GRANTED_AT = "2026-01-01T00:00:00Z"

JOURNEYS: dict[str, str] = {
    # push at once, wait 2 s, then an SMS
    "order-updates.yaml": """\
id: order-updates
name: Order updates
category: transactional
trigger:
  event: order.placed
steps:
  - {id: received, type: send, message: order_received, channels: [push]}
  - {id: pause, type: wait, duration: 2s}
  - {id: shipped, type: send, message: order_shipped, channels: [sms]}
messages:
  order_received:
    push: {title: "Order received", body: "Order {{ event.properties.order_id }} is in"}
  order_shipped:
    sms: {text: "Order {{ event.properties.order_id }} has shipped"}
""",
    # wait up to 2 s for a review; an SMS nudge on timeout
    "review-request.yaml": """\
id: review-request
name: Review request
category: transactional
trigger:
  event: delivery.completed
steps:
  - id: await_review
    type: wait_for
    event: review.submitted
    timeout: 2s
    on_event: done
    on_timeout: nudge
  - {id: nudge, type: send, message: review_nudge, channels: [sms], next: done}
  - {id: done, type: exit}
messages:
  review_nudge:
    sms: {text: "How was your order? Tell us in one tap"}
""",
    # push at once, wait 3 s, then an SMS: the restart test kills the server inside the wait
    "welcome.yaml": """\
id: welcome
name: Welcome
category: transactional
trigger:
  event: account.created
steps:
  - {id: hello, type: send, message: hello, channels: [push]}
  - {id: pause, type: wait, duration: 3s}
  - {id: tips, type: send, message: tips, channels: [sms]}
messages:
  hello:
    push: {title: "Welcome", body: "Glad you are here"}
  tips:
    sms: {text: "Three tips to get started: reply HELP"}
""",
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tail(path: Path, limit: int = 4000) -> str:
    return path.read_text(errors="replace")[-limit:] if path.exists() else "(no output)"


def wait_until(check: Callable[[], Any], timeout: float = 10.0, interval: float = 0.1, what: str = "condition") -> Any:
    """Poll `check` until it returns something truthy; return that, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}; last value: {result!r}")
        time.sleep(interval)


@dataclass
class ServerProcess:
    """One running `journey serve`; `client` carries the first API key."""

    process: subprocess.Popen[bytes]
    base_url: str
    db: str
    outbox: Path
    log: Path
    client: httpx.Client
    _log_handle: IO[bytes] | None = field(default=None, repr=False)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {API_KEYS[0]}"}

    @property
    def people_zone(self) -> str:
        """The time zone `put_profile` gives people: one where it is day on the real clock."""
        return daytime_zone(datetime.now(UTC))

    def outbox_lines(self) -> list[dict[str, Any]]:
        if not self.outbox.exists():
            return []
        lines = self.outbox.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def messages(self, user_id: str) -> list[dict[str, Any]]:
        response = self.client.get("/v1/messages", params={"user_id": user_id})
        assert response.status_code == 200, response.text
        messages: list[dict[str, Any]] = response.json()["messages"]
        return messages

    def kill(self) -> None:
        """kill -9: no shutdown hooks, no flush; what is on disk is all that survives."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
        self._close()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not exited within 10 s."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._close()

    def _close(self) -> None:
        self.client.close()
        if self._log_handle is not None:
            self._log_handle.close()
            self._log_handle = None


class StartServer(Protocol):
    def __call__(self, db: str | None = None, name: str = "server", env: dict[str, str] | None = None,
                 args: Sequence[str] = ()) -> ServerProcess: ...


@pytest.fixture
def journeys_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "journeys"
    folder.mkdir()
    for name, text in JOURNEYS.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def server_env(keys: str | None = ",".join(API_KEYS)) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "JOURNEY_API_KEYS"}
    if keys is not None:
        env["JOURNEY_API_KEYS"] = keys
    return env


@pytest.fixture
def start_server(tmp_path: Path, journeys_dir: Path) -> Iterator[StartServer]:
    """Factory: start `journey serve` (default: SQLite in tmp_path) and wait until /healthz answers;
    `args` are added to its command line (`--log-format json`, `--providers FILE`)."""
    started: list[ServerProcess] = []

    def start(db: str | None = None, name: str = "server", env: dict[str, str] | None = None,
              args: Sequence[str] = ()) -> ServerProcess:
        db = db or f"sqlite:///{tmp_path / 'journey.db'}"
        port = free_port()
        outbox = tmp_path / "outbox.jsonl"
        log = tmp_path / f"{name}-{len(started) + 1}.log"
        handle = log.open("wb")
        argv = [str(JOURNEY), "serve", "--db", db, "--journeys", str(journeys_dir), "--port", str(port),
                "--outbox", str(outbox), *args]
        process = subprocess.Popen(argv, cwd=tmp_path, env=env or server_env(), stdout=handle,
                                   stderr=subprocess.STDOUT)
        base_url = f"http://127.0.0.1:{port}"
        client = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {API_KEYS[0]}"}, timeout=10)
        running = ServerProcess(process, base_url, db, outbox, log, client, handle)
        started.append(running)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if process.poll() is not None:
                running.stop()
                raise RuntimeError(f"journey serve exited with {process.returncode} before answering /healthz:\n"
                                   f"{tail(log)}")
            with contextlib.suppress(httpx.TransportError):
                if client.get("/healthz", timeout=1).status_code == 200:
                    return running
            if time.monotonic() >= deadline:
                running.stop()
                raise RuntimeError(f"journey serve did not answer /healthz within {START_TIMEOUT} s:\n{tail(log)}")
            time.sleep(0.05)

    yield start
    for running in started:
        running.stop()


def daytime_zone(now: datetime) -> str:
    """A fixed-offset zone in which `now` falls in the noon hour. A `journey serve` process runs on
    the real clock, and the default policy holds marketing sends through the recipient's night
    (21:00-08:00): a person in UTC would have a test's SMS wait for morning whenever the suite runs
    in the UTC evening. (`Etc/GMT-3` is three hours ahead of UTC: the POSIX sign.)"""
    ahead = (12 - now.hour) % 24
    ahead = ahead - 24 if ahead > 14 else ahead  # zones run from 12 hours behind UTC to 14 ahead
    return "Etc/GMT" if ahead == 0 else f"Etc/GMT{-ahead:+d}"


def put_profile(server: ServerProcess | LocalServer, user_id: str, *grants: str, **fields: Any) -> dict[str, Any]:
    """PUT a profile with a push token, a phone and the given "channel:category" opt-ins."""
    consents = []
    for grant in grants:
        channel, category = grant.split(":")
        consents.append({"channel": channel, "category": category, "granted": True, "source": "test",
                         "at": GRANTED_AT})
    body: dict[str, Any] = {"push_token": f"tok-{user_id}", "phone": "+14155550100", "timezone": server.people_zone,
                            "consents": consents, **fields}
    response = server.client.put(f"/v1/profiles/{user_id}", json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def post_events(server: ServerProcess | LocalServer, body: Any) -> httpx.Response:
    return server.client.post("/v1/events", json=body)


def twilio_post(local: LocalServer, kind: str, params: dict[str, str]) -> httpx.Response:
    """A Twilio webhook (`status` callback or `inbound` message), signed as Twilio signs it."""
    url = f"{local.base_url}/v1/webhooks/twilio/{kind}"
    signature = RequestValidator(AUTH_TOKEN).compute_signature(url, params)
    return local.client.post(f"/v1/webhooks/twilio/{kind}", content=urlencode(params),
                             headers={"Content-Type": "application/x-www-form-urlencoded",
                                      "X-Twilio-Signature": signature})


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    """A local server speaking Twilio's Messages API (tests/providers/provider_fakes.py)."""
    fake = FakeTwilio()
    fake.start()
    yield fake
    fake.stop()


# --- the server in this process, on a virtual clock ------------------------------------------------------------

T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


@dataclass
class LocalServer:
    """`journey serve`'s parts in this process: a `Server` on a store of the test's choosing and a
    `VirtualClock`, its HTTP app served by uvicorn on a loopback port. Nothing runs by itself:
    `settle()` does what the sweeps would do now, `advance(seconds)` moves the clock timer by timer
    and settles at each, so a 2-second wait fires after exactly 2 virtual seconds, with no sleeping.
    Same reading methods as `ServerProcess`."""

    server: Server
    clock: VirtualClock
    base_url: str
    db: str
    outbox: Path
    client: httpx.Client
    _uvicorn: uvicorn.Server = field(repr=False)
    _thread: threading.Thread = field(repr=False)

    outbox_lines = ServerProcess.outbox_lines
    messages = ServerProcess.messages

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {API_KEYS[0]}"}

    people_zone = "UTC"  # the virtual clock's start is chosen by each test

    def serving(self) -> bool:
        """uvicorn still runs and answers /healthz."""
        return self._thread.is_alive() and self.client.get("/healthz").status_code == 200

    def settle(self) -> int:
        return self.server.run_due()

    def advance(self, seconds: float) -> None:
        """Move the clock forward by `seconds`, firing whatever comes due on the way at its own time."""
        until = self.clock.now() + timedelta(seconds=seconds)
        self.settle()
        while (due := self.server.next_wake()) is not None and due <= until:
            self.clock.advance_to(due)
            self.settle()
        self.clock.advance_to(until)
        self.settle()

    def stop(self) -> None:
        self.client.close()
        self._uvicorn.should_exit = True
        self._thread.join(timeout=10)
        self.server.stop()


class StartLocal(Protocol):
    def __call__(self, db: str | None = None, keys: Sequence[str] = API_KEYS,
                 providers: Mapping[str, Sequence[Provider]] | None = None, clock: VirtualClock | None = None,
                 store: HostStore | None = None, policy: Policy | None = None,
                 metrics_public: bool = False) -> LocalServer: ...


@pytest.fixture
def start_local(tmp_path: Path, journeys_dir: Path) -> Iterator[StartLocal]:
    """Factory: a `LocalServer` with the test journeys; `db` "memory" (the default), a SQLite or a
    PostgreSQL URL (a second call on the same URL is a restart: pass the first one's `clock` to go
    on from its time, or its memory `store`; `policy`: the shipped one by default; `metrics_public`:
    /metrics without a key, as `JOURNEY_METRICS_PUBLIC=1` makes it). The server reloads
    `journeys_dir` on request."""
    started: list[LocalServer] = []

    def start(db: str | None = None, keys: Sequence[str] = API_KEYS,
              providers: Mapping[str, Sequence[Provider]] | None = None, clock: VirtualClock | None = None,
              store: HostStore | None = None, policy: Policy | None = None,
              metrics_public: bool = False) -> LocalServer:
        db = db or "memory"
        store = store or (MemoryStore() if db == "memory" else SqlStore(db))
        clock = clock or VirtualClock(T0)
        outbox = tmp_path / "outbox.jsonl"
        server = Server(store, load_paths([journeys_dir]), policy or load_policy(),
                        providers or default_providers(outbox), clock=clock, journeys_dir=journeys_dir)
        server.resume()  # what start() does before the sweeps: a second call on the same db is a restart
        port = free_port()
        api = create_app(server, frozenset(keys), metrics_public=metrics_public)
        served = uvicorn.Server(uvicorn.Config(api, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
        thread = threading.Thread(target=served.run, daemon=True, name="uvicorn")
        thread.start()
        base_url = f"http://127.0.0.1:{port}"
        client = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {keys[0]}"} if keys else {},
                              timeout=10)
        local = LocalServer(server, clock, base_url, db, outbox, client, served, thread)
        started.append(local)
        wait_until(lambda: served.started, timeout=START_TIMEOUT, interval=0.01, what="uvicorn to listen")
        return local

    yield start
    for local in started:
        local.stop()


@pytest.fixture
def local(start_local: StartLocal) -> LocalServer:
    """A `LocalServer` on a memory store with the test journeys, keys k1 and k2."""
    return start_local()


@pytest.fixture(params=["sqlite", "postgresql"])
def durable_db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A `start_local` `db` for each store that outlives its process: a SQLite file, a fresh
    PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'journey.db'}"
    url: str = request.getfixturevalue("postgres_fresh_db_url")
    return url


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def any_db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A `start_local` `db` for each store: memory, a SQLite file, a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'journey.db'}"
    if request.param == "postgresql":
        url: str = request.getfixturevalue("postgres_fresh_db_url")
        return url
    return "memory"


def metric(server: ServerProcess | LocalServer, name: str, **labels: str) -> float | None:
    """One sample of the server's /metrics, or None if it has no such sample."""
    response = server.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return None


def wait_for_metric(server: ServerProcess | LocalServer, name: str, value: float, timeout: float = 30.0,
                    **labels: str) -> None:
    """Wait until a sample of the server's /metrics reads `value`: a figure another process or a
    sweep updates (a heartbeat, a worker's share) is not there at the first read on a busy machine."""
    wait_until(lambda: metric(server, name, **labels) == value, timeout=timeout, interval=0.2,
               what=f"{name}{labels or ''} to read {value}")


def sweeps_done(server: ServerProcess | LocalServer, sweep: str) -> float:
    """How many runs of the sweep ("inbox", "timers" or "outbox") the server has completed."""
    return metric(server, "journey_sweeps_total", sweep=sweep) or 0.0


def wait_for_sweeps(*sweeps: str, on: Sequence[ServerProcess], runs: int = 2, timeout: float = 10.0) -> None:
    """Wait until each of `sweeps` has completed `runs` more runs on every server in `on` than it
    had now. The first may have begun before this moment, so with `runs=2` at least one ran
    entirely after it: whatever it would do (a duplicate, say) has been done."""
    before = {(n, sweep): sweeps_done(server, sweep) for n, server in enumerate(on) for sweep in sweeps}
    wait_until(lambda: all(sweeps_done(on[n], sweep) >= count + runs for (n, sweep), count in before.items()),
               timeout=timeout, interval=0.05, what=f"{runs} more runs of the {', '.join(sweeps)} sweeps")


# --- a browser -------------------------------------------------------------------------------------------------

BROWSER_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage", "--window-size=1280,1000")


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    """A fresh headless Chromium (its own profile folder) through Debian's chromedriver: pages are
    opened as a person opens them (/docs, /console). Without Chromium and its driver (Debian's
    `chromium` and `chromium-driver`, which `.ci/run` installs) the test skips locally and fails in CI."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if chromium is None or driver_path is None:
        skip_or_fail("Chromium and its driver are not installed: apt-get install chromium chromium-driver")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        skip_or_fail("selenium is not installed: pip install -e '.[dev]'")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (*BROWSER_FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)  # no driver download
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
