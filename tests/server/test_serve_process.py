"""What only a real `journey serve` process can show: pending timers survive kill -9, two
processes on one PostgreSQL database share the work without doing any of it twice, SIGHUP
reloads, and a template that would hold the engine holds no one up."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine

from tests.server.conftest import (
    JOURNEY,
    JOURNEYS,
    ServerProcess,
    StartServer,
    metric,
    post_events,
    put_profile,
    server_env,
    wait_for_sweeps,
    wait_until,
)


def all_sent(server: ServerProcess, user_id: str, count: int) -> list[dict[str, Any]] | None:
    """The user's messages once there are `count` of them and every one is marked sent."""
    messages = server.messages(user_id)
    return messages if len(messages) == count and all(m["dispatch"] == "sent" for m in messages) else None


KILL_WITHIN = 10  # seconds: the journey's wait, inside which the server is killed
SLOW_WELCOME = JOURNEYS["welcome.yaml"].replace("id: welcome", "id: slow-welcome").replace(
    "event: account.created", "event: account.opened").replace("duration: 3s", f"duration: {KILL_WITHIN}s")


def test_pending_timers_survive_kill_9_and_fire_once_after_restart(start_server: StartServer,
                                                                    journeys_dir: Path) -> None:
    (journeys_dir / "slow-welcome.yaml").write_text(SLOW_WELCOME, encoding="utf-8")  # time to kill it, busy or not
    users = [f"user-{n:02d}" for n in range(20)]
    first = start_server(name="before-kill")
    for user in users:
        put_profile(first, user, "sms:transactional")
    started = time.monotonic()
    batch = {"events": [{"id": f"signup-{user}", "type": "account.opened", "user_id": user} for user in users]}
    assert post_events(first, batch).json() == {"accepted": 20, "duplicates": 0, "rejected": []}

    def pushes_sent() -> bool:
        return all(all_sent(first, user, 1) for user in users)

    wait_until(pushes_sent, timeout=KILL_WITHIN - 2, what=f"20 pushes sent before the {KILL_WITHIN} s waits are over")
    first.kill()
    assert time.monotonic() - started < KILL_WITHIN, f"too slow to kill the server inside the {KILL_WITHIN} s wait"
    before = first.outbox_lines()
    assert Counter(line["channel"] for line in before) == {"push": 20}

    second = start_server(db=first.db, name="after-kill")

    def sms_count() -> int:
        return sum(1 for line in second.outbox_lines() if line["channel"] == "sms")

    wait_until(lambda: sms_count() == 20, timeout=KILL_WITHIN + 20, what="all 20 SMS after the restart")
    wait_until(lambda: all(all_sent(second, user, 2) for user in users), timeout=20,
               what="two sent messages for every user")
    wait_for_sweeps("timers", "outbox", on=[second])  # a timer or message handled twice would show by then

    lines = second.outbox_lines()
    ids = [line["message_id"] for line in lines]
    assert len(ids) == 40
    assert [i for i, n in Counter(ids).items() if n > 1] == []
    api_ids: list[str] = []
    for user in users:
        messages = second.messages(user)
        assert sorted(m["channel"] for m in messages) == ["push", "sms"]
        api_ids += [m["message_id"] for m in messages]
        [instance] = second.client.get(f"/v1/users/{user}/instances").json()["instances"]
        assert instance["status"] == "completed"
        assert instance["path"] == ["hello", "pause", "tips"]
    assert len(set(api_ids)) == 40
    assert set(api_ids) == set(ids)

    again = post_events(second, batch)
    assert again.json() == {"accepted": 0, "duplicates": 20, "rejected": []}


