"""The web console (`/console`): static files shipped in the package (`engine/http/console/`:
HTML, CSS and plain ES modules, no build step, nothing from a CDN), served without a key. The
page holds no data: it asks the API for everything with the key the person types in, so the
files being public gives nothing away.

Every answer carries a Content-Security-Policy that lets the page load only this server's own
scripts and styles and talk only to this server: even a script smuggled into the data (the
console inserts every text from the API as text) would not run."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.responses import RedirectResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

PREFIX = "/console"
FILES = Path(__file__).with_name("console")
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",  # revalidated (ETag): a new release's files are seen at once
}


class ConsoleFiles(StaticFiles):
    """The console's files with the security headers above; `index.html` for the folder."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(HEADERS)
        return response


def install_console(app: FastAPI) -> None:
    """Serve the console under `/console/`; `/console` is sent there, so relative paths resolve."""
    app.add_api_route(PREFIX, lambda: RedirectResponse(f"{PREFIX}/", status_code=308), include_in_schema=False)
    app.mount(PREFIX, ConsoleFiles(directory=FILES, html=True), name="console")


def is_console(path: str) -> bool:
    """Whether a path is one of the console's files, which take no key."""
    return path == PREFIX or path.startswith(PREFIX + "/")
