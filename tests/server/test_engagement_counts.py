"""Each person's engagement per channel, as `journey serve` keeps it: after a served run, the counts
in the profile (`GET /v1/profiles/{id}`) match the receipts, opens, clicks and replies that were
posted or followed, each message counted once per kind however often its feedback comes; they
survive a restart, the next strategy auto decision reads them, and two workers on one PostgreSQL
database answer alike.

The feedback goes in as users' systems send it: Twilio's signed status callbacks and inbound
messages (`/v1/webhooks/twilio/...`), app events (`push.opened`, `email.clicked`) posted to
`/v1/events`, and a person's tap on the SMS's tracked link, followed by the test's own HTTP client
(`GET /l/{code}`, no redirect followed: a 302 to the statement's URL, which records `sms.clicked`
pinned to the message). A link preview's fetch of it is a machine's, and counts nothing.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from channels import load_policy
from channels.providers.local import FileProvider
from channels.providers.twilio import TwilioProvider
from engine.state import partition_of
from tests.providers.provider_fakes import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio
from tests.server.conftest import (
    API_KEYS,
    LocalServer,
    ServerProcess,
    StartLocal,
    StartServer,
    post_events,
    put_profile,
    twilio_post,
    wait_for_sweeps,
    wait_until,
)

STATEMENT = """\
id: statement
category: transactional
trigger: {event: statement.ready}
steps:
  - {id: tell, type: send, message: statement, channels: [push, email, sms], strategy: all}
messages:
  statement:
    push: {title: "Statement", body: "Your statement is ready"}
    email: {subject: "Statement", body: "Your statement is ready"}
    sms: {text: "Your statement is ready: https://bank.example.com/statements/2026-01"}
"""
STATEMENT_URL = "https://bank.example.com/statements/2026-01"
LINKS = "https://go.example.com"  # the policy's links.base_url: where the public reaches `journey serve`
AGENTS = {"person": ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
                     "Gecko) Version/17.4 Mobile/15E148 Safari/604.1"),
          "preview": ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_1) AppleWebKit/601.2.4 (KHTML, like Gecko) "
                      "Version/9.0.1 Safari/601.2.4 facebookexternalhit/1.1 Facebot Twitterbot/1.0")}  # iMessage's
NUDGE = """\
id: nudge
category: transactional
trigger: {event: nudge.due}
steps:
  - {id: remind, type: send, message: reminder, channels: [push, sms], strategy: auto, urgency: high}
messages:
  reminder:
    push: {title: "Reminder", body: "Your statement waits"}
    sms: {text: "Your statement waits"}
