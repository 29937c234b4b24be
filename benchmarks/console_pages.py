"""How long each page of the web console takes to load with 100,000 instances in the database.

    python benchmarks/console_pages.py [--instances 100000] [--runs 5] [--db sqlite:///PATH]

Fills a database through the real engine (the shipped journeys; `cart-abandonment` entered by
`--instances` carts, the first thousand people with a profile and a push sent to each, the rest
waiting an hour), serves it with `journey serve` on loopback, and opens each page in Debian's
headless Chromium as a person does: a fresh navigation each run, timed from the navigation's start
to the moment the page has its data on screen (the `console:<page>` mark the console sets). Prints
the median and the slowest run per page. A script, not a test: run it by hand, on a quiet machine.
Needs `chromium` and `chromium-driver` (Debian packages) and the dev extra (selenium).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from channels import Profile, load_policy
from channels.profile import ConsentRecord
from engine.clock import SystemClock, VirtualClock
from engine.compiler import load_paths
from engine.events import parse_event
from engine.host import Server, default_providers
from engine.stores.sql import SqlStore

ROOT = Path(__file__).resolve().parents[1]
JOURNEY = "cart-abandonment"
KEY = "bench-console"
BATCH = 1000
WITH_PROFILES = 1000
PAGES = {"journeys": "#/journeys", "journey": f"#/journeys/{JOURNEY}", "person": "#/people/u0",
         "messages": "#/messages", "messages filtered": f"#/messages?journey={JOURNEY}&channel=push",
         "simulate": "#/simulate"}
DEADLINE = 60.0


def cart(n: int, at: str) -> dict[str, Any]:
    return {"id": f"cart-{n}", "type": "cart.abandoned", "user_id": f"u{n}", "timestamp": at,
            "properties": {"cart_id": f"c{n}", "value": 50.0, "items": 2, "currency": "USD",
                           "url": f"https://shop.example.com/cart/c{n}", "discount_code": "CART10"}}


def person(n: int, at: Any) -> Profile:
    consent = ConsentRecord("push", "marketing", True, "bench", at)
    return Profile(user_id=f"u{n}", timezone="UTC", push_token=f"tok-{n}", consents=(consent,))


def fill(db: str, instances: int, outbox: Path) -> None:
    """`instances` carts through the engine: the first WITH_PROFILES two hours ago (their push
    sent, their escalation pending), the rest now (waiting an hour at wait_1h)."""
    now = SystemClock().now()
    clock = VirtualClock(now - timedelta(hours=2))
    server = Server(SqlStore(db), load_paths([ROOT / "journeys"]), load_policy(), default_providers(outbox),
                    clock=clock)
    server.resume()
    with server.store.transaction() as tx:
        for n in range(WITH_PROFILES):
            tx.put_profile(person(n, clock.now()))
    started = time.perf_counter()
    for first in range(0, instances, BATCH):
        if first == WITH_PROFILES:
            clock.advance_to(clock.now() + timedelta(minutes=65))
            server.run_due()  # the first thousand's reminders
            clock.advance_to(now)
        at = clock.now().isoformat()
        server.ingest([parse_event(cart(n, at), clock.now()) for n in range(first, min(first + BATCH, instances))])
    server.stop()
    print(f"filled {instances:,} instances in {time.perf_counter() - started:.0f} s", file=sys.stderr)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def served(db: str, folder: Path) -> Iterator[str]:
    """`journey serve` on the database, on a free loopback port, until the block ends."""
    port = free_port()
    env = {**os.environ, "JOURNEY_API_KEYS": KEY}
    argv = [str(Path(sys.executable).parent / "journey"), "serve", "--db", db, "--journeys", str(ROOT / "journeys"),
            "--port", str(port), "--outbox", str(folder / "outbox.jsonl")]
    with open(folder / "serve.log", "wb") as log:
        process = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=folder)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + DEADLINE
        while not _answers(base):
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"journey serve did not start: see {folder / 'serve.log'}")
            time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


def _answers(base: str) -> bool:
    with contextlib.suppress(httpx.TransportError):
        return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
    return False


def chromium(folder: Path) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if binary is None or driver is None:
        raise SystemExit("needs Chromium and its driver: apt-get install chromium chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--window-size=1280,1000", f"--user-data-dir={folder / 'chromium'}"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(executable_path=driver), options=options)


def load_time(browser: Any, base: str, route: str, run: int) -> float:
    """Milliseconds from a fresh navigation to the page's data on screen."""
    from selenium.webdriver.support.ui import WebDriverWait

    page = route.removeprefix("#/").split("/")[0].split("?")[0]
    browser.get(f"{base}/console/?run={run}{route}")
    script = f"return performance.getEntriesByName('console:{page}').map(m => m.startTime)"
    marks: list[float] = WebDriverWait(browser, DEADLINE, poll_frequency=0.05).until(lambda b: b.execute_script(script))
    return float(marks[-1])


def measure(base: str, folder: Path, runs: int) -> dict[str, list[float]]:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    browser = chromium(folder)
    try:
        browser.get(f"{base}/console/")
        WebDriverWait(browser, DEADLINE).until(lambda b: b.find_elements(By.ID, "api-key"))
        browser.find_element(By.ID, "api-key").send_keys(KEY, Keys.ENTER)  # kept in the tab's sessionStorage
        WebDriverWait(browser, DEADLINE).until(lambda b: b.find_element(By.ID, "main").get_attribute("data-loaded"))
        load_time(browser, base, "#/journeys", 0)  # warm: the first load compiles the modules
        return {name: [load_time(browser, base, route, run) for run in range(1, runs + 1)]
                for name, route in PAGES.items()}
    finally:
        browser.quit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--instances", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--db", help="a database URL to fill (default: a SQLite file in a temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="console-bench-") as tmp:
        folder = Path(tmp)
        db = args.db or f"sqlite:///{folder / 'journey.db'}"
        fill(db, args.instances, folder / "outbox.jsonl")
        with served(db, folder) as base:
            stats = httpx.get(f"{base}/v1/journeys/{JOURNEY}/stats", headers={"Authorization": f"Bearer {KEY}"}).json()
            print(f"{JOURNEY}: {stats['entered']:,} instances entered; {stats['instances']}")
            times = measure(base, folder, args.runs)
    print(f"{'page':<20}{'median ms':>10}{'slowest ms':>12}")
    for name, values in times.items():
        print(f"{name:<20}{statistics.median(values):>10.0f}{max(values):>12.0f}")


if __name__ == "__main__":
    main()
