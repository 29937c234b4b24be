"""Send rates (`channels.<channel>.rate_per_second`): the dispatcher spreads a channel's sends to
respect it, the outbox holds the rest, and nothing is lost or sent twice.

The real `Server` on a SQLite file (and PostgreSQL once) with a virtual clock: 500 users enter a
journey that texts them and pushes to them at once; the test moves the clock and counts what
each provider received.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from channels import Policy, load_policy
from channels.testing import RecordingProvider
from engine.host.rates import Bucket, Rates
from engine.ports import OutboxItem
from tests.server.conftest import GRANTED_AT, LocalServer, StartLocal, metric, post_events

SALE = """\
id: flash-sale
category: transactional
trigger: {event: sale.started}
steps:
  - {id: text, type: send, message: sale, channels: [sms]}
  - {id: ping, type: send, message: ping, channels: [push]}
messages:
  sale:
    sms: {text: "The sale is on"}
  ping:
    push: {title: "Sale", body: "The sale is on"}
"""

USERS = 500


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'journey.db'}"


def policy(tmp_path: Path, text: str) -> Policy:
    path = tmp_path / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    return load_policy(path)


def start_sale(start_local: StartLocal, journeys_dir: Path, db: str, chosen: Policy,
               ) -> tuple[LocalServer, RecordingProvider, RecordingProvider]:
    (journeys_dir / "flash-sale.yaml").write_text(SALE, encoding="utf-8")
    sms, push = RecordingProvider("sms-vendor"), RecordingProvider("push-vendor")
    return start_local(db=db, providers={"sms": [sms], "push": [push]}, policy=chosen), sms, push


def phone(n: int) -> str:
    return f"+1415555{n:04d}"


def enter_everyone(local: LocalServer) -> None:
    """USERS profiles with a phone, a push token and SMS consent, then one event each: an SMS and
    a push per user, queued in one go."""
    consent = {"channel": "sms", "category": "transactional", "granted": True, "source": "test", "at": GRANTED_AT}
    profiles = [{"user_id": f"u{n}", "phone": phone(n), "push_token": f"tok-{n}", "timezone": "UTC",
                 "consents": [consent]} for n in range(USERS)]
    response = local.client.post("/v1/profiles", json={"profiles": profiles})
    assert response.status_code == 200 and response.json()["upserted"] == USERS, response.text
    events = [{"type": "sale.started", "user_id": f"u{n}"} for n in range(USERS)]
    response = post_events(local, {"events": events})
    assert response.status_code == 202 and response.json()["accepted"] == USERS, response.text


def queued(local: LocalServer) -> dict[str, float | None]:
    """`journey_outbox_queued` of sms and push: the outbox's backlog."""
    return {channel: metric(local, "journey_outbox_queued", channel=channel) for channel in ("sms", "push")}


def assert_each_texted_once(local: LocalServer, sms: RecordingProvider) -> None:
    assert sorted(m.address or "" for m in sms.sent) == sorted(phone(n) for n in range(USERS))
    assert len(set(sms.message_ids)) == USERS
    rows = [row for n in range(USERS) for row in local.server.store.views.messages_for_user(f"u{n}")
            if row["channel"] == "sms"]
    assert [(row["dispatch"], row["status"]) for row in rows] == [("sent", "sent")] * USERS


@pytest.mark.parametrize("db", ["sqlite", "postgresql"])
def test_500_sms_at_50_a_second_take_10_seconds_and_none_is_lost(
        start_local: StartLocal, journeys_dir: Path, tmp_path: Path, request: pytest.FixtureRequest,
        db: str) -> None:
    url = request.getfixturevalue("sqlite_url" if db == "sqlite" else "postgres_fresh_db_url")
    local, sms, push = start_sale(start_local, journeys_dir, url,
                                  policy(tmp_path, "channels:\n  sms: {rate_per_second: 50}\n"))
    enter_everyone(local)
    assert queued(local) == {"sms": USERS, "push": USERS}
    local.settle()
    assert len(push.sent) == USERS, "push waited for the SMS rate"
    assert queued(local) == {"sms": USERS, "push": 0}
    elapsed = 0.0
    for at in (0.5, 1, 2.5, 5, 7.5, 9.98):
        local.advance(at - elapsed)
        elapsed = at
        assert 50 * at - 1 <= len(sms.sent) <= 50 * at, f"{len(sms.sent)} SMS after {at} s"
        assert queued(local)["sms"] == USERS - len(sms.sent)
    assert len(sms.sent) < USERS
    local.advance(10 - elapsed)
    assert len(sms.sent) == USERS and queued(local) == {"sms": 0, "push": 0}
    local.advance(120)  # nothing more: nobody is texted twice
    assert_each_texted_once(local, sms)
    assert len(push.sent) == USERS and local.server.dispatcher.outcomes[("sms", "sent")] == USERS


