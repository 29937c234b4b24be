"""The outbox dispatcher without HTTP: a MemoryStore or a SqlStore on a SQLite file, a virtual
clock, test providers.

`Server` is built but never started: the tests call ingest / sweep_timers / drain_outbox
themselves while moving the clock, so every retry time is exact. The restart tests run on
SQLite only: what a restart finds there is what was committed to the file.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from channels import Profile, load_policy
from channels.providers import FileProvider, InDoubtDeliveryError, OutboundMessage, Provider
from channels.testing import FlakyProvider, RecordingProvider
from engine.clock import VirtualClock
from engine.compiler import CompiledJourney, load_text
from engine.errors import StoreError, TemporaryStoreError
from engine.events import parse_event
from engine.host.attempts import BACKOFF, MAX_ATTEMPTS
from engine.host.dispatcher import Dispatcher
from engine.host.server import Server
from engine.ports import HostStore
from engine.state import Fence
from engine.stores.memory import MemoryStore
from engine.stores.sql import SqlStore

T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)

NOTICE = """\
id: notice
category: transactional
trigger: {event: notice.requested}
steps:
  - {id: tell, type: send, message: notice, channels: [push]}
messages:
  notice:
    push: {title: "Notice", body: "Your parcel is at the door"}
"""

ALERT = """\
id: alert
category: transactional
trigger: {event: alert.raised}
steps:
  - id: notify
    type: send
    message: alert
    channels: [push, sms]
    strategy: escalate
    escalate_after: 1h
messages:
  alert:
    push: {title: "Alert", body: "Unusual sign-in"}
    sms: {text: "Unusual sign-in on your account"}
"""

MakeServer = Callable[..., Server]


def utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@pytest.fixture
def journeys() -> list[CompiledJourney]:
    return [load_text(NOTICE, "notice.yaml"), load_text(ALERT, "alert.yaml")]


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(T0)


@pytest.fixture(params=["memory", "sqlite"])
def store_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest.fixture
def make_server(tmp_path: Path, journeys: list[CompiledJourney], clock: VirtualClock,
                store_kind: str) -> Iterator[MakeServer]:
    """Servers on one store (a second call is a restart: the same MemoryStore, or the same SQLite
    file); profile u1 has a token, a phone and SMS opt-in."""
    made: list[Server] = []
    url = f"sqlite:///{tmp_path / 'journey.db'}"
    memory = MemoryStore()

    def make(providers: Mapping[str, Sequence[Provider]]) -> Server:
        store: HostStore = memory if store_kind == "memory" else SqlStore(url)
        server = Server(store, journeys, load_policy(), providers=providers, clock=clock)
        made.append(server)
        if len(made) == 1:
            profile = Profile.from_dict({
                "user_id": "u1", "push_token": "tok-u1", "phone": "+14155550100", "timezone": "UTC",
                "consents": [{"channel": "sms", "category": "transactional", "granted": True, "source": "test",
                              "at": "2026-01-01T00:00:00Z"}]})
            with server.lock, server.store.transaction() as tx:
                tx.put_profile(profile)
        return server

    yield make
    for server in made:
        server.stop()


def ingest(server: Server, kind: str, user_id: str = "u1") -> None:
    [result] = server.ingest([parse_event({"type": kind, "user_id": user_id}, server.clock.now())])
    assert not result.duplicate


def rows(server: Server, user_id: str = "u1") -> dict[str, dict[str, Any]]:
    """The user's messages by channel (one per channel in these tests)."""
    found: dict[str, dict[str, Any]] = {}
    for row in server.store.views.messages_for_user(user_id):
        assert row["channel"] not in found, f"two {row['channel']} messages: {row}"
        found[row["channel"]] = row
    return found


def notices_for(server: Server, users: list[str]) -> list[str]:
    """Each user gets a profile with a push token and a `notice.requested` event: a push to send."""
    with server.lock, server.store.transaction() as tx:
        for user in users:
            tx.put_profile(Profile(user, push_token=f"tok-{user}", timezone="UTC"))
    server.ingest([parse_event({"type": "notice.requested", "user_id": u}, server.clock.now()) for u in users])
    return users


def drain_at(server: Server, clock: VirtualClock, when: datetime) -> int:
    clock.advance_to(when)
    return server.drain_outbox()