"""
SENDER = "+15005550006"
PEOPLE = {"ann": ("+14155550101", "America/Chicago"), "bob": ("+14155550102", "UTC"),
          "cid": ("+14155550103", "Europe/Paris")}
EVENING = 15 * 3600 + 600  # seconds from the run's start (10:00 UTC) to 01:10 UTC: 19:10 in Chicago, 02:10 in Paris


@dataclass(frozen=True)
class Engage:
    """One piece of feedback as a user's systems send it: `how` is `twilio-status` (Twilio's
    `MessageStatus`, by the SMS's sid), `twilio-reply` (an inbound SMS from the person's phone),
    `event` (`what` is its type, pinned to the user's message on that channel, or left to the
    latest one when `pinned` is false) or `link` (the SMS's tracked link followed, `what` saying
    by whom: a `person`'s phone or a `preview`)."""

    user: str
    how: str
    what: str
    pinned: bool = True


FEEDBACK = [
    Engage("ann", "twilio-status", "delivered"),
    Engage("bob", "twilio-status", "undelivered"),  # sms.failed
    Engage("ann", "twilio-status", "delivered"),  # Twilio's retry of the same callback: a duplicate
    Engage("ann", "event", "push.delivered"),
    Engage("bob", "event", "push.delivered"),
    Engage("cid", "link", "preview"),  # iMessage's preview as the SMS arrives (11:00 in Paris): no engagement
]
IN_THE_EVENING = [  # 19:10 in Chicago (ann), 01:10 UTC (bob)
    Engage("ann", "event", "push.opened", pinned=False),
    Engage("ann", "event", "push.opened"),  # the same push opened again: engaged once
    Engage("bob", "event", "email.opened"),
    Engage("bob", "event", "email.clicked"),  # the same email: engaged once
    Engage("ann", "twilio-reply", "Thanks, got it"),  # a reply to the SMS (no keyword): engagement with it
    Engage("cid", "link", "person"),  # cid taps the SMS's link at 02:10 in Paris
    Engage("cid", "link", "person"),  # and again: the same SMS, engaged once
]
EXPECTED = {  # what the feedback above makes of one statement per person on push, email and sms
    "ann": {"push": (1, 1, 0, 1, {"19": 1}), "email": (1, 0, 0, 0, {}), "sms": (1, 1, 0, 1, {"19": 1})},
    "bob": {"push": (1, 1, 0, 0, {}), "email": (1, 0, 0, 1, {"1": 1}), "sms": (1, 0, 1, 0, {})},
    "cid": {"push": (1, 0, 0, 0, {}), "email": (1, 0, 0, 0, {}), "sms": (1, 0, 0, 1, {"2": 1})},
}


def counts(profile: dict[str, Any]) -> dict[str, tuple[int, int, int, int, dict[str, int]]]:
    """sent, delivered, failed, engaged and engagements by local hour, per channel."""
    return {channel: (c["sent"], c["delivered"], c["failed"], c["engaged"], c["by_hour"])
            for channel, c in profile["engagement"].items()}


def message_of(client: httpx.Client, user: str, channel: str) -> dict[str, Any]:
    reply = client.get("/v1/messages", params={"user_id": user})
    assert reply.status_code == 200, reply.text
    return next(m for m in reply.json()["messages"] if m["channel"] == channel)


# --- one server on SQLite or PostgreSQL, on a virtual clock, with Twilio's protocol ---------------------------------


def serve(start_local: StartLocal, database: str, twilio: FakeTwilio, tmp_path: Path,
          local: LocalServer | None = None) -> LocalServer:
    sms = TwilioProvider(ACCOUNT_SID, AUTH_TOKEN, SENDER, api_base_url=twilio.url, timeout=5)
    policy = tmp_path / "policy.yaml"
    policy.write_text(f"links: {{base_url: '{LINKS}'}}\n", encoding="utf-8")
    return start_local(db=database, providers={"sms": [sms], "*": [FileProvider(tmp_path / "outbox.jsonl")]},
                       clock=local.clock if local else None, policy=load_policy(policy))


def follow_link(local: LocalServer, user: str, agent: str) -> None:
    """Follow the short link in the user's SMS as a phone (or a preview) would, redirects not
    followed: a 302 to the statement; the click is processed as the inbox sweep would."""
    sms_text = message_of(local.client, user, "sms")["content"]["text"]
    [code] = re.findall(rf"{re.escape(LINKS)}/l/([A-Za-z0-9]+)", sms_text)
    with httpx.Client(base_url=local.base_url, follow_redirects=False, timeout=10) as public:
        reply = public.get(f"/l/{code}", headers={"User-Agent": AGENTS[agent]})
    assert (reply.status_code, reply.headers.get("location")) == (302, STATEMENT_URL), reply.text
    local.settle()


def engage(local: LocalServer, feedback: Engage) -> None:
    """Post one piece of feedback the way it comes in."""
    phone = PEOPLE[feedback.user][0]
    if feedback.how == "link":
        follow_link(local, feedback.user, feedback.what)
        return
    if feedback.how == "twilio-status":
        sid = message_of(local.client, feedback.user, "sms")["provider_id"]
        reply = twilio_post(local, "status", {"MessageSid": sid, "MessageStatus": feedback.what, "To": phone})
    elif feedback.how == "twilio-reply":
        reply = twilio_post(local, "inbound", {"From": phone, "To": SENDER, "Body": feedback.what,
                                               "MessageSid": f"SMin{len(feedback.what)}{feedback.user}"})
    else:
        channel = feedback.what.partition(".")[0]
        properties = {"message_id": message_of(local.client, feedback.user, channel)["message_id"]} \
            if feedback.pinned else {}
        reply = post_events(local, {"type": feedback.what, "user_id": feedback.user, "properties": properties})
    assert reply.status_code in (200, 202), reply.text


def profile_of(local: LocalServer | ServerProcess, user: str, client: httpx.Client | None = None) -> dict[str, Any]:
    reply = (client or local.client).get(f"/v1/profiles/{user}")
    assert reply.status_code == 200, reply.text
    result: dict[str, Any] = reply.json()
    return result


def test_the_counts_match_the_feedback_posted_survive_a_restart_and_feed_the_next_choice(
        start_local: StartLocal, journeys_dir: Path, durable_db: str, twilio: FakeTwilio, tmp_path: Path) -> None:
    for name, source in (("statement.yaml", STATEMENT), ("nudge.yaml", NUDGE)):
        (journeys_dir / name).write_text(source, encoding="utf-8")
    local = serve(start_local, durable_db, twilio, tmp_path)
    for user, (phone, zone) in PEOPLE.items():
        put_profile(local, user, "sms:transactional", phone=phone, timezone=zone, email=f"{user}@example.com")
        assert post_events(local, {"type": "statement.ready", "user_id": user}).status_code == 202
    local.settle()
    assert {u: {m["channel"]: m["dispatch"] for m in local.messages(u)} for u in PEOPLE} == {
        u: {"push": "sent", "email": "sent", "sms": "sent"} for u in PEOPLE}
    for feedback in FEEDBACK:
        engage(local, feedback)
    local.advance(EVENING)
    for feedback in IN_THE_EVENING:
        engage(local, feedback)

    assert {u: counts(profile_of(local, u)) for u in PEOPLE} == EXPECTED
    assert profile_of(local, "ann")["engagement"]["push"]["last_engaged_at"] == "2026-01-06T01:10:00Z"

    local.stop()
    again = serve(start_local, durable_db, twilio, tmp_path, local)
    assert {u: counts(profile_of(again, u)) for u in PEOPLE} == EXPECTED
    follow_link(again, "cid", "person")  # the link still leads there; the SMS was engaged with already
    assert {u: counts(profile_of(again, u)) for u in PEOPLE} == EXPECTED
    assert post_events(again, {"type": "nudge.due", "user_id": "ann"}).status_code == 202
    nudge = message_of(again.client, "ann", "sms")  # auto, urgency high: the most likely first
    assert nudge["message"] == "reminder" and nudge["choice"]["order"] == ["sms", "push"]
    reach = {d["channel"]: d["reach"] for d in nudge["decisions"]}
    sent = 0.5 ** (EVENING / (30 * 86400))  # the statement went 15 h before the engagement: it weighs a bit less
    assert reach == {"push": pytest.approx((4 * 0.3 + 1) / (4 + sent), abs=0.0001),  # opened 1 of 1, prior as 4
                     "sms": pytest.approx((4 * 0.9 + 1) / (4 + sent), abs=0.0001)}  # replied to 1 of 1
    assert nudge["choice"]["reason"] == "sms first: reach 0.92 at 0.0083 beats push 0.44 at 0.0001 for urgency high"
    again.settle()
    assert counts(profile_of(again, "ann"))["sms"][0] == 2  # the nudge counts as sent


# --- two `journey serve` workers on one PostgreSQL database ----------------------------------------------------------


def two_workers(start_server: StartServer, url: str) -> tuple[ServerProcess, ServerProcess]:
    first = start_server(db=url, name="worker-1")
    second = start_server(db=url, name="worker-2")
    return first, second


def partition_owners(url: str) -> dict[int, str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT part, owner FROM partition_leases WHERE owner IS NOT NULL "
                                     "AND expires_at > now()"))
            return {int(part): str(owner) for part, owner in rows}
    finally:
        engine.dispose()