def test_without_a_rate_every_sms_leaves_in_the_first_drain(start_local: StartLocal, journeys_dir: Path,
                                                            sqlite_url: str) -> None:
    local, sms, push = start_sale(start_local, journeys_dir, sqlite_url, load_policy())
    enter_everyone(local)
    local.settle()
    assert (len(sms.sent), len(push.sent)) == (USERS, USERS)
    assert queued(local) == {"sms": 0, "push": 0}
    assert_each_texted_once(local, sms)


def test_a_restart_sends_the_held_back_messages_each_once(start_local: StartLocal, journeys_dir: Path,
                                                          tmp_path: Path, sqlite_url: str) -> None:
    """What waits for its turn is `pending` in the outbox, not leased: a server started on the same
    file after the first stopped sends the rest, at the rate, and nobody twice."""
    chosen = policy(tmp_path, "channels:\n  sms: {rate_per_second: 50}\n")
    first, sms, _ = start_sale(start_local, journeys_dir, sqlite_url, chosen)
    enter_everyone(first)
    first.advance(4)
    assert len(sms.sent) == 200
    states = {row["dispatch"] for n in range(USERS) for row in first.server.store.views.messages_for_user(f"u{n}")}
    assert states == {"sent", "pending"}
    first.stop()

    after = RecordingProvider("sms-after")
    second = start_local(db=sqlite_url, providers={"sms": [after], "push": [RecordingProvider()]}, policy=chosen,
                         clock=first.clock)
    second.advance(3)
    assert len(after.sent) == 150  # the new server's bucket starts empty too
    second.advance(10)
    delivered = sms.message_ids + after.message_ids
    assert len(delivered) == len(set(delivered)) == USERS


@pytest.mark.parametrize(("db", "after_rate", "seconds"), [("sqlite", None, 0.0), ("sqlite", 250, 2.0),
                                                          ("postgresql", None, 0.0)])
def test_a_backlog_held_for_a_rate_follows_the_rate_in_force_after_a_restart(
        start_local: StartLocal, journeys_dir: Path, tmp_path: Path, request: pytest.FixtureRequest, db: str,
        after_rate: int | None, seconds: float) -> None:
    """500 SMS at 10 a second: after 4 s, 460 wait, booked over the next 46 s. The server restarts
    with the rate removed (all of them leave at once) or raised to 250 a second (in 2 s):
    the backlog goes at the rate in force, not at its old pace, and nobody is texted twice."""
    url = request.getfixturevalue("sqlite_url" if db == "sqlite" else "postgres_fresh_db_url")
    ten = policy(tmp_path, "channels:\n  sms: {rate_per_second: 10}\n")
    first, sms, _ = start_sale(start_local, journeys_dir, url, ten)
    enter_everyone(first)
    first.advance(4)
    assert len(sms.sent) == 40
    first.stop()

    after = RecordingProvider("sms-after")
    chosen = policy(tmp_path, f"channels:\n  sms: {{rate_per_second: {after_rate}}}\n") if after_rate \
        else load_policy()
    second = start_local(db=url, providers={"sms": [after], "push": [RecordingProvider()]}, policy=chosen,
                         clock=first.clock)
    second.advance(seconds)
    assert len(after.sent) == USERS - 40, f"{len(after.sent)} of {USERS - 40} after {seconds} s"
    delivered = sms.message_ids + after.message_ids
    assert len(delivered) == len(set(delivered)) == USERS


