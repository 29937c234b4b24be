"""The README's pictures of the web console: docs/images/console-*.png.

    python scripts/console_screenshots.py

Serves the shipped journeys in this process (a memory store, a virtual clock, uvicorn on
loopback), plays the cart-abandonment example's events at their times, and photographs the pages
in Debian's headless Chromium (`chromium`, `chromium-driver`): the journey's graph with its counts,
a person's decisions and timeline, the messages, and a dry run drawn on the graph.
"""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from channels import load_policy
from engine.clock import VirtualClock
from engine.compiler import load_paths
from engine.host import Server, default_providers
from engine.http import create_app
from engine.stores.memory import MemoryStore

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "cart-abandonment"
IMAGES = ROOT / "docs" / "images"
KEY = "screenshots"
WIDTH = 1280


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def serve(tmp: Path) -> tuple[Server, VirtualClock, str]:
    events = lines(EXAMPLE / "events.jsonl")
    clock = VirtualClock(datetime.fromisoformat(events[0]["timestamp"]))
    server = Server(MemoryStore(), load_paths([ROOT / "journeys"]), load_policy(),
                    default_providers(tmp / "outbox.jsonl"), clock=clock, journeys_dir=ROOT / "journeys")
    server.resume()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    web = uvicorn.Server(uvicorn.Config(create_app(server, frozenset({KEY})), host="127.0.0.1", port=port,
                                        log_level="warning", lifespan="off"))
    threading.Thread(target=web.run, daemon=True).start()
    while not web.started:
        time.sleep(0.05)
    return server, clock, f"http://127.0.0.1:{port}"


def play(server: Server, clock: VirtualClock, api: httpx.Client) -> None:
    """The example's people, then each event at its time, then three hours more."""
    api.post("/v1/profiles", json={"profiles": lines(EXAMPLE / "profiles.jsonl")}).raise_for_status()
    for event in lines(EXAMPLE / "events.jsonl"):
        walk(server, clock, datetime.fromisoformat(event["timestamp"]))
        api.post("/v1/events", json=event).raise_for_status()
    walk(server, clock, clock.now() + timedelta(hours=3))


def walk(server: Server, clock: VirtualClock, until: datetime) -> None:
    while (due := server.next_wake()) is not None and due <= until:
        clock.advance_to(max(due, clock.now()))
        server.run_due()
    clock.advance_to(until)
    server.run_due()


def browser(tmp: Path) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "chromium"
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--window-size={WIDTH},900",
                 f"--user-data-dir={tmp / 'chromium'}", "--force-device-scale-factor=1"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(executable_path=shutil.which("chromedriver") or "chromedriver"),
                            options=options)


def shoot(driver: Any, base: str, route: str, name: str, height: int, before: Any = None) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(f"{base}/console/{route}")
    page = route.removeprefix("#/").split("/")[0].split("?")[0]
    WebDriverWait(driver, 30).until(lambda d: d.find_element("id", "main").get_attribute("data-loaded") == page)
    if before is not None:
        before(driver)
    driver.set_window_size(WIDTH, height)
    driver.save_screenshot(str(IMAGES / f"console-{name}.png"))
    print(f"docs/images/console-{name}.png")


def dry_run(driver: Any) -> None:
    """Paste the example into the simulate form and run it."""
    from selenium.webdriver.support.ui import Select, WebDriverWait

    Select(driver.find_element("id", "journey-select")).select_by_value("cart-abandonment")
    for name in ("events", "profiles"):
        text = (EXAMPLE / f"{name}.jsonl").read_text(encoding="utf-8")
        driver.execute_script("document.getElementById(arguments[0]).value = arguments[1]", f"{name}-input", text)
    driver.find_element("id", "run-simulate").click()
    WebDriverWait(driver, 30).until(lambda d: d.find_elements("css selector", "#simulation svg.graph"))
    driver.execute_script("document.querySelector('#simulation').scrollIntoView()")


def main() -> None:
    import tempfile

    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    IMAGES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        server, clock, base = serve(tmp)
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {KEY}"}) as api:
            play(server, clock, api)
        driver = browser(tmp)
        try:
            driver.get(f"{base}/console/")
            WebDriverWait(driver, 30).until(lambda d: d.find_elements("id", "api-key"))
            driver.find_element("id", "api-key").send_keys(KEY, Keys.ENTER)
            WebDriverWait(driver, 30).until(lambda d: d.find_element("id", "main").get_attribute("data-loaded"))
            shoot(driver, base, "#/journeys/cart-abandonment", "journey", 1240)
            shoot(driver, base, "#/people/u2", "person", 1500)
            shoot(driver, base, "#/messages", "messages", 760)
            shoot(driver, base, "#/simulate", "simulate", 1100, dry_run)
        finally:
            driver.quit()
            server.stop()


if __name__ == "__main__":
    main()