def every_answer(servers: tuple[ServerProcess, ...], read: Callable[[httpx.Client], Any]) -> list[Any]:
    """`read` on each server, three times each, every request on a connection of its own."""
    answers = []
    for server in servers:
        for _ in range(3):
            with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {API_KEYS[0]}"},
                              timeout=30) as client:
                answers.append(read(client))
    return answers


def test_two_workers_on_postgresql_count_alike_and_answer_alike(
        postgres_fresh_db_url: str, start_server: StartServer, journeys_dir: Path) -> None:
    """The statement goes out from whichever worker owns each user; the feedback is posted to the
    other one (which queues it for the owner); every profile read, from either worker, shows the
    same counts, and they are what was posted."""
    (journeys_dir / "statement.yaml").write_text(STATEMENT.replace("[push, email, sms]", "[push, email]"),
                                                 encoding="utf-8")
    first, second = two_workers(start_server, postgres_fresh_db_url)
    owners = wait_until(lambda: (lambda o: o if sorted(Counter(o.values()).values()) == [128, 128] else None)(
        partition_owners(postgres_fresh_db_url)), timeout=30, what="two workers with 128 partitions each")
    users = [f"w{n}" for n in range(12)]
    assert len({owners[partition_of(u)] for u in users}) == 2  # each worker owns some of them
    for user in users:
        put_profile(first, user, email=f"{user}@example.com")
        assert post_events(first, {"type": "statement.ready", "user_id": user}).status_code == 202
    wait_until(lambda: all(len(first.messages(u)) == 2 for u in users), timeout=30, what="two messages each")
    expected = {}
    for n, user in enumerate(users):  # user n: a push opened when n is even, an email clicked twice when n % 3 == 0
        push = message_of(first.client, user, "push")["message_id"]
        email = message_of(first.client, user, "email")["message_id"]
        events = [{"type": "push.delivered", "user_id": user, "properties": {"message_id": push}}]
        events += [{"type": "push.opened", "user_id": user, "properties": {"message_id": push}}] * (n % 2 == 0)
        events += [{"type": "email.clicked", "user_id": user, "properties": {"message_id": email}}] * (2 * (n % 3 == 0))
        assert post_events(second, {"events": events}).status_code == 202
        expected[user] = {"push": (1, 1, 0, int(n % 2 == 0)), "email": (1, 0, 0, int(n % 3 == 0))}

    def seen(client: httpx.Client) -> dict[str, Any]:
        return {u: {ch: c[:4] for ch, c in counts(profile_of(first, u, client)).items()} for u in users}

    wait_until(lambda: seen(first.client) == expected, timeout=30, what="every user's feedback counted")
    assert every_answer((first, second), seen) == [expected] * 6
    wait_for_sweeps("inbox", on=[first, second])  # anything counted twice would show by now
    assert every_answer((first, second), seen) == [expected] * 6