def test_two_servers_on_postgresql_process_queued_events_each_exactly_once(postgres_fresh_db_url: str,
                                                                          start_server: StartServer) -> None:
    """`Prefer: respond-async` to two workers sharing one PostgreSQL database: every queued event
    goes through the journey once (one push per user, no more), whichever worker takes it."""
    first = start_server(db=postgres_fresh_db_url, name="first")
    second = start_server(db=postgres_fresh_db_url, name="second")
    users = [f"q{n}" for n in range(40)]
    for user in users:
        put_profile(first, user, "sms:transactional")
    for n, user in enumerate(users):
        target = first if n % 2 else second
        response = target.client.post("/v1/events", headers={"Prefer": "respond-async"},
                                      json={"id": f"o-{user}", "type": "order.placed", "user_id": user,
                                            "properties": {"order_id": user}})
        assert response.status_code == 202 and response.json()["accepted"] == 1

    def pushes() -> dict[str, int] | None:
        counts = {u: sum(1 for m in first.messages(u) if m["channel"] == "push") for u in users}
        return counts if all(counts.values()) else None

    counts = wait_until(pushes, timeout=15, what="a push for every queued order")
    wait_for_sweeps("inbox", "outbox", on=[first, second])  # a worker's late duplicate would show by then
    assert {u: sum(1 for m in first.messages(u) if m["channel"] == "push") for u in users} == counts
    assert set(counts.values()) == {1}


def test_sighup_reloads_the_journeys_folder_and_in_flight_users_keep_their_version(
        start_server: StartServer, journeys_dir: Path) -> None:
    """`kill -HUP` with an edited journey: A (in its 3 s wait) gets the old text, B (after) the new."""
    server = start_server(name="sighup")
    for user in ("A", "B"):
        put_profile(server, user, "sms:transactional")
    post_events(server, {"type": "account.created", "user_id": "A"})
    before = server.client.get("/v1/journeys/welcome").json()["version"]
    path = journeys_dir / "welcome.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("Three tips to get started", "New tips"),
                    encoding="utf-8")
    server.process.send_signal(signal.SIGHUP)
    wait_until(lambda: server.client.get("/v1/journeys/welcome").json()["version"] != before, timeout=30,
               what="the reload after SIGHUP")
    post_events(server, {"type": "account.created", "user_id": "B"})

    def text(user: str) -> str | None:
        sms = [m for m in server.messages(user) if m["channel"] == "sms"]
        return sms[0]["content"]["text"] if sms else None

    assert wait_until(lambda: text("A"), timeout=10, what="A's SMS") == "Three tips to get started: reply HELP"
    assert wait_until(lambda: text("B"), timeout=10, what="B's SMS") == "New tips: reply HELP"
    path.write_text("id: [\n", encoding="utf-8")  # a bad file: the next reload changes nothing
    server.process.send_signal(signal.SIGHUP)
    wait_until(lambda: "reload refused" in server.log.read_text(), timeout=30, what="the refusal in the log")
    path.write_text("id: welcome\nx: " + "[" * 1500 + "]" * 1500 + "\n", encoding="utf-8")  # 1,500 levels
    server.process.send_signal(signal.SIGHUP)
    wait_until(lambda: "welcome.yaml:2: nested more than 100 levels deep" in server.log.read_text(), timeout=30,
               what="the deep file's problem in the log")
    assert "Traceback" not in server.log.read_text()
    assert server.process.poll() is None
    assert server.client.get("/v1/journeys/welcome").json()["state"] == "active"


RACE = """\
id: race
category: transactional
re_entry: never
trigger: {event: go}
steps:
  - {id: hello, type: send, message: hello, channels: [push]}
messages:
  hello:
    push: {title: "Hello", body: "Once only"}
"""