T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


def test_a_bucket_starts_empty_and_holds_one_token_after_a_quiet_spell() -> None:
    """One token at most: right after a quiet minute one message goes, then one every 20 ms, so no
    stretch of time ever sees more than the rate (a second's worth held would let 100 go in a second)."""
    bucket = Bucket.empty(50, T0)
    assert not bucket.take(T0) and bucket.next_at == T0 + timedelta(milliseconds=20)
    later = T0 + timedelta(minutes=1)
    assert sum(bucket.take(later) for _ in range(80)) == 1
    assert [bucket.book(f"m{n}", later) for n in (1, 2, 3)] == [later + timedelta(milliseconds=20 * n)
                                                                for n in (1, 2, 3)]
    assert not bucket.take(later + timedelta(milliseconds=20))  # that token is booked
    assert bucket.take(later + timedelta(milliseconds=80)) and not bucket.take(later + timedelta(milliseconds=80))


def item(message_id: str) -> OutboxItem:
    return OutboxItem(message_id, "u1", "sms", "transactional", {"text": "hi"}, 0, "+14155550100")


def test_a_message_that_booked_a_token_goes_when_it_comes_back_even_late() -> None:
    """Three messages held back book the next three tokens; a sweep that comes 10 ms after the third
    one's sends the three, in order, rather than one and the others to the back of the queue; a
    message never booked takes the next free token; one that comes back early waits for its own."""
    rates = Rates({"sms": 50.0}, T0)
    going, held = rates.ration([item("a"), item("b"), item("c")], T0)
    assert going == [] and [at for _, at in held] == [T0 + timedelta(milliseconds=20 * n) for n in (1, 2, 3)]
    late = T0 + timedelta(milliseconds=70)
    going, held = rates.ration([item("a"), item("b"), item("c"), item("d")], late)
    assert [i.message_id for i in going] == ["a", "b", "c"]
    assert [(i.message_id, at) for i, at in held] == [("d", T0 + timedelta(milliseconds=80))]
    assert rates.ration([item("d")], late)[1] == held  # early: its own token, no second one booked
    assert [i.message_id for i in rates.ration([item("d")], T0 + timedelta(milliseconds=80))[0]] == ["d"]


@pytest.mark.parametrize(("rate", "interval"), [(0.5, timedelta(seconds=2)), (3, timedelta(microseconds=333_334)),
                                                (4500 / 60, timedelta(microseconds=13_334))])
def test_a_rate_is_never_rounded_up(rate: float, interval: timedelta) -> None:
    assert Bucket.empty(rate, T0).interval == interval


def test_workers_sharing_a_database_each_send_their_share_of_the_rate() -> None:
    """Two live workers at 50 SMS/s each send 25 a second, so together no faster than the policy;
    back to one worker, the whole rate again."""
    rates = Rates({"sms": 50.0}, T0)
    rates.share(2, T0)
    later = T0 + timedelta(minutes=1)
    assert sum(rates.buckets["sms"].take(later + timedelta(milliseconds=n)) for n in range(1000)) == 25
    rates.share(1, later)
    assert rates.buckets["sms"].interval == timedelta(milliseconds=20)


def test_a_rate_shared_anew_books_what_it_holds_back_at_the_new_pace() -> None:
    """A worker joins: each sends half the rate, and what is held back from then on is booked at
    that pace one new interval after the latest send, not behind what was booked at the old one
    (the server has those booked again too)."""
    rates = Rates({"sms": 50.0}, T0)
    later = T0 + timedelta(minutes=1)
    bucket = rates.buckets["sms"]
    while bucket.take(later):
        pass
    booked = [bucket.book(f"m{n}", later) for n in range(100)]
    assert booked[-1] == later + timedelta(seconds=2)  # 100 booked at 50/s
    assert rates.share(2, later) and not rates.share(2, later)
    assert bucket.booked("m0", later + timedelta(milliseconds=20)) is None  # the old booking is gone
    assert bucket.book("m0", later) == later + timedelta(milliseconds=40)  # the next token at 25/s
