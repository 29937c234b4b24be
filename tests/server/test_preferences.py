"""The preference centre over HTTP, on every store: a channel a person turned off for a category is
ineligible with reason `preference_off` though consent was granted; other categories and channels
still go; a journey that may be muted is, and one that may not is not; the user key opens the
person's own preferences only; a PUT of the profile keeps them; a message already queued when the
person turns the channel off is not handed over."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from engine.http.user_keys import UserKeys
from tests.server.conftest import (
    LocalServer,
    StartLocal,
    StartServer,
    post_events,
    put_profile,
    server_env,
    wait_until,
)

PROMO = """\
id: promo
category: marketing
mutable: {mutable}
trigger: {{event: promo.started}}
steps:
  - {{id: tell, type: send, message: offer, channels: [sms]}}
messages:
  offer: {{sms: {{text: "20% off today. Reply STOP to opt out"}}}}
"""
NEWS = PROMO.replace("id: promo", "id: news").replace("promo.started", "news.out").replace("mutable: {mutable}",
                                                                                            "mutable: false")
GRANTS = ("sms:marketing", "sms:transactional", "email:marketing")


def _start(start_local: StartLocal, journeys_dir: Path, db: str) -> LocalServer:
    (journeys_dir / "promo.yaml").write_text(PROMO.format(mutable="true"), encoding="utf-8")
    (journeys_dir / "news.yaml").write_text(NEWS.format(), encoding="utf-8")
    local = start_local(db=db)
    put_profile(local, "ada", *GRANTS, email="ada@example.com")
    return local


def _sent(local: LocalServer, user: str) -> list[tuple[str, str | None]]:
    return sorted((m["channel"], m.get("journey_id")) for m in local.messages(user) if m["dispatch"] == "sent")


def _skips(local: LocalServer, user: str) -> list[dict[str, Any]]:
    skipped: list[dict[str, Any]] = local.client.get("/v1/messages", params={"user_id": user}).json()["skipped"]
    return skipped


def test_marketing_sms_off_skips_with_preference_off_and_transactional_sms_still_arrives(
        start_local: StartLocal, journeys_dir: Path, any_db: str) -> None:
    local = _start(start_local, journeys_dir, any_db)
    put = local.client.put("/v1/users/ada/preferences", json={"categories": {"marketing": {"sms": False}}})
    assert put.status_code == 200, put.text
    assert local.client.get("/v1/users/ada/preferences").json() == {
        "categories": {"marketing": {"sms": False}}, "journeys": {}}
    for event in ({"type": "promo.started", "user_id": "ada"},
                  {"type": "order.placed", "user_id": "ada", "properties": {"order_id": "o1"}}):
        assert post_events(local, event).status_code == 202
    local.advance(3)
    assert _sent(local, "ada") == [("push", "order-updates"), ("sms", "order-updates")]
    [skip] = _skips(local, "ada")
    assert skip["reason"] == "no_eligible_channel" and skip["decisions"] == [
        {"channel": "sms", "eligible": False, "reason": "preference_off"}]
    consents = {(c["channel"], c["category"]): c["granted"] for c in
                local.client.get("/v1/profiles/ada").json()["consents"]}
    assert consents[("sms", "marketing")] is True  # consent, the legal record, is untouched


def test_a_journey_is_muted_only_where_it_says_it_may_be(start_local: StartLocal, journeys_dir: Path) -> None:
    local = _start(start_local, journeys_dir, "memory")
    body = {"journeys": {"promo": False, "news": False}}
    assert local.client.put("/v1/users/ada/preferences", json=body).status_code == 200
    for kind in ("promo.started", "news.out"):
        assert post_events(local, {"type": kind, "user_id": "ada"}).status_code == 202
    local.settle()
    assert _sent(local, "ada") == [("sms", "news")]
    assert [s["decisions"][0]["reason"] for s in _skips(local, "ada")] == ["preference_off"]


def test_the_user_key_opens_its_own_preferences_and_a_profile_put_keeps_them(
        start_local: StartLocal, journeys_dir: Path) -> None:
    local = _start(start_local, journeys_dir, "memory")
    key = local.client.get("/v1/users/ada/key").json()["key"]
    browser = httpx.Client(base_url=local.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=10)
    body = {"categories": {"marketing": {"email": False}}}
    assert browser.put("/v1/users/ada/preferences", json=body).status_code == 200
    assert browser.get("/v1/users/bob/preferences").status_code == 403
    assert browser.put("/v1/users/bob/preferences", json=body).status_code == 403
    put_profile(local, "ada", timezone="Europe/Paris")
    assert local.client.get("/v1/users/ada/preferences").json()["categories"] == {"marketing": {"email": False}}
    wrong = local.client.put("/v1/users/ada/preferences", json={"categories": {"marketing": {"fax": False}}})
    assert wrong.status_code == 422 and "categories.marketing.fax" in wrong.text, wrong.text
    wrong = local.client.put("/v1/users/ada/preferences", json={"categories": {"marketing": {"sms": "no"}}})
    assert wrong.status_code == 422 and "categories.marketing.sms" in wrong.text, wrong.text


def test_a_queued_message_is_not_handed_over_once_the_channel_is_turned_off(
        start_local: StartLocal, journeys_dir: Path, any_db: str) -> None:
    """The send is decided, then the person turns marketing SMS off before the outbox hands it over."""
    local = _start(start_local, journeys_dir, any_db)
    assert local.client.post("/v1/events", json={"type": "promo.started", "user_id": "ada"}).status_code == 202
    [queued] = local.messages("ada")
    assert queued["dispatch"] == "pending"  # the outbox hands it over when the server's sweeps run
    local.client.put("/v1/users/ada/preferences", json={"categories": {"marketing": {"sms": False}}})
    local.settle()
    [cancelled] = local.messages("ada")
    assert (cancelled["dispatch"], cancelled["error"]) == ("cancelled", "preference_off")


FOOTER = """\
id: digest
category: marketing
trigger: {event: digest.ready}
steps:
  - {id: send, type: send, message: digest, channels: [email]}
