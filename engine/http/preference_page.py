"""The page an email's `{{ preferences_url }}` opens: `GET /v1/users/{user_id}/preferences/page?key=`
shows the person's preferences as a form, one switch per category and channel; `POST` (the form)
saves them. The person's user key in the link is the only credential (a wrong one is a 403), so
the link works from any mail client; opening it changes nothing (a link scanner that follows it
turns nothing off): only the form's POST does."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Annotated
from urllib.parse import parse_qsl, quote

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from markupsafe import escape

from channels import Profile
from channels.preferences import Preferences
from engine.host.server import Server
from engine.http.openapi import documented
from engine.http.problems import problem
from engine.http.routing import JsonRoute, ServerDep, UserId
from engine.http.user_keys import UserKeys

router = APIRouter(route_class=JsonRoute, tags=["preferences"])
PAGE = "/v1/users/{user_id}/preferences/page"
CATEGORIES = ("marketing", "transactional")
CHANNELS = ("email", "sms", "push", "in_app", "mms", "rcs")
KeyQuery = Annotated[str, Query(max_length=200, description="the person's user key, as the link carries it")]
_ANSWER = documented({"type": "string"}, 403, media="text/html")


def preferences_link(keys: UserKeys, public_url: str) -> Callable[[str], str]:
    """`preferences_url` for templates: this page for the person, with their key."""
    base = public_url.rstrip("/")
    return lambda user_id: (f"{base}{PAGE.format(user_id=quote(user_id, safe=''))}?key="
                            f"{keys.key_for(user_id)}")


@router.get(PAGE, operation_id="getPreferencesPage", **_ANSWER)
def show_page(user_id: UserId, key: KeyQuery, request: Request, server: ServerDep) -> Response:
    """The person's preferences as a form (opens with the key in the link; changes nothing)."""
    if not _opens(request, key):
        return _denied()
    return HTMLResponse(_form(user_id, key, _stored(server, user_id).preferences, saved=False))


@router.post(PAGE, operation_id="savePreferencesPage", **_ANSWER)
async def save_page(user_id: UserId, key: KeyQuery, request: Request, server: ServerDep) -> Response:
    """The form saved: a switch left out of the form is off, as an unticked box is."""
    if not _opens(request, key):
        return _denied()
    ticked = {name for name, _ in parse_qsl((await request.body()).decode("utf-8", "replace"))}
    chosen = {c: {ch: f"{c}.{ch}" in ticked for ch in CHANNELS} for c in CATEGORIES}
    preferences = await run_in_threadpool(_save, server, user_id, chosen)
    return HTMLResponse(_form(user_id, key, preferences, saved=True))


def _opens(request: Request, key: str) -> bool:
    keys: UserKeys = request.app.state.user_keys
    return keys.opens(key.encode("utf-8", "replace"), request.url.path)


def _denied() -> Response:
    return problem(403, "this link does not open this person's preferences (ask for a new one)")


def _stored(server: Server, user_id: str) -> Profile:
    with server.lock, server.store.transaction() as tx:
        return tx.get_profile(user_id) or Profile(user_id)


def _save(server: Server, user_id: str, chosen: dict[str, dict[str, bool]]) -> Preferences:
    with server.lock, server.store.transaction() as tx:
        profile = tx.get_profile(user_id) or Profile(user_id)
        kept = {c: {ch: on for ch, on in channels.items() if ch not in CHANNELS}  # channels the page does not show
                for c, channels in profile.preferences.categories.items()}
        categories = {c: {**kept.get(c, {}), **{ch: on for ch, on in chosen[c].items() if not on}} for c in chosen}
        preferences = Preferences.from_dict({"categories": {c: v for c, v in categories.items() if v},
                                             "journeys": dict(profile.preferences.journeys)})
        tx.put_profile(replace(profile, preferences=preferences))
    return preferences


def _form(user_id: str, key: str, preferences: Preferences, saved: bool) -> str:
    rows = "".join(
        f"<tr><th>{c}</th>" + "".join(
            f'<td><label><input type="checkbox" name="{c}.{ch}"{" checked" if preferences.allows(c, ch) else ""}>'
            f" {ch}</label></td>" for ch in CHANNELS) + "</tr>" for c in CATEGORIES)
    note = "<p><strong>Saved.</strong></p>" if saved else ""
    action = escape(f"{PAGE.format(user_id=quote(user_id, safe=''))}?key={quote(key, safe='')}")
    return (f"<!doctype html><meta charset=utf-8><title>Your preferences</title><h1>What we send you</h1>{note}"
            f'<form method="post" action="{action}"><table>{rows}</table><button>Save</button></form>')
