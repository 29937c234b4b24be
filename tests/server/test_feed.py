"""The in-app feed over HTTP, on every store: in_app messages appear in the person's feed, newest
first, with an unread count; marking one read lowers it and is an event a `wait_for` moves on; the
person's user key reads their own feed only; erasure and export cover it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.server.conftest import LocalServer, StartLocal, post_events, put_profile

JOURNEY = """\
id: onboarding
category: transactional
trigger: {event: signed.up}
steps:
  - {id: one, type: send, message: hello, channels: [in_app]}
  - {id: two, type: send, message: tips, channels: [in_app]}
  - {id: three, type: send, message: offer, channels: [in_app]}
  - id: wait_read
    type: wait_for
    event: in_app.read
    timeout: 1d
    on_event: thanks
    on_timeout: done
  - {id: thanks, type: send, message: thanks, channels: [push], next: done}
  - {id: done, type: exit}
messages:
  hello: {in_app: {title: "Welcome", body: "Hello {{ profile.attributes.name }}"}}
  tips: {in_app: {title: "Tips", body: "Three tips"}}
  offer: {in_app: {title: "Offer", body: "10% off"}}
  thanks: {push: {title: "Thanks", body: "Thanks for reading"}}
"""


def _start(start_local: StartLocal, journeys_dir: Path, db: str) -> LocalServer:
    (journeys_dir / "onboarding.yaml").write_text(JOURNEY, encoding="utf-8")
    local = start_local(db=db)
    for user in ("ada", "bob"):
        put_profile(local, user, attributes={"name": user.title()})
        assert post_events(local, {"type": "signed.up", "user_id": user}).status_code == 202
    local.settle()
    return local


def _feed(client: httpx.Client, user: str, **params: Any) -> dict[str, Any]:
    reply = client.get(f"/v1/users/{user}/feed", params=params)
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


def test_three_messages_then_one_read_moves_the_journey_on(start_local: StartLocal, journeys_dir: Path,
                                                           any_db: str) -> None:
    local = _start(start_local, journeys_dir, any_db)
    feed = _feed(local.client, "ada")
    assert [i["title"] for i in feed["items"]] == ["Offer", "Tips", "Welcome"]
    assert feed["unread_count"] == 3 and feed["next_cursor"] is None
    assert feed["items"][2]["body"] == "Hello Ada" and feed["items"][2]["read_at"] is None
    first = feed["items"][2]["message_id"]
    read = local.client.post(f"/v1/users/ada/feed/{first}/read")
    assert read.status_code == 200, read.text
    assert read.json()["unread_count"] == 2 and read.json()["read_at"] and read.json()["seen_at"]
    local.settle()
    assert _feed(local.client, "ada")["unread_count"] == 2
    assert "push" in [m["channel"] for m in local.messages("ada")]  # the wait_for moved on to `thanks`
    [instance] = local.client.get("/v1/users/ada/instances").json()["instances"]
    assert instance["status"] == "completed" and instance["path"][-2:] == ["thanks", "done"]
    status = {m["message_id"]: m["status"] for m in local.messages("ada")}
    assert status[first] == "read"
    again = local.client.post(f"/v1/users/ada/feed/{first}/read")  # no change, no second event
    assert again.status_code == 200 and again.json()["unread_count"] == 2
    assert [m["channel"] for m in local.messages("ada")].count("push") == 1
    assert _feed(local.client, "bob")["unread_count"] == 3  # another person's feed is their own


def test_paging_archiving_and_marking_all(start_local: StartLocal, journeys_dir: Path, any_db: str) -> None:
    local = _start(start_local, journeys_dir, any_db)
    page = _feed(local.client, "ada", limit=2)
    assert [i["title"] for i in page["items"]] == ["Offer", "Tips"] and page["next_cursor"]
    rest = _feed(local.client, "ada", limit=2, cursor=page["next_cursor"])
    assert [i["title"] for i in rest["items"]] == ["Welcome"] and rest["next_cursor"] is None
    offer = page["items"][0]["message_id"]
    assert local.client.post(f"/v1/users/ada/feed/{offer}/archived").json()["unread_count"] == 2
    assert [i["title"] for i in _feed(local.client, "ada")["items"]] == ["Tips", "Welcome"]
    assert [i["title"] for i in _feed(local.client, "ada", archived="true")["items"]] == ["Offer", "Tips", "Welcome"]
    seen = local.client.post("/v1/users/ada/feed/seen").json()
    assert seen == {"marked": 3, "unread_count": 2}
    assert local.client.post("/v1/users/ada/feed/read").json() == {"marked": 3, "unread_count": 0}
    assert local.client.post("/v1/users/ada/feed/nope/read").status_code == 404
    assert local.client.post(f"/v1/users/bob/feed/{offer}/read").status_code == 404  # ada's, not bob's
    assert local.client.post(f"/v1/users/ada/feed/{offer}/liked").status_code == 422
    assert local.client.get("/v1/users/ada/feed", params={"cursor": "%%%"}).status_code == 422
    assert _feed(local.client, "ada", cursor="")["unread_count"] == 0  # empty: the first page


def test_a_user_key_reads_its_own_feed_only(start_local: StartLocal, journeys_dir: Path) -> None:
    local = _start(start_local, journeys_dir, "memory")
    key = local.client.get("/v1/users/ada/key").json()["key"]
    browser = httpx.Client(base_url=local.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert browser.get("/v1/users/ada/feed").json()["unread_count"] == 3
    message_id = browser.get("/v1/users/ada/feed").json()["items"][0]["message_id"]
    assert browser.post(f"/v1/users/ada/feed/{message_id}/read").status_code == 200
    for path in ("/v1/users/bob/feed", "/v1/users/ada/instances", "/v1/users/ada/key", "/v1/profiles/ada"):
        denied = browser.get(path)
        assert denied.status_code == 403, (path, denied.text)
    assert browser.post("/v1/users/bob/feed/read").status_code == 403
    stranger = httpx.Client(base_url=local.base_url, headers={"Authorization": "Bearer uk_forged"}, timeout=10)
    assert stranger.get("/v1/users/ada/feed").status_code == 403
    assert httpx.get(f"{local.base_url}/v1/users/ada/feed", timeout=10).status_code == 401


def test_erasure_empties_the_feed_and_export_lists_it(start_local: StartLocal, journeys_dir: Path,
                                                      any_db: str) -> None:
    local = _start(start_local, journeys_dir, any_db)
    message_id = _feed(local.client, "ada")["items"][0]["message_id"]
    local.client.post(f"/v1/users/ada/feed/{message_id}/read")
    exported = local.client.get("/v1/profiles/ada/export").json()
    assert [(i["message_id"], bool(i["read_at"])) for i in exported["feed"]][0] == (message_id, True)
    assert len(exported["feed"]) == 3
    assert local.client.delete("/v1/profiles/ada").status_code == 204
    assert _feed(local.client, "ada") == {"items": [], "unread_count": 0, "next_cursor": None}
    assert _feed(local.client, "bob")["unread_count"] == 3
