"""`/docs` as a person opens it: Debian's headless Chromium, driven by selenium, loads the page
from a server on loopback and must render the OpenAPI 3.1 document's operations, with every
asset (script, style, icon) served by the server itself, never a CDN: the page works offline.

Needs `chromium` and `chromium-driver` (Debian packages; `.ci/run` installs them): without them
the test skips locally and fails in CI."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import skip_or_fail
from tests.server.conftest import LocalServer, wait_until

BROWSER_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage")


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    """A fresh headless Chromium (its own profile folder) through Debian's chromedriver."""
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


def test_the_docs_page_renders_the_openapi_31_document_from_the_servers_own_assets(local: LocalServer,
                                                                                   browser: object) -> None:
    from selenium.webdriver.remote.webdriver import WebDriver

    assert isinstance(browser, WebDriver)
    assert local.client.get("/openapi.json").json()["openapi"].startswith("3.1")
    page = local.client.get("/docs", headers={})
    assert page.status_code == 200 and "cdn." not in page.text

    browser.get(f"{local.base_url}/docs")

    def operations() -> list[str]:
        found = browser.find_elements("css selector", ".opblock-summary-path")
        return [element.get_attribute("data-path") or element.text for element in found]

    paths = wait_until(operations, timeout=60, interval=0.25, what="Swagger UI to list the API's operations")
    assert {"/v1/events", "/v1/profiles/{user_id}", "/v1/journeys/reload"} <= set(paths), paths
    assert not browser.find_elements("css selector", ".errors-wrapper .error-wrapper"), "Swagger UI shows errors"
    assert "Unable to render this definition" not in browser.page_source
    assert browser.find_elements("css selector", ".btn.authorize"), "no Authorize button"
    loaded = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    here = urlsplit(local.base_url).netloc
    assert loaded and all(urlsplit(url).netloc == here for url in loaded), loaded
