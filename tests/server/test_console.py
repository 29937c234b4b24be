"""The web console (`/console`) as a person uses it: Debian's headless Chromium, driven by selenium,
against the real server and its HTTP API served by uvicorn on loopback, with the shipped journeys
and the cart-abandonment example's people. The key is typed into the page once; every count,
decision and state the page shows is read back from the API the page itself calls.

The browser tests wait on what the page shows (WebDriverWait, generous deadlines), never sleep;
without Chromium they skip locally and fail in CI (the `browser` fixture)."""

from __future__ import annotations

import json
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from engine.clock import VirtualClock
from tests.server.conftest import API_KEYS, LocalServer, StartLocal

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "cart-abandonment"
CONSOLE = ROOT / "engine" / "http" / "console"
DEADLINE = 60.0  # what the page shows arrives in well under a second; a machine shared by several suites is slower
JOURNEY = "cart-abandonment"


def jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture
def journeys_dir(tmp_path: Path) -> Path:
    """The shipped journeys, as `journey serve --journeys journeys/` loads them."""
    folder = tmp_path / "journeys"
    shutil.copytree(ROOT / "journeys", folder)
    return folder


@pytest.fixture
def shop(start_local: StartLocal) -> LocalServer:
    """The server with the shipped journeys and the example's people, its clock at the first cart;
    the example's five carts posted (four worth 20 or more enter) and two hours gone by, so each
    entrant's reminder has been decided."""
    local = start_local(clock=VirtualClock(datetime(2026, 1, 5, 15, 0, tzinfo=UTC)))
    assert local.client.post("/v1/profiles", json={"profiles": jsonl(EXAMPLE / "profiles.jsonl")}).status_code == 200
    carts = [e for e in jsonl(EXAMPLE / "events.jsonl") if e["type"] == "cart.abandoned"]
    for cart in carts:
        local.clock.advance_to(datetime.fromisoformat(cart["timestamp"]))
        assert local.client.post("/v1/events", json=cart).json()["accepted"] == 1
    local.advance(2 * 3600)
    return local


def cart_of(user_id: str, value: float, at: datetime) -> dict[str, Any]:
    """A cart.abandoned event as the example's, worth `value`."""
    return {"id": f"cart-{user_id}-{value}", "type": "cart.abandoned", "user_id": user_id, "timestamp": at.isoformat(),
            "properties": {"cart_id": f"c-{user_id}-{value}", "value": value, "items": 2, "currency": "USD",
                           "url": f"https://shop.example.com/cart/c-{user_id}", "discount_code": "CART10"}}