def test_a_provider_that_times_out_twice_then_succeeds_delivers_exactly_once(
        make_server: MakeServer, clock: VirtualClock) -> None:
    push = FlakyProvider("push-vendor", failures=2)
    server = make_server({"push": [push]})
    ingest(server, "notice.requested")

    first, second, third = T0, T0 + BACKOFF[0], T0 + BACKOFF[0] + BACKOFF[1]
    assert drain_at(server, clock, first) == 1
    row = rows(server)["push"]
    assert (row["dispatch"], row["status"], row["attempts"]) == ("pending", "queued", 1)
    assert "timed out" in row["error"]

    assert drain_at(server, clock, second - timedelta(milliseconds=1)) == 0, "retried before the backoff"
    assert drain_at(server, clock, second) == 1
    assert (push.calls, rows(server)["push"]["attempts"]) == (2, 2)
    assert drain_at(server, clock, third - timedelta(milliseconds=1)) == 0, "retried before the backoff"
    assert drain_at(server, clock, third) == 1

    row = rows(server)["push"]
    assert (row["dispatch"], row["status"], row["attempts"], row["provider"]) == ("sent", "sent", 3, "push-vendor")
    assert row["provider_id"] == push.ids[0]
    assert row["error"] is None
    assert utc(row["status_at"]) == third
    assert push.calls == 3
    assert push.message_ids == [row["message_id"]]
    assert push.sent[0].address == "tok-u1"
    assert push.sent[0].content == {"title": "Notice", "body": "Your parcel is at the door"}

    assert drain_at(server, clock, T0 + timedelta(days=1)) == 0
    assert len(push.sent) == 1 and server.dispatcher.sent == 1


def test_a_provider_that_is_down_fails_over_to_the_next(make_server: MakeServer, clock: VirtualClock) -> None:
    down = FlakyProvider("primary", failures=10**9)
    backup = RecordingProvider("backup")
    server = make_server({"push": [down, backup], "*": [RecordingProvider("elsewhere")]})
    ingest(server, "notice.requested")
    assert drain_at(server, clock, T0) == 1

    row = rows(server)["push"]
    assert (row["dispatch"], row["attempts"], row["provider"]) == ("sent", 1, "backup")
    assert backup.message_ids == [row["message_id"]]
    assert (down.calls, down.sent) == (1, [])

    clock.advance_to(T0 + timedelta(minutes=1))
    ingest(server, "notice.requested")
    assert server.drain_outbox() == 1
    assert (down.calls, len(backup.sent)) == (2, 2)


def test_a_permanent_error_fails_the_message_and_the_escalation_moves_on_at_once(
        make_server: MakeServer, clock: VirtualClock) -> None:
    push = FlakyProvider("push-vendor", failures=1, permanent=True)
    sms = RecordingProvider("sms-vendor")
    server = make_server({"push": [push], "sms": [sms]})
    ingest(server, "alert.raised")

    assert server.drain_outbox() == 1  # the push is rejected: push.failed comes back in as an event
    failed = rows(server)["push"]
    assert (failed["dispatch"], failed["status"], failed["attempts"]) == ("failed", "failed", 1)
    assert "rejected" in failed["error"]
    escalated = rows(server)["sms"]
    assert utc(escalated["at"]) == T0, "the SMS waited for escalate_after instead of going at once"

    assert server.drain_outbox() == 1
    assert sms.message_ids == [escalated["message_id"]]
    assert sms.sent[0].address == "+14155550100"
    assert rows(server)["sms"]["dispatch"] == "sent"

    # nothing else happens later: the push is never retried, the SMS never sent twice
    for hours in (1, 2, 3):
        clock.advance_to(T0 + timedelta(hours=hours))
        server.sweep_timers()
        server.drain_outbox()
    assert (push.calls, len(sms.sent)) == (1, 1)
    [instance] = server.store.views.instances_for_user("u1")
    assert instance.status == "completed"