# --- history brought from another tool ------------------------------------------------------------------------------


def test_engagement_is_importable_and_an_update_that_says_nothing_of_it_keeps_it(local: LocalServer) -> None:
    history = {"push": {"sent": 20, "engaged": 18, "by_hour": {"19": 18}}, "sms": {"sent": 10, "engaged": 1}}
    put_profile(local, "ann", engagement=history)
    assert counts(profile_of(local, "ann")) == {"push": (20, 0, 0, 18, {"19": 18}), "sms": (10, 0, 0, 1, {})}
    put_profile(local, "ann", email="ann@example.com")  # a CRM sync without the counts
    patch = local.client.patch("/v1/profiles/ann", json={"engagement": {"sms": {"sent": 12, "engaged": 2}}})
    assert patch.status_code == 200, patch.text
    assert counts(profile_of(local, "ann")) == {"push": (20, 0, 0, 18, {"19": 18}), "sms": (12, 0, 0, 2, {})}
    recent = {"sent": 1.5, "engaged": 1.5, "as_of": "2026-01-01T00:00:00Z"}  # as another tool decayed them
    bulk = local.client.post("/v1/profiles", json={"profiles": [
        {"user_id": "bob", "engagement": {"email": {"sent": 5, "engaged": 5, "recent": recent}}},
        {"user_id": "cid", "engagement": {"email": {"sent": -1}}},
        {"user_id": "dan", "engagement": {"fax": {"sent": 1}}},
        {"user_id": "eve", "engagement": {"push": {"by_hour": {"24": 1}}}}]})
    assert bulk.status_code == 200, bulk.text
    assert bulk.json()["upserted"] == 1
    assert [(r["index"], r["error"].split(":")[0]) for r in bulk.json()["rejected"]] == [
        (1, "engagement.email.sent"), (2, "engagement.fax"), (3, "engagement.push.by_hour")]
    assert profile_of(local, "bob")["engagement"]["email"]["recent"] == recent
    refused = local.client.put("/v1/profiles/cid", json={"engagement": {"push": {"engaged": "many"}}})
    assert refused.status_code == 422 and "engagement.push.engaged" in refused.json()["detail"]