def test_two_workers_on_a_shared_database_enter_each_user_once_when_both_get_a_trigger(
        shared_db_url: str, start_server: StartServer, journeys_dir: Path) -> None:
    """200 users, each sent two different `go` events at the same moment, one to each worker, on a
    `re_entry: never` journey: each user's state is changed by one worker at a time, so exactly
    200 instances and 200 messages. On PostgreSQL and on a Citus cluster."""
    (journeys_dir / "race.yaml").write_text(RACE, encoding="utf-8")
    first = start_server(db=shared_db_url, name="worker-1")
    second = start_server(db=shared_db_url, name="worker-2")
    users = [f"r{n:03d}" for n in range(200)]
    for user in users:
        put_profile(first, user)

    def burst(server: ServerProcess, tag: str) -> list[int]:
        codes = []
        for start in range(0, len(users), 20):
            batch = [{"id": f"{tag}-{u}", "type": "go", "user_id": u} for u in users[start:start + 20]]
            codes.append(post_events(server, {"events": batch}).status_code)
        return codes

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda pair: burst(*pair), [(first, "a"), (second, "b")]))
    assert all(code == 202 for codes in results for code in codes), results

    def instances_of_all() -> dict[str, list[Any]] | None:  # a worker queues its event for the user's owner
        found = {u: first.client.get(f"/v1/users/{u}/instances").json()["instances"] for u in users}
        return found if all(found.values()) else None

    instances = wait_until(instances_of_all, timeout=10, what="an instance for every user")
    wait_for_sweeps("inbox", on=[first, second], timeout=30)  # a second instance would show by now
    instances = {u: first.client.get(f"/v1/users/{u}/instances").json()["instances"] for u in users}
    assert sum(len(found) for found in instances.values()) == 200
    assert all(len(found) == 1 for found in instances.values())
    wait_until(lambda: all(first.messages(u) for u in users), timeout=20, what="a push for every user")
    assert sum(len(first.messages(u)) for u in users) == 200


def test_serve_workers_runs_k_workers_behind_one_port_sharing_the_users(
        postgres_fresh_db_url: str, start_server: StartServer, journeys_dir: Path) -> None:
    """`journey serve --workers 2`: two worker processes accept on one port, split the 256
    partitions, and between them process every user's event once; SIGTERM stops both and gives
    their partitions up at once (no lease left to run out). Both take the environment's
    JOURNEY_WORKER_ID (their ids) and JOURNEY_METRICS_PUBLIC (/metrics without a key)."""
    (journeys_dir / "race.yaml").write_text(RACE, encoding="utf-8")
    env = {**server_env(), "JOURNEY_WORKER_ID": "blue", "JOURNEY_METRICS_PUBLIC": "1"}
    server = start_server(db=postgres_fresh_db_url, name="workers", args=["--workers", "2"], env=env)
    shares = wait_until(lambda: (lambda found: found if sorted(found.values()) == [128, 128] else None)(
        {s.labels["worker"]: s.value for s in samples(server, "journey_worker_partitions")}), timeout=15,
        what="two workers owning 128 partitions each")
    assert sorted(shares) == ["blue/1", "blue/2"]
    with httpx.Client(base_url=server.base_url, timeout=10) as anonymous:
        assert anonymous.get("/metrics").status_code == 200 and anonymous.get("/v1/journeys").status_code == 401
    users = [f"w{n:03d}" for n in range(100)]
    for user in users:
        put_profile(server, user)
    for start in range(0, len(users), 10):
        batch = [{"id": f"go-{u}", "type": "go", "user_id": u} for u in users[start:start + 10]]
        assert post_events(server, {"events": batch}).status_code == 202
    wait_until(lambda: all(server.messages(u) for u in users), timeout=20, what="a push for every user")
    assert sum(len(server.messages(u)) for u in users) == 100
    server.process.terminate()
    assert server.process.wait(timeout=30) == 0
    database = create_engine(postgres_fresh_db_url)
    with database.connect() as conn:
        held = conn.exec_driver_sql("SELECT count(*) FROM partition_leases WHERE owner IS NOT NULL").scalar_one()
    database.dispose()
    assert held == 0


def samples(server: ServerProcess, family: str) -> list[Any]:
    """Every sample of one metric family in the server's /metrics."""
    text = server.client.get("/metrics").text
    return [s for f in text_string_to_metric_families(text) if f.name == family for s in f.samples]