def test_running_out_of_attempts_fails_the_message_and_escalates(make_server: MakeServer,
                                                                  clock: VirtualClock) -> None:
    push = FlakyProvider("push-vendor", failures=10**9)
    sms = RecordingProvider("sms-vendor")
    server = make_server({"push": [push], "sms": [sms]})
    ingest(server, "alert.raised")

    when = T0
    for attempt in range(1, MAX_ATTEMPTS + 1):
        assert drain_at(server, clock, when) >= 1
        assert push.calls == attempt
        if attempt < MAX_ATTEMPTS:
            when += BACKOFF[attempt - 1]
    assert when < T0 + timedelta(hours=1)
    row = rows(server)["push"]
    assert (row["dispatch"], row["attempts"]) == ("failed", MAX_ATTEMPTS)
    assert row["error"].startswith("gave up")
    assert utc(rows(server)["sms"]["at"]) == when
    server.drain_outbox()
    assert len(sms.sent) == 1


class InDoubtOnce(RecordingProvider):
    """Takes the first message without a readable answer, then answers as usual."""

    def __init__(self, name: str, idempotent: bool) -> None:
        super().__init__(name)
        self.idempotent = idempotent

    def send(self, message: OutboundMessage) -> str:
        provider_id = super().send(message)
        if self.calls == 1:
            raise InDoubtDeliveryError(f"{self.name}: no answer within 10 s of sending the request")
        return provider_id


@pytest.mark.parametrize("idempotent", [True, False], ids=["idempotency-keys", "no-keys"])
def test_a_send_in_doubt_is_retried_only_where_the_provider_drops_duplicates(
        make_server: MakeServer, clock: VirtualClock, idempotent: bool) -> None:
    """No answer once the request went out: with idempotency keys the message is retried (the
    provider drops the copy it already has), without them it is `unknown` and never sent again,
    and the channel's next provider is not tried either way."""
    doubtful, backup = InDoubtOnce("keys" if idempotent else "no-keys", idempotent), RecordingProvider("backup")
    server = make_server({"push": [doubtful, backup]} if not idempotent else {"push": [doubtful]})
    ingest(server, "notice.requested")
    assert drain_at(server, clock, T0) == 1
    for when in (T0 + BACKOFF[0], T0 + timedelta(hours=1)):
        drain_at(server, clock, when)
    row = rows(server)["push"]
    if idempotent:
        assert (row["dispatch"], row["attempts"], doubtful.calls) == ("sent", 2, 2)
        assert server.dispatcher.in_doubt == 0
    else:
        assert (row["dispatch"], row["status"], row["attempts"], doubtful.calls) == ("unknown", "unknown", 1, 1)
        assert "not sent again" in row["error"] and server.dispatcher.in_doubt == 1 and backup.calls == 0


class ProcessDied(BaseException):
    """Stands for kill -9 in the middle of a provider call."""


class DiesWhileSending:
    """Takes the message (it may well reach the phone) and then the process is gone."""

    name = "dies"

    def __init__(self) -> None:
        self.taken: list[OutboundMessage] = []

    def send(self, message: OutboundMessage) -> str:
        self.taken.append(message)
        raise ProcessDied


@pytest.mark.parametrize("store_kind", ["sqlite"])
def test_an_interrupted_send_is_marked_unknown_and_never_sent_again(make_server: MakeServer,
                                                                    clock: VirtualClock) -> None:
    dying = DiesWhileSending()
    server = make_server({"push": [dying]})
    ingest(server, "notice.requested")
    with pytest.raises(ProcessDied):
        server.drain_outbox()
    assert len(dying.taken) == 1
    assert rows(server)["push"]["dispatch"] == "sending"

    after = RecordingProvider("after-restart")
    clock.advance_to(T0 + timedelta(seconds=30))
    restarted = make_server({"push": [after]})
    assert restarted.store.outbox.expire_interrupted(clock.now()) == 0, "expired while its lease still ran"
    assert restarted.drain_outbox() == 0, "claimed a message another worker still holds"

    clock.advance_to(T0 + timedelta(minutes=2))
    assert restarted.store.outbox.expire_interrupted(clock.now()) == 1
    row = rows(restarted)["push"]
    assert (row["dispatch"], row["status"]) == ("unknown", "unknown")  # in doubt: it may have been delivered
    assert "interrupted" in row["error"]
    for later in (timedelta(minutes=3), timedelta(hours=1), timedelta(days=2)):
        assert drain_at(restarted, clock, T0 + later) == 0
        assert restarted.store.outbox.expire_interrupted(clock.now()) == 0
    assert after.sent == []
    assert len(dying.taken) == 1


