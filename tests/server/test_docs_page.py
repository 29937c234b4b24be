"""`/docs` as a person opens it: Debian's headless Chromium, driven by selenium, loads the page
from a server on loopback and must render the OpenAPI 3.1 document's operations, with every
asset (script, style, icon) served by the server itself, never a CDN: the page works offline.

Needs `chromium` and `chromium-driver` (Debian packages; `.ci/run` installs them): without them
the test skips locally and fails in CI (the `browser` fixture, tests/server/conftest.py)."""

from __future__ import annotations

from urllib.parse import urlsplit

from tests.server.conftest import LocalServer, wait_until


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