def open_console(browser: Any, local: LocalServer, route: str) -> None:
    """Open the console at `route` (`#/journeys/...`), type the key into its form, wait for the page."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(f"{local.base_url}/console/{route}")
    WebDriverWait(browser, DEADLINE).until(lambda b: b.find_elements(By.ID, "api-key"))
    browser.find_element(By.ID, "api-key").send_keys(API_KEYS[0], Keys.ENTER)
    page = route.removeprefix("#/").split("/")[0].split("?")[0]
    WebDriverWait(browser, DEADLINE).until(
        lambda b: b.find_element(By.ID, "main").get_attribute("data-loaded") == page,
        f"the console's {page} page to load")


def shown(browser: Any, selector: str) -> dict[str, str]:
    """The text of each graph node's (or edge's) count, by node id (or `from->to`)."""
    script = """return Object.fromEntries([...document.querySelectorAll(arguments[0])].map(g => [
        g.dataset.node || `${g.dataset.from}->${g.dataset.to}`, g.querySelector('.count, .edge-count').textContent]))"""
    found: dict[str, str] = browser.execute_script(script, selector)
    return found


def wait_for(browser: Any, check: Any, what: str) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, DEADLINE, poll_frequency=0.2).until(lambda b: check(), what)


def node_texts(stats: dict[str, Any], layout: dict[str, Any]) -> dict[str, str]:
    """What each node should say, from the stats document."""
    texts = {"(start)": f"{stats['entered']} entered"}
    for node in layout["nodes"]:
        step = stats["steps"].get(node["id"])
        if step is not None:
            waiting = f" · {step['waiting']} waiting" if step["waiting"] else ""
            texts[node["id"]] = f"{step['entered']} entered{waiting}"
    return texts


def test_the_graph_of_a_shipped_journey_shows_the_stats_counts_and_follows_new_events(shop: LocalServer,
                                                                                      browser: Any) -> None:
    open_console(browser, shop, f"#/journeys/{JOURNEY}")
    stats = shop.client.get(f"/v1/journeys/{JOURNEY}/stats").json()
    layout = shop.client.get(f"/v1/journeys/{JOURNEY}/graph").json()
    assert stats["entered"] == 4 and stats["steps"]["wait_1h"]["left"]["nudge"] == 4  # u5's cart is under 20

    expected = node_texts(stats, layout)
    wait_for(browser, lambda: shown(browser, "g.node").items() >= expected.items(), f"the nodes to read {expected}")
    edges = shown(browser, "g.edge")
    assert edges["(start)->wait_1h"] == "4" and edges["wait_1h->nudge"] == "4"
    assert edges["nudge->big_cart"] == str(stats["steps"]["nudge"]["left"].get("big_cart", 0))

    browser.execute_script("window.stillTheSamePage = true")
    again = cart_of("u5", 80.0, shop.clock.now())  # u5's first cart, 12, entered nothing
    assert shop.client.post("/v1/events", json=again).json()["accepted"] == 1
    wait_for(browser, lambda: shown(browser, "g.node")["(start)"] == "5 entered", "the live refresh to count entry 5")
    assert shown(browser, "g.node")["wait_1h"] == "5 entered · 1 waiting"
    assert browser.execute_script("return window.stillTheSamePage") is True  # refreshed in place, not reloaded


def test_looking_up_a_person_shows_each_decision_with_its_reason(shop: LocalServer, browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    open_console(browser, shop, "#/journeys")
    browser.find_element(By.ID, "person-search").send_keys("u4", Keys.ENTER)  # u4 never consented to SMS

    def decision_rows() -> list[list[str]]:
        rows = browser.find_elements(By.CSS_SELECTOR, "article.decision tbody tr")
        return [[cell.text for cell in row.find_elements(By.TAG_NAME, "td")] for row in rows]

    rows = wait_for(browser, decision_rows, "u4's decisions")
    assert ["sms", "not eligible", "no_consent"] in [row[:3] for row in rows], rows
    assert any(row[:2] == ["push", "eligible"] for row in rows), rows
    message = shop.messages("u4")[0]
    card = browser.find_element(By.CSS_SELECTOR, "article.decision").text
    assert message["choice"]["reason"] in card and "sent on push" in card
    assert browser.find_element(By.ID, "main").get_attribute("data-loaded") == "people"


def test_text_from_the_api_is_shown_as_text_never_run(shop: LocalServer, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    hostile = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>'
    answer = shop.client.put("/v1/profiles/u-x", json={"timezone": "UTC", "attributes": {"first_name": hostile}})
    assert answer.status_code == 200, answer.text
    open_console(browser, shop, "#/people/u-x")
    assert hostile in browser.find_element(By.CSS_SELECTOR, "dl.facts").text
    assert not browser.find_elements(By.CSS_SELECTOR, "main img, main script")
    assert browser.execute_script("return window.pwned") is None


def test_pausing_a_journey_from_the_console_stops_new_entries(shop: LocalServer, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    open_console(browser, shop, f"#/journeys/{JOURNEY}")
    entered = shop.client.get(f"/v1/journeys/{JOURNEY}/stats").json()["entered"]
    wait_for(browser, lambda: browser.find_element(By.ID, "pause-journey").is_enabled(), "the Pause button")
    browser.find_element(By.ID, "pause-journey").click()
    wait_for(browser, lambda: browser.find_element(By.ID, "action-status").text == f"{JOURNEY} is paused",
             "the console to say the journey is paused")
    assert shop.client.get(f"/v1/journeys/{JOURNEY}").json()["state"] == "paused"
    wait_for(browser, lambda: browser.find_element(By.ID, "resume-journey").is_enabled(), "the Resume button")

    cart = cart_of("u5", 500.0, shop.clock.now())  # would enter (the first test shows it does)
    assert shop.client.post("/v1/events", json=cart).json()["accepted"] == 1
    shop.advance(2 * 3600)
    assert shop.client.get("/v1/users/u5/instances").json()["instances"] == []
    assert shop.client.get(f"/v1/journeys/{JOURNEY}/stats").json()["entered"] == entered


# --- without a browser: the files, the key, the graph ----------------------------------------------------------


def test_the_console_is_served_without_a_key_from_the_package_with_a_strict_policy(local: LocalServer) -> None:
    with httpx.Client(base_url=local.base_url, timeout=10) as anonymous:
        assert anonymous.get("/console").headers["location"] == "/console/"
        page = anonymous.get("/console/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert "connect-src 'self'" in page.headers["content-security-policy"]
        for name in sorted(p.name for p in CONSOLE.iterdir()):
            served = anonymous.get(f"/console/{name}")
            assert served.status_code == 200 and served.text == (CONSOLE / name).read_text(encoding="utf-8"), name
            assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", served.text), f"{name} reaches another host"
        assert anonymous.get("/v1/journeys").status_code == 401  # the data still needs the key
        assert anonymous.get("/console/missing.js").status_code == 404


def test_nothing_in_the_console_writes_markup_from_strings() -> None:
    sources = {p.name: p.read_text(encoding="utf-8") for p in CONSOLE.glob("*.js")}
    for name, text in sources.items():
        assert not re.search(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function", text), name


def test_the_graph_route_places_every_step_of_every_shipped_journey(shop: LocalServer) -> None:
    for journey in shop.client.get("/v1/journeys").json()["journeys"]:
        layout = shop.client.get(f"/v1/journeys/{journey['id']}/graph").json()
        detail = shop.client.get(f"/v1/journeys/{journey['id']}").json()
        nodes = {n["id"]: n for n in layout["nodes"]}
        steps = {s["id"] for s in detail["definition"]["steps"]}
        assert steps | {"(start)"} <= set(nodes) <= steps | {"(start)", "(end)"}, journey["id"]
        assert len({(n["x"], n["y"]) for n in nodes.values()}) == len(nodes), f"{journey['id']}: nodes overlap"
        assert all(0 < n["x"] < layout["width"] and 0 < n["y"] < layout["height"] for n in nodes.values())
        for edge in layout["edges"]:
            assert nodes[edge["to"]]["y"] > nodes[edge["from"]]["y"], (journey["id"], edge)  # no shipped loops
        assert layout["version"] == journey["version"]
    missing = shop.client.get("/v1/journeys/nope/graph")
    assert missing.status_code == 404 and "nope" in missing.json()["detail"]