@pytest.mark.parametrize("store_kind", ["sqlite"])
def test_a_send_interrupted_shortly_before_a_restart_is_settled_once_its_lease_runs_out(
        make_server: MakeServer, clock: VirtualClock) -> None:
    server = make_server({"push": [DiesWhileSending()]})
    ingest(server, "notice.requested")
    with pytest.raises(ProcessDied):
        server.drain_outbox()

    clock.advance_to(T0 + timedelta(seconds=5))  # restarted at once, as a supervisor would
    restarted = make_server({"push": [RecordingProvider("after-restart")]})
    assert restarted.store.outbox.expire_interrupted(clock.now()) == 0  # what start() does: the lease still runs

    clock.advance_to(T0 + timedelta(minutes=5))  # the server keeps running its sweeps
    restarted.sweep_timers()
    restarted.drain_outbox()
    assert rows(restarted)["push"]["dispatch"] == "unknown"


class DiesOnThe:
    """Takes messages until its `n`th, then the process is gone (kill -9 in the middle of a batch)."""

    name = "dies-later"

    def __init__(self, n: int) -> None:
        self.n = n
        self.taken: list[str] = []

    def send(self, message: OutboundMessage) -> str:
        if len(self.taken) + 1 == self.n:
            raise ProcessDied
        self.taken.append(message.message_id)
        return f"p-{message.message_id}"


@pytest.mark.parametrize("store_kind", ["sqlite"])
def test_a_crash_mid_batch_leaves_only_the_group_in_flight_in_doubt(make_server: MakeServer,
                                                                    clock: VirtualClock) -> None:
    """200 messages due, the process dies on the 120th send: what the provider took before is
    recorded sent, the window in flight is `unknown` (never sent twice), and every message never
    handed over goes out after the restart: each user gets exactly one message or is in doubt.
    (A first claim is small, until the rate is measured; the drains go on until the crash.)"""
    dying = DiesOnThe(120)
    server = make_server({"push": [dying]})
    users = notices_for(server, [f"v{n:03d}" for n in range(200)])
    with pytest.raises(ProcessDied):
        while server.drain_outbox():
            pass
    clock.advance_to(T0 + timedelta(minutes=2))  # the lease ran out: a restarted server settles the batch
    after = RecordingProvider("after-restart")
    restarted = make_server({"push": [after]})
    restarted.resume()
    while restarted.drain_outbox():
        pass
    outcome = {u: rows(restarted, u)["push"]["dispatch"] for u in users}
    in_doubt = [u for u, d in outcome.items() if d == "unknown"]
    assert set(outcome.values()) == {"sent", "unknown"}
    assert 1 <= len(in_doubt) <= 32 and restarted.dispatcher.in_doubt == len(in_doubt)
    delivered = dying.taken + [m.message_id for m in after.sent]
    assert len(delivered) == len(set(delivered))  # nobody twice
    recorded_sent = {rows(restarted, u)["push"]["message_id"] for u in users if outcome[u] == "sent"}
    assert recorded_sent <= set(delivered) and len(recorded_sent) == 200 - len(in_doubt)  # nobody lost
    assert len(set(delivered) - recorded_sent) < len(in_doubt)  # taken just before the crash: in doubt


@pytest.mark.parametrize("back_after", [timedelta(seconds=2), timedelta(minutes=2)], ids=["soon", "after-lease"])
def test_a_database_outage_mid_batch_is_recorded_once_the_database_is_back(
        make_server: MakeServer, clock: VirtualClock, monkeypatch: pytest.MonkeyPatch, back_after: timedelta) -> None:
    """The database goes away as the first answers of a claim are recorded. Back within the lease,
    the process records what it knows: the window it handed over `sent` (not in doubt), the rest
    of its claim back to `pending` at once. Back only after the lease: the claim no longer holds
    (its record is refused), and as after a crash that window is in doubt and the rest is sent.
    Either way nobody gets a message twice and nobody is lost."""
    provider = RecordingProvider("push")
    server = make_server({"push": [provider]})
    users = notices_for(server, [f"w{n:03d}" for n in range(100)])
    server.dispatcher.throughput = 1000.0  # a claim of the whole backlog, as after a first one
    finish, calls = server.store.outbox.finish_outbox, []

    def going_away(results: Sequence[Mapping[str, Any]], fence: Fence, sending: Sequence[str] = ()) -> frozenset[str]:
        calls.append(len(results))
        if len(calls) == 2:
            raise TemporaryStoreError("the database is unavailable")
        return finish(results, fence, sending)

    monkeypatch.setattr(server.store.outbox, "finish_outbox", going_away)
    first_window = server.dispatcher.window({"push"})
    with pytest.raises(StoreError):
        server.drain_outbox()
    handed = len(provider.sent)
    assert 0 < handed == first_window < len(users)  # the first window, marked `sending` by the first write
    clock.advance_to(T0 + back_after)
    while server.drain_outbox():
        pass
    outcome = {u: rows(server, u)["push"]["dispatch"] for u in users}
    delivered = [m.message_id for m in provider.sent]
    assert len(delivered) == len(set(delivered)) == len(users)  # each handed over once, the lost record's too
    if back_after < timedelta(seconds=60):
        assert set(outcome.values()) == {"sent"} and server.dispatcher.in_doubt == 0
    else:
        assert server.dispatcher.in_doubt == handed  # the window whose record was lost
        assert sorted(outcome.values()) == ["sent"] * (len(users) - handed) + ["unknown"] * handed