messages:
  digest:
    email: {subject: "Your digest", body: "News. Change what we send you: {{ preferences_url }}"}
"""


def test_the_email_footer_link_opens_the_persons_page_and_its_form_turns_email_off(
        start_local: StartLocal, journeys_dir: Path, any_db: str) -> None:
    (journeys_dir / "digest.yaml").write_text(FOOTER, encoding="utf-8")
    local = start_local(db=any_db)
    put_profile(local, "ada", "email:marketing", email="ada@example.com")
    assert post_events(local, {"type": "digest.ready", "user_id": "ada", "id": "d1"}).status_code == 202
    local.settle()
    [email] = local.messages("ada")
    link = email["content"]["body"].split("send you: ")[1]
    assert link.startswith("/v1/users/ada/preferences/page?key=uk_")
    anyone = httpx.Client(base_url=local.base_url, timeout=10)  # a mail client: no API key
    page = anyone.get(link)
    assert page.status_code == 200 and 'name="marketing.email" checked' in page.text
    assert local.client.get("/v1/users/ada/preferences").json()["categories"] == {}  # opening changed nothing
    form = {f"{c}.{ch}": "on" for c in ("marketing", "transactional") for ch in ("email", "sms", "push")}
    del form["marketing.email"]
    saved = anyone.post(link, data=form)
    assert saved.status_code == 200 and "Saved." in saved.text and 'name="marketing.email">' in saved.text
    assert local.client.get("/v1/users/ada/preferences").json()["categories"]["marketing"]["email"] is False
    assert anyone.get(link.replace("/ada/", "/bob/")).status_code == 403
    assert anyone.get(link[:-3] + "xyz").status_code == 403
    assert post_events(local, {"type": "digest.ready", "user_id": "ada", "id": "d2"}).status_code == 202
    local.settle()
    assert [s["decisions"][0]["reason"] for s in _skips(local, "ada")] == ["preference_off"]


def test_journey_serve_takes_the_public_url_and_the_user_key_secret_from_its_environment(
        start_server: StartServer, journeys_dir: Path) -> None:
    """The CLI reads JOURNEY_PUBLIC_URL and JOURNEY_USER_KEY_SECRET and hands them to the app: the
    footer's link starts at the public URL and carries the key made under that secret, which opens
    the person's own preferences on that server."""
    (journeys_dir / "digest.yaml").write_text(FOOTER, encoding="utf-8")
    env = {**server_env(), "JOURNEY_PUBLIC_URL": "https://prefs.example.org", "JOURNEY_USER_KEY_SECRET": "s3cret"}
    server = start_server(env=env)
    put_profile(server, "ada", "email:marketing", email="ada@example.com")
    assert post_events(server, {"type": "digest.ready", "user_id": "ada", "id": "d1"}).status_code == 202
    [email] = wait_until(lambda: server.messages("ada"), timeout=30, what="the digest email")
    key = UserKeys.for_server("s3cret", frozenset()).key_for("ada")
    link = email["content"]["body"].split("send you: ")[1]
    assert link == f"https://prefs.example.org/v1/users/ada/preferences/page?key={key}"
    with httpx.Client(base_url=server.base_url, timeout=10, headers={"Authorization": f"Bearer {key}"}) as person:
        assert person.get("/v1/users/ada/preferences").status_code == 200
        assert person.get("/v1/users/bob/preferences").status_code == 403
