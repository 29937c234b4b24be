"""On a Citus cluster the hot statements are each routed to one shard: a store whose connections
have Citus say so of every statement that touches more than one shard
(`citus.multi_task_query_log_level`, a notice each) runs the outbox and timer claims (their first
read asked of the shard's node), the dispatcher's fenced writes, the webhooks' status updates, the
timer sweep's reads and the engagement counts with none."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import event

from channels import ConsentRecord, Decision, Profile, load_policy
from engine.bench.workload import cart_event, check_w1, open_event, opens, w1_journey, w1_profile
from engine.clock import VirtualClock
from engine.ports import HostStore, carry_out
from engine.service import Engine
from engine.state import Fence, Outcome, Send
from engine.stores.sql import SqlStore
from tests.stores.test_store_contract import counts, instance, waiting

pytestmark = pytest.mark.citus
T0 = datetime(2026, 1, 5, 10, tzinfo=UTC)
LEASE = timedelta(seconds=60)
USERS = [f"user-{n}" for n in range(400)]  # about 12 in each of the 32 shards


class Cluster:
    """A distributed database: `store` for setting the scene; `watched`, whose multi-shard
    statements are counted in `multi_shard` (Citus's notice for each)."""

    def __init__(self, url: str) -> None:
        self.store = SqlStore(url)
        self.watched = SqlStore(url + "?options=" + quote("-c citus.multi_task_query_log_level=notice"))
        self.multi_shard: list[str] = []
        self._statement = ""  # the statement running, named in the failure
        event.listen(self.watched.engine, "connect", lambda conn, _: conn.add_notice_handler(self._notice))
        event.listen(self.watched.engine, "before_cursor_execute",
                     lambda _conn, _cursor, statement, *_: setattr(self, "_statement", statement))
        self.watched.engine.dispose()  # the connections opening it made had no handler
        self.shard = self.store.partitioning.of

    def _notice(self, notice: Any) -> None:
        if "multi-task query" in str(notice.message_primary):
            self.multi_shard.append(f"{notice.message_primary}: {self._statement[:150]}")

    def close(self) -> None:
        self.watched.close()
        self.store.close()

    def two_shards(self) -> tuple[list[str], list[str]]:
        """Users of two different shards, several of each."""
        first = [u for u in USERS if self.shard(u) == self.shard(USERS[0])]
        other = next(u for u in USERS if self.shard(u) != self.shard(USERS[0]))
        return first, [u for u in USERS if self.shard(u) == self.shard(other)]


@pytest.fixture
def cluster(citus_fresh_db_url: str) -> Iterator[Cluster]:
    made = Cluster(citus_fresh_db_url)
    yield made
    made.close()


def send(message_id: str, user_id: str, at: datetime = T0) -> Send:
    return Send(message_id=message_id, instance_id=None, journey_id=None, user_id=user_id, step=None,
                message="hello", channel="push", category="transactional", content={"text": "Hi"}, cost=0.0,
                encoding=None, segments=None, decisions=(Decision("push", True, None),), at=at)


def queue(store: HostStore, users: list[str], per_user: int = 1) -> None:
    with store.transaction() as tx:
        for user in users:
            tx.put_profile(Profile(user, push_token=f"tok-{user}"))
        carry_out(tx, Outcome(None, [send(f"m-{u}-{n}", u) for u in users for n in range(per_user)]))


def sent(message_id: str, at: datetime) -> dict[str, Any]:
    return {"message_id": message_id, "dispatch": "sent", "status": "sent", "attempts": 1, "next_attempt_at": None,
            "provider": "fake", "provider_id": f"p-{message_id}", "error": None, "at": at}


def dispatch_of(store: HostStore, user: str) -> dict[str, str]:
    return {m["message_id"]: m["dispatch"] for m in store.views.messages_for_user(user)}


def test_the_dispatchers_fenced_writes_are_routed_to_the_shard_of_each_group_of_users(cluster: Cluster) -> None:
    first, second = cluster.two_shards()
    queue(cluster.store, first + second, per_user=5)  # enough to record over arrays
    claims = [cluster.watched.outbox.claim_outbox(T0, 500, LEASE, "a") for _ in range(3)]  # each: one shard's
    claimed = [item for claim in claims for item in claim]
    assert {i.user_id for i in claimed} == {*first, *second} and not claims[-1]
    assert [len({cluster.shard(i.user_id) for i in claim}) for claim in claims] == [1, 1, 0]
    users = {i.message_id: i.user_id for i in claimed}
    fence = Fence("a", T0, T0 + LEASE, users)
    ids = sorted(users)
    assert cluster.watched.outbox.finish_outbox([], fence, sending=ids) == set(ids)
    later = T0 + timedelta(seconds=30)
    assert cluster.watched.outbox.renew_outbox(ids, Fence("a", later, later + LEASE, users)) == set(ids)
    one_each = [f"m-{u}-0" for u in (first[0], second[0])]
    assert cluster.watched.outbox.finish_outbox([sent(m, later) for m in one_each],
                                               Fence("a", later, later, users)) == set(one_each)  # one at a time
    rest = [m for m in ids if m not in one_each]
    assert cluster.watched.outbox.finish_outbox([sent(m, later) for m in rest],
                                               Fence("a", later, later, users)) == set(rest)  # over arrays
    assert set(dispatch_of(cluster.store, first[0]).values()) == {"sent"}
    assert set(dispatch_of(cluster.store, second[-1]).values()) == {"sent"}
    assert cluster.multi_shard == []


def test_the_expiry_of_a_stopped_dispatchers_leases_is_routed_shard_by_shard(cluster: Cluster) -> None:
    first, second = cluster.two_shards()
    queue(cluster.store, first + second)
    claimed = [*cluster.store.outbox.claim_outbox(T0, 500, LEASE, "a"),
               *cluster.store.outbox.claim_outbox(T0, 500, LEASE, "a")]
    handed = f"m-{first[0]}-0"
    users = {i.message_id: i.user_id for i in claimed}
    assert cluster.watched.outbox.finish_outbox([], Fence("a", T0, T0 + LEASE, users), sending=[handed]) == {handed}
    assert cluster.watched.outbox.expire_interrupted(T0 + 2 * LEASE) == 1  # the one handed over is in doubt
    assert dispatch_of(cluster.store, first[0]) == {handed: "unknown"}
    assert dispatch_of(cluster.store, second[0]) == {f"m-{second[0]}-0": "pending"}
    assert len(cluster.multi_shard) == 1  # which users' leases ran out (a read); each shard's writes routed


def test_a_receipts_status_update_names_the_messages_user_and_is_routed(cluster: Cluster) -> None:
    first, second = cluster.two_shards()
    queue(cluster.store, [first[0], second[0]])
    with cluster.watched.transaction() as tx:
        tx.set_message_status(first[0], f"m-{first[0]}-0", "delivered", T0)
        tx.set_message_status(second[0], f"m-{second[0]}-0", "opened", T0)
        tx.set_message_status(second[0], f"m-{first[0]}-0", "failed", T0)  # not this user's message
    assert [m["status"] for m in cluster.store.views.messages_for_user(first[0])] == ["delivered"]
    assert [m["status"] for m in cluster.store.views.messages_for_user(second[0])] == ["opened"]
    assert cluster.multi_shard == []


def test_a_timer_claims_instances_are_read_from_their_shard_alone(cluster: Cluster) -> None:
    first, _ = cluster.two_shards()
    with cluster.store.transaction() as tx:
        for n, user in enumerate(first):
            carry_out(tx, waiting(instance(f"i-{user}", user), f"t-{user}", T0 + timedelta(seconds=n)))
    with cluster.watched.transaction() as tx:
        claimed = list(tx.claim_due_timers(T0 + timedelta(hours=1), 100))
        assert [tx.get_instance(i).user_id for i, _ in claimed] == first  # type: ignore[union-attr]
    assert cluster.multi_shard == []  # which timers of the shard are due: asked of its node


def test_engagement_counts_of_users_of_two_shards_are_written_a_shard_at_a_time(cluster: Cluster) -> None:
    first, second = cluster.two_shards()
    with cluster.store.transaction() as tx:
        for user in first + second:
            tx.put_profile(Profile(user, push_token=f"tok-{user}"))
    with cluster.watched.transaction() as tx:
        for users in (first, second):  # as a batch of one partition's users reads them
            tx.prefetch(users, T0)
        for user in first + second:
            tx.put_engagement(user, counts(f"m-{user}"))
    assert len(first) >= 8 and second  # over arrays, and a statement a user
    with cluster.store.transaction() as tx:
        assert all(tx.get_profile(u).engagement == counts(f"m-{u}") for u in (first + second))  # type: ignore[union-attr]
    assert cluster.multi_shard == []


def test_a_webhook_finds_the_message_a_provider_id_names_by_statements_routed_to_its_user(cluster: Cluster) -> None:
    first, second = cluster.two_shards()
    queue(cluster.store, [first[0], second[0]])
    claimed = [*cluster.store.outbox.claim_outbox(T0, 500, LEASE, "a"),
               *cluster.store.outbox.claim_outbox(T0, 500, LEASE, "a")]
    users = {i.message_id: i.user_id for i in claimed}
    ids = sorted(users)
    cluster.watched.outbox.finish_outbox([sent(m, T0) for m in ids], Fence("a", T0, T0 + LEASE, users))
    for message_id in ids:
        found = cluster.watched.views.message_by_provider_id(f"p-{message_id}")
        assert found is not None and (found["message_id"], found["user_id"]) == (message_id, users[message_id])
    assert cluster.watched.views.message_by_provider_id("p-never-sent") is None
    assert cluster.multi_shard == []


def _dispatch_all(store: SqlStore, now: datetime) -> list[tuple[str, str]]:
    """Every due message claimed (a shard a claim), marked sending and recorded sent, as the
    dispatcher does; (user, channel) of each."""
    handed: list[tuple[str, str]] = []
    while claimed := store.outbox.claim_outbox(now, 500, LEASE, "d"):
        users = {i.message_id: i.user_id for i in claimed}
        fence = Fence("d", now, now + LEASE, users)
        assert store.outbox.finish_outbox([], fence, sending=sorted(users)) == set(users)
        assert store.outbox.finish_outbox([sent(m, now) for m in users], fence) == set(users)
        handed += [(i.user_id, i.channel) for i in claimed]
    return handed


def test_w1s_steady_state_events_timers_dispatch_and_feedback_run_no_multi_shard_statement(
        cluster: Cluster) -> None:
    """W1 for 80 users on the cluster, through the store whose multi-shard statements are counted:
    carts accepted into the inbox and processed a shard's batch at a time, the pushes claimed and
    recorded, 30% opened (feedback through the inbox, setting the push's status), the others'
    escalation timers fired and their SMS dispatched. Correct, and not one multi-shard statement."""
    users = 80
    with cluster.store.transaction() as tx:
        for n in range(users):
            tx.put_profile(w1_profile(n))
    clock = VirtualClock(T0)
    engine = Engine([w1_journey(timedelta(seconds=2))], load_policy(), cluster.watched, clock)
    cluster.multi_shard.clear()  # from here on: W1's steady state
    engine.accept_many([cart_event(n, T0) for n in range(users)])
    while engine.process_queued(1000):
        pass
    sends = _dispatch_all(cluster.watched, T0)
    clock.advance_to(T0 + timedelta(seconds=0.5))
    engine.accept_many([open_event(n, clock.now()) for n in range(users) if opens(n)])
    while engine.process_queued(1000):
        pass
    clock.advance_to(T0 + timedelta(seconds=3))
    while engine.fire_due(1000):
        pass
    sends += _dispatch_all(cluster.watched, clock.now())
    assert check_w1(users, sends) == []
    opened = [m["status"] for n in range(users) if opens(n) for m in cluster.store.views.messages_for_user(f"u{n}")]
    assert opened and set(opened) == {"opened"}
    assert cluster.multi_shard == [], "\n".join(cluster.multi_shard)


def test_a_claim_is_one_routed_statement_and_the_recipients_with_their_suppressions_two_more(
        cluster: Cluster) -> None:
    """Each statement on Citus is a trip through the coordinator to a shard's node: a claim is
    the shard's read and the lease (one data-modifying statement), in no transaction block; the
    dispatcher's recheck reads the recipients' consent ledgers, then their profiles with whether
    their numbers are suppressed."""
    first, _ = cluster.two_shards()
    phones = {user: f"+1555000{n:04d}" for n, user in enumerate(first)}
    ledger = (ConsentRecord("sms", "marketing", True, "web", T0), ConsentRecord("sms", "marketing", False, "STOP", T0))
    queue(cluster.store, first)
    with cluster.store.transaction() as tx:
        for user, phone in phones.items():
            tx.put_profile(Profile(user, phone=phone, push_token=f"tok-{user}"))
        tx.put_profile(Profile(first[1], phone=phones[first[1]], push_token=f"tok-{first[1]}", consents=ledger))
        tx.record_suppression(phones[first[0]], "STOP", T0, "sms")
    statements: list[str] = []
    event.listen(cluster.watched.engine, "before_cursor_execute", lambda _c, _k, sql, *_: statements.append(sql))
    claimed = cluster.watched.outbox.claim_outbox(T0 + timedelta(seconds=1), 500, LEASE, "a")
    assert {i.user_id for i in claimed} == set(first)
    claims = [s for s in statements if "journey_due_messages" not in s]  # the rest ask shards which is due
    assert len(claims) == 1 and claims[0].startswith("WITH due AS"), claims
    assert set(dispatch_of(cluster.store, first[0]).values()) == {"leased"}
    del statements[:]
    profiles = cluster.watched.outbox.recipients(set(first))
    suppressed = cluster.watched.outbox.suppressions(set(phones.values()))
    assert set(profiles) == set(first) and set(suppressed) == {phones[first[0]]}
    assert profiles[first[0]].consents == () and profiles[first[1]].consents == ledger
    assert len(statements) == 2, statements
    assert cluster.multi_shard == []


def test_a_timer_sweeps_claims_read_no_shard_again_that_its_look_ahead_read(cluster: Cluster) -> None:
    """The sweep first asks which users' timers are due (every shard read on its node), then claims
    shard by shard as of the same instant: what the look ahead found serves the claims, and
    every due timer is fired once."""
    first, second = cluster.two_shards()
    with cluster.store.transaction() as tx:
        for n, user in enumerate(first + second):
            carry_out(tx, waiting(instance(f"i-{user}", user), f"t-{user}", T0 + timedelta(seconds=n)))
    reads: list[str] = []
    event.listen(cluster.watched.engine, "before_cursor_execute",
                 lambda _c, _k, sql, *_: reads.append(sql) if "journey_due_timers" in sql else None)
    now = T0 + timedelta(hours=1)
    with cluster.watched.transaction() as tx:
        assert tx.due_timer_users(now, 1000) == {*first, *second}
        looked = len(reads)
        claimed = [i for _ in range(3) for i, _ in tx.claim_due_timers(now, 1000)]
    assert looked == 32 and len(reads) == looked, reads  # every shard read once: by the look ahead
    assert sorted(claimed) == sorted(f"i-{u}" for u in first + second)
    later = now + timedelta(seconds=1)
    with cluster.watched.transaction() as tx:
        assert list(tx.claim_due_timers(later, 1000)) == []  # as of another instant: read again, none left
    assert len(reads) == 2 * looked