# --- two dispatchers on one store: claims that cannot be outrun ---------------------------------------------

LEASE = timedelta(seconds=10)


class Slow:
    """A provider that answers in 120 ms of the virtual clock (`step`); every `every` messages, the
    other worker's outbox sweep (`meanwhile`) runs in the middle of the call, as it would on
    another machine. Time moves with this provider's calls only: the other worker's provider
    takes none (`step=0`), so the first worker's own loop sees every moment of its flight."""

    def __init__(self, name: str, clock: VirtualClock, delivered: list[str], step: timedelta = timedelta(
            milliseconds=120), meanwhile: Callable[[], object] | None = None, every: int = 25) -> None:
        self.name, self.clock, self.delivered, self.step = name, clock, delivered, step
        self.meanwhile, self.every, self.calls = meanwhile, every, 0

    def send(self, message: OutboundMessage) -> str:
        self.clock.advance_to(self.clock.now() + self.step)
        self.calls += 1
        self.delivered.append(message.message_id)
        if self.meanwhile is not None and self.calls % self.every == 0:
            self.meanwhile()
        return f"{self.name}:{message.message_id}"


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def two_stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[HostStore, HostStore]]:
    """Two stores on one database, as two workers would open it (the memory store: one, shared)."""
    if request.param == "memory":
        memory = MemoryStore()
        yield memory, memory
        return
    url = f"sqlite:///{tmp_path / 'journey.db'}" if request.param == "sqlite" \
        else str(request.getfixturevalue("postgres_fresh_db_url"))
    first, second = SqlStore(url), SqlStore(url)
    yield first, second
    first.close()
    second.close()


def queue_notices(store: HostStore, clock: VirtualClock, journeys: list[CompiledJourney], users: int) -> list[str]:
    server = Server(store, journeys, load_policy(), providers={"*": [RecordingProvider()]}, clock=clock)
    server.resume()  # on PostgreSQL: its partitions, so that it processes the events itself
    return notices_for(server, [f"r{n:03d}" for n in range(users)])


def dispatcher(store: HostStore, provider: Provider, clock: VirtualClock) -> Dispatcher:
    return Dispatcher(store.outbox, {"push": [provider]}, clock, lambda failures: None, load_policy(), lease=LEASE)


def test_a_claim_that_outlasts_its_lease_is_renewed_and_the_other_worker_takes_nothing_back(
        two_stores: tuple[HostStore, HostStore], clock: VirtualClock, journeys: list[CompiledJourney]) -> None:
    """The first worker claims 500 messages (60 s of sends at 120 ms each) under a 10 s lease, the
    second worker's sweep running every 25 of them: the first renews its claim as it goes, so the
    second's expiry takes nothing back and it sends only what the first did not claim. Everyone
    gets one message; every row is recorded once. (Before: the second took back and re-sent what
    the first had not sent by the end of its lease.)"""
    users = queue_notices(two_stores[0], clock, journeys, 600)
    delivered: list[str] = []
    second = dispatcher(two_stores[1], Slow("b", clock, delivered, step=timedelta(0)), clock)
    first = dispatcher(two_stores[0], Slow("a", clock, delivered, meanwhile=second.drain), clock)
    first.throughput = 1000.0  # as measured by an earlier claim: the next is a full batch
    assert first.drain() == 500
    assert clock.now() - T0 >= timedelta(seconds=60) and first.lost == 0
    while first.drain() + second.drain():
        pass
    assert len(delivered) == len(set(delivered)) == len(users)
    states = [(r["dispatch"], r["attempts"]) for u in users for r in two_stores[0].views.messages_for_user(u)]
    assert states == [("sent", 1)] * len(users)
    assert first.outcomes[("push", "sent")] + second.outcomes[("push", "sent")] == len(users)