def test_serve_workers_on_sqlite_is_refused_with_the_reason(start_server: StartServer, tmp_path: Path) -> None:
    done = subprocess.run([str(JOURNEY), "serve", "--db", f"sqlite:///{tmp_path / 'j.db'}", "--workers", "2"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "--workers 2" in done.stderr and "PostgreSQL" in done.stderr
    assert "Traceback" not in done.stderr


HOSTILE = """\
id: hostile
category: transactional
trigger: {event: hostile.sent}
steps:
  - {id: tell, type: send, message: tell, channels: [push]}
messages:
  tell:
    push: {title: "x", body: "{% for x in 'a'*20000 %}{% for y in 'a'*20000 %}{% endfor %}{% endfor %}"}
"""


class Stream:
    """Another user's synchronous event every 0.1 s (each its own user, entering `order-updates`:
    a push at once, an SMS 2 s later), each answer's latency kept, until `stop()`."""

    def __init__(self, server: ServerProcess, users: list[str]) -> None:
        self.server, self.users = server, iter(users)
        self.latencies: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._post, daemon=True, name="stream")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def _post(self) -> None:
        with httpx.Client(base_url=self.server.base_url, headers=self.server.headers, timeout=60) as client:
            for user in self.users:
                if self._stop.is_set():
                    return
                sent = time.monotonic()
                reply = client.post("/v1/events", json={"type": "order.placed", "user_id": user,
                                                        "properties": {"order_id": f"o-{user}"}})
                assert reply.status_code == 202, reply.text
                self.latencies[user] = time.monotonic() - sent
                self._stop.wait(0.1)


def test_a_template_that_would_hold_the_engine_30_s_holds_no_one_up(start_server: StartServer,
                                                                    journeys_dir: Path) -> None:
    """The nested string loop held the engine 30 s (only `range` was counted): every other user's
    synchronous event waited as long, and timers fired 30 s late. Served now, its event is
    answered at once with the send skipped (`template_error` naming the limit); other users'
    synchronous events posted meanwhile are answered within 2 s, and their 2 s timers fire on time."""
    (journeys_dir / "hostile.yaml").write_text(HOSTILE, encoding="utf-8")
    server = start_server(name="hostile")
    users = [f"s{n:03d}" for n in range(200)]
    consent = {"channel": "sms", "category": "transactional", "granted": True, "source": "test",
               "at": "2026-01-01T00:00:00Z"}
    profiles = [{"user_id": u, "push_token": f"tok-{u}", "phone": "+14155550100", "timezone": "UTC",
                 "consents": [consent]} for u in ["victim", *users]]
    assert server.client.post("/v1/profiles", json={"profiles": profiles}).json()["upserted"] == len(profiles)
    stream = Stream(server, users)
    stream.start()
    wait_until(lambda: len(stream.latencies) >= 3, timeout=20, interval=0.05, what="the stream under way")
    started = time.monotonic()
    hostile = server.client.post("/v1/events", json={"type": "hostile.sent", "user_id": "victim"}, timeout=60)
    answered = time.monotonic() - started
    wait_until(lambda: time.monotonic() > started + answered + 2.0, timeout=60, interval=0.1,
               what="the stream to go on 2 s past the hostile event's answer")
    stream.stop()
    assert hostile.status_code == 202 and answered < 5, (hostile.text, answered)
    [skip] = server.client.get("/v1/messages", params={"user_id": "victim"}).json()["skipped"]
    assert skip["reason"] == "template_error" and "limit of 100,000 steps" in skip["detail"]
    slow = {u: round(s, 2) for u, s in stream.latencies.items() if s >= 2.0}
    assert slow == {}, f"synchronous events answered in 2 s or more while the hostile one ran: {slow}"

    for user in stream.latencies:
        wait_until(lambda user=user: all_sent(server, user, 2), timeout=20, what=f"{user}'s push and SMS")
    fired = metric(server, "journey_timer_lateness_seconds_count")
    on_time = metric(server, "journey_timer_lateness_seconds_bucket", le="1.0")
    assert fired is not None and fired >= len(stream.latencies)
    assert on_time == fired, f"{fired - (on_time or 0):.0f} of {fired:.0f} timers fired more than 1 s late"
    print(f"\n[hostile template] its event answered in {answered:.2f} s; {len(stream.latencies)} other users' "
          f"events answered in at most {max(stream.latencies.values()):.2f} s; their {fired:.0f} 2 s timers all "
          f"fired less than 1 s late")
