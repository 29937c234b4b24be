"""Reading across users over HTTP: `GET /v1/messages` without `user_id` (filters, newest first,
cursor pages), a person's timeline, and the stats route's parameters, on every store."""

from __future__ import annotations

from typing import Any

from tests.server.conftest import T0, LocalServer, StartLocal, post_events, put_profile


def _orders(local: LocalServer, users: int) -> None:
    """order-updates for each user a minute apart: a push at once, an SMS 2 s later."""
    for n in range(users):
        put_profile(local, f"u{n}", "push:transactional", "sms:transactional")
        assert post_events(local, {"type": "order.placed", "user_id": f"u{n}",
                                   "properties": {"order_id": f"o{n}"}}).status_code == 202
        local.advance(60)


def _pages(local: LocalServer, **params: Any) -> list[list[dict[str, Any]]]:
    pages, cursor = [], ""
    while True:
        answer = local.client.get("/v1/messages", params={**params, "cursor": cursor})
        assert answer.status_code == 200, answer.text
        pages.append(answer.json()["messages"])
        cursor = answer.json()["next_cursor"]
        if cursor is None:
            return pages


def test_every_users_messages_filtered_newest_first_a_page_at_a_time(start_local: StartLocal, any_db: str) -> None:
    local = start_local(db=any_db)
    _orders(local, 5)
    pages = _pages(local, channel="sms", limit=2)
    assert [len(p) for p in pages] == [2, 2, 1]
    sms = [m for page in pages for m in page]
    assert [m["user_id"] for m in sms] == ["u4", "u3", "u2", "u1", "u0"]
    assert {(m["channel"], m["step"], m["journey_id"], m["status"]) for m in sms} == \
        {("sms", "shipped", "order-updates", "sent")}
    everything = [m for page in _pages(local, journey="order-updates") for m in page]
    assert len(everything) == 10 and [m["at"] for m in everything] == sorted((m["at"] for m in everything),
                                                                            reverse=True)
    assert [m["user_id"] for page in _pages(local, step="received", since="2026-01-05T10:01:00Z",
                                              until="2026-01-05T10:03:00Z") for m in page] == ["u2", "u1"]
    assert _pages(local, status="failed") == [[]]
    assert local.client.get("/v1/messages", params={"user_id": "u1"}).json()["messages"][0]["channel"] == "sms"


def test_bad_page_parameters_are_422_naming_them(local: LocalServer) -> None:
    for params, field in (({"cursor": "bm90LWEtY3Vyc29y"}, "cursor"), ({"limit": 0}, "limit"),
                          ({"since": "yesterday"}, "since")):
        answer = local.client.get("/v1/messages", params=params)
        assert answer.status_code == 422 and field in answer.text, answer.text


def test_a_persons_timeline_holds_the_event_decision_message_receipt_and_end_in_order(local: LocalServer) -> None:
    _orders(local, 1)
    answer = local.client.get("/v1/users/u0/timeline")
    assert answer.status_code == 200, answer.text
    items = answer.json()["items"]
    kinds = [(i["kind"], i.get("action") or i.get("channel")) for i in items]
    assert kinds == [("event", None), ("instance", "entered"), ("decision", "push"), ("message", "push"),
                     ("receipt", "push"), ("decision", "sms"), ("message", "sms"), ("receipt", "sms"),
                     ("instance", "completed")]
    assert [i["at"] for i in items] == sorted(i["at"] for i in items)
    assert items[2]["decisions"][0]["channel"] == "push" and "reason" in items[2]["decisions"][0]


def test_stats_parameters(local: LocalServer) -> None:
    _orders(local, 2)
    stats = local.client.get("/v1/journeys/order-updates/stats", params={"version": 1}).json()
    assert (stats["entered"], stats["instances"]["completed"], stats["version"]) == (2, 2, 1)
    assert stats["steps"]["pause"]["left"] == {"shipped": 2}
    later = local.client.get("/v1/journeys/order-updates/stats", params={"since": "2026-01-05T11:00:00Z"}).json()
    assert (later["entered"], later["since"]) == (0, "2026-01-05T11:00:00Z")
    hour = local.client.get("/v1/journeys/order-updates/stats",
                            params={"since": T0.isoformat(), "until": "2026-01-05T10:30:00Z"}).json()
    assert (hour["entered"], hour["until"]) == (2, "2026-01-05T11:00:00Z")
    assert local.client.get("/v1/journeys/nope/stats").status_code == 404
    missing = local.client.get("/v1/journeys/order-updates/stats", params={"version": 9})
    assert missing.status_code == 404 and "has 1 version" in missing.text, missing.text  # a version it lacks
    for params, field in (({"version": "x"}, "version"), ({"since": "soon"}, "since")):
        answer = local.client.get("/v1/journeys/order-updates/stats", params=params)
        assert answer.status_code == 422 and field in answer.text, answer.text