class Stalls:
    """Takes its first message, then the process stalls for three leases (a pause, a swap storm),
    during which the other worker's sweep runs; after that it takes whatever it is handed."""

    name = "stalls"

    def __init__(self, clock: VirtualClock, delivered: list[str], meanwhile: Callable[[], object]) -> None:
        self.clock, self.delivered, self.meanwhile = clock, delivered, meanwhile

    def send(self, message: OutboundMessage) -> str:
        self.delivered.append(message.message_id)
        if len(self.delivered) == 1:
            self.clock.advance_to(self.clock.now() + 3 * LEASE)
            self.meanwhile()
        return f"stalls:{message.message_id}"


def test_a_holder_whose_lease_ran_out_neither_sends_nor_records_what_was_taken_over(
        two_stores: tuple[HostStore, HostStore], clock: VirtualClock, journeys: list[CompiledJourney]) -> None:
    """The first worker's first send stalls past its lease; meanwhile the second's expiry takes the
    claim back (the window marked `sending` is in doubt, the rest goes back to pending) and sends
    the rest. Back from the stall, the first hands nothing more over and its records are refused."""
    users = queue_notices(two_stores[0], clock, journeys, 100)
    recording = RecordingProvider("b")
    second = dispatcher(two_stores[1], recording, clock)
    delivered_a: list[str] = []
    first = dispatcher(two_stores[0], Stalls(clock, delivered_a, second.drain), clock)
    first.drain()  # returns once it finds its claim lost, its lane's call (and the other's sweep) still under way
    first.close()  # the call is answered: the other worker's sweep is done
    while second.drain():
        pass
    delivered_b = recording.message_ids
    assert len(delivered_a) == 1 and first.lost > 0 and first.sent == 0 and not first.outcomes
    assert not set(delivered_a) & set(delivered_b) and len(set(delivered_b)) == len(delivered_b)
    rows = {r["message_id"]: r for u in users for r in two_stores[0].views.messages_for_user(u)}
    assert rows[delivered_a[0]]["dispatch"] == "unknown"  # the expiry's verdict stands: in doubt
    in_doubt = {m for m, r in rows.items() if r["dispatch"] == "unknown"}
    assert len(in_doubt) == 2  # the first window: one for the lane's one thread, one queued behind it
    assert {m for m, r in rows.items() if r["dispatch"] == "sent"} == set(delivered_b)
    assert len(in_doubt) + len(delivered_b) == len(users)


def test_the_outbox_file_is_flushed_before_a_send_is_recorded_and_a_flush_that_fails_is_retried(
        make_server: MakeServer, clock: VirtualClock, tmp_path: Path) -> None:
    """The outbox file buffers its lines and the dispatcher flushes them once a group is sent,
    before it records any of them `sent`: what is recorded sent is in the file. When the lines
    cannot go (a full disk), nothing is recorded sent: the messages are tried again later."""
    full = FileProvider("/dev/full")  # every write that reaches it fails: no space left
    server = make_server({"*": [full]})
    users = notices_for(server, ["n1", "n2"])
    assert server.drain_outbox() == 2
    for user in users:
        [push] = server.store.views.messages_for_user(user)
        assert (push["dispatch"], push["attempts"]) == ("pending", 1) and "No space left" in push["error"]
    assert server.dispatcher.sent == 0
    outbox = tmp_path / "outbox.jsonl"
    server = make_server({"*": [FileProvider(outbox)]})  # the disk has room again (a restart, on another file)
    assert drain_at(server, clock, T0 + BACKOFF[0]) == 2
    sent = [m["message_id"] for u in users for m in server.store.views.messages_for_user(u) if m["dispatch"] == "sent"]
    assert len(sent) == 2 and sorted(json.loads(line)["message_id"] for line in outbox.read_text().splitlines()) \
        == sorted(sent)
