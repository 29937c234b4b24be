"""`GET /v1/journeys/{id}/stats` over HTTP: the counters the engine keeps as it runs, read back.

A served run of the cart-abandonment example (profiles and events posted over HTTP at their own
times on the virtual clock, SMS handed to a local server speaking Twilio's protocol) must report,
number for number, what `journey simulate` of the same events reports: instances by status,
conversions (an order after its instance completed among them), the funnel (steps reached, edges
taken) and the messages per channel with their cost; and the same after a restart. A goal
reached after its instance completed counts once, within `goal.within`.
"""

from __future__ import annotations

import shutil
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

from channels import load_policy
from channels.providers.local import FileProvider
from channels.providers.twilio import TwilioProvider
from engine.clock import VirtualClock, counter_ids
from engine.compiler import load_file
from engine.events import format_time, parse_time
from engine.simulator import parse_events, parse_profiles, read_jsonl, simulate
from tests.providers.provider_fakes import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio
from tests.server.conftest import LocalServer, StartLocal, post_events

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "cart-abandonment"
SENDER = "+15005550006"


def _serve(start_local: StartLocal, db: str, twilio: FakeTwilio, tmp_path: Path, clock: VirtualClock) -> LocalServer:
    sms = TwilioProvider(ACCOUNT_SID, AUTH_TOKEN, SENDER, api_base_url=twilio.url, timeout=5)
    return start_local(db=db, providers={"sms": [sms], "*": [FileProvider(tmp_path / "outbox.jsonl")]}, clock=clock)


def _run_to(local: LocalServer, at: Any) -> None:
    """Move the virtual clock to `at`, firing every timer due on the way at its own time."""
    local.advance((at - local.clock.now()).total_seconds())


LATE_ORDER = {"id": "ca-late", "type": "order.placed", "user_id": "u1", "timestamp": "2026-01-08T12:00:00Z",
              "properties": {"order_id": "O-1001", "value": 45.0}}
"""u1's order 3 days after entry: its instance completed long before, its goal's 7 days still run."""


def _events() -> list[dict[str, Any]]:
    return [data for _, data in read_jsonl(EXAMPLE / "events.jsonl")] + [LATE_ORDER]


def _simulated() -> dict[str, Any]:
    events = parse_events((f"events:{n}", d) for n, d in enumerate(_events(), 1))
    profiles = parse_profiles((f"profiles:{n}", d) for n, d in read_jsonl(EXAMPLE / "profiles.jsonl"))
    return simulate(load_file(ROOT / "journeys" / "cart-abandonment.yaml"), events, profiles, load_policy())


def _funnel(simulated: dict[str, Any]) -> tuple[Counter[str], Counter[tuple[str, str]]]:
    """Steps reached and edges taken, read off the simulated instances' paths."""
    steps: Counter[str] = Counter()
    edges: Counter[tuple[str, str]] = Counter()
    for instance in simulated["instances"]:
        path = instance["path"]
        steps.update(path)
        edges.update(zip(path, path[1:], strict=False))
    return steps, edges


def _assert_equal_to_simulation(stats: dict[str, Any], simulated: dict[str, Any]) -> None:
    summary = simulated["summary"]
    assert stats["entered"] == summary["entered"]
    assert {s: stats["instances"][s] for s in ("active", "completed", "exited", "converted", "failed")} == \
        {s: summary[s] for s in ("active", "completed", "exited", "converted", "failed")}
    assert stats["conversions"] == summary["conversions"]
    steps, edges = _funnel(simulated)
    assert {s: v["entered"] for s, v in stats["steps"].items() if v["entered"]} == dict(steps)
    assert {(s, t): n for s, v in stats["steps"].items() for t, n in v["left"].items()} == dict(edges)
    assert all(v["waiting"] == 0 for v in stats["steps"].values())
    sent = {c: sum(v["messages"].values()) for c, v in stats["channels"].items()}
    assert sent == summary["messages"]
    assert {c: v["messages"]["queued"] for c, v in stats["channels"].items()} == dict.fromkeys(sent, 0)
    assert round(sum(v["cost"] for v in stats["channels"].values()), 6) == summary["cost"]
    refused = Counter((d["channel"], d["reason"]) for m in simulated["skipped"] for d in m["decisions"]
                      if not d["eligible"])
    assert {(c, r): n for c, v in stats["channels"].items() for r, n in v["skipped"].items()} == dict(refused)


def test_stats_after_a_served_run_equal_the_simulation_of_the_same_events(
        start_local: StartLocal, durable_db: str, twilio: FakeTwilio, tmp_path: Path, journeys_dir: Path) -> None:
    shutil.copy(ROOT / "journeys" / "cart-abandonment.yaml", journeys_dir)
    events = _events()
    clock = VirtualClock(parse_time(events[0]["timestamp"], "timestamp") - timedelta(minutes=1))
    local = _serve(start_local, durable_db, twilio, tmp_path, clock)
    profiles = [data for _, data in read_jsonl(EXAMPLE / "profiles.jsonl")]
    assert local.client.post("/v1/profiles", json={"profiles": profiles}).status_code == 200
    for event in events:
        _run_to(local, parse_time(event["timestamp"], "timestamp"))
        assert post_events(local, event).status_code == 202
    _run_to(local, clock.now() + timedelta(days=3))

    simulated = _simulated()
    assert simulated["summary"]["conversions"] == simulated["summary"]["converted"] + 1  # u1's late order
    stats = local.client.get("/v1/journeys/cart-abandonment/stats")
    assert stats.status_code == 200, stats.text
    assert sum(stats.json()["channels"]["sms"]["messages"].values()) == len(twilio.messages) > 0
    _assert_equal_to_simulation(stats.json(), simulated)

    local.stop()
    again = _serve(start_local, durable_db, twilio, tmp_path, clock)  # a restart: the counters were stored
    assert again.client.get("/v1/journeys/cart-abandonment/stats").json() == stats.json()


GOAL_JOURNEY = """\
id: checkout
category: transactional
trigger: {event: cart.abandoned}
goal: {event: order.placed, within: 2d}
steps:
  - {id: pause, type: wait, duration: 1h}
  - {id: remind, type: send, message: reminder, channels: [push]}
messages:
  reminder:
    push: {title: "Your cart", body: "Still there"}
"""


def test_a_goal_after_the_instance_completed_counts_once_within_its_window(
        start_local: StartLocal, journeys_dir: Path, tmp_path: Path) -> None:
    """Entered at T0, completed at T0+1h; an order 5 h after entry is one conversion, a second
    order nothing more; another person's order after the 2 days counts nothing."""
    (journeys_dir / "checkout.yaml").write_text(GOAL_JOURNEY, encoding="utf-8")
    local = start_local(db=f"sqlite:///{tmp_path / 'journey.db'}")
    for user in ("u1", "u2"):
        local.client.put(f"/v1/profiles/{user}", json={"push_token": f"tok-{user}", "timezone": "UTC"})
        assert post_events(local, {"type": "cart.abandoned", "user_id": user}).status_code == 202
    local.advance(2 * 3600)
    stats = local.client.get("/v1/journeys/checkout/stats").json()
    assert (stats["instances"]["completed"], stats["conversions"]) == (2, 0)

    local.advance(3 * 3600)  # 5 h after entry
    post_events(local, {"type": "order.placed", "user_id": "u1"})
    post_events(local, {"type": "order.placed", "user_id": "u1"})  # a second purchase
    assert local.client.get("/v1/journeys/checkout/stats").json()["conversions"] == 1
    local.advance(2 * 86400)  # past u2's two days
    post_events(local, {"type": "order.placed", "user_id": "u2"})
    post_events(local, {"type": "order.placed", "user_id": "u1"})
    stats = local.client.get("/v1/journeys/checkout/stats").json()
    assert (stats["conversions"], stats["instances"]["completed"], stats["instances"]["converted"]) == (1, 2, 0)



def test_a_window_picks_instances_by_their_hour_of_entry_and_an_empty_one_holds_none(
        start_local: StartLocal, journeys_dir: Path, tmp_path: Path) -> None:
    """`since`/`until` read whole hours of entry; a window that holds no hour (until at or before
    since: both valid instants) is an empty funnel, as the messages' filters give an empty page."""
    (journeys_dir / "checkout.yaml").write_text(GOAL_JOURNEY, encoding="utf-8")
    local = start_local(db=f"sqlite:///{tmp_path / 'journey.db'}")
    entered_at = local.clock.now()
    local.client.put("/v1/profiles/u1", json={"push_token": "tok-u1", "timezone": "UTC"})
    assert post_events(local, {"type": "cart.abandoned", "user_id": "u1"}).status_code == 202

    def entered(since: Any, until: Any) -> int:
        answer = local.client.get("/v1/journeys/checkout/stats", params={
            "since": format_time(since), "until": format_time(until)})
        assert answer.status_code == 200, answer.text
        return int(answer.json()["entered"])

    assert entered(entered_at, entered_at + timedelta(minutes=1)) == 1
    assert entered(entered_at + timedelta(hours=1), entered_at + timedelta(hours=2)) == 0
    hour = entered_at.replace(minute=0, second=0, microsecond=0)  # since taken down, until up: whole hours
    assert entered(hour, hour) == 0
    assert entered(entered_at + timedelta(hours=3), entered_at) == 0

SHIPPED_JOURNEY = """\
id: shipped
category: transactional
trigger: {event: order.shipped}
steps:
  - {id: tell, type: send, message: shipped, channels: [push]}
messages:
  shipped:
    push: {title: "On its way", body: "Your order shipped"}
"""


def _push(local: LocalServer) -> tuple[dict[str, int], dict[str, int]]:
    push = local.client.get("/v1/journeys/shipped/stats").json()["channels"]["push"]
    return {s: n for s, n in push["messages"].items() if n}, push["engagement"]


def test_a_receipt_in_the_batch_of_the_message_it_confirms_is_counted(
        start_local: StartLocal, durable_db: str, journeys_dir: Path, tmp_path: Path) -> None:
    """The send and its `push.delivered` in one POST (one transaction): the message is counted
    delivered, not queued, and stays so once the dispatcher has handed it over."""
    (journeys_dir / "shipped.yaml").write_text(SHIPPED_JOURNEY, encoding="utf-8")
    local = start_local(db=durable_db)
    local.client.put("/v1/profiles/u1", json={"push_token": "tok-u1", "timezone": "UTC"})
    batch = {"events": [{"type": "order.shipped", "user_id": "u1"}, {"type": "push.delivered", "user_id": "u1"}]}
    assert post_events(local, batch).status_code == 202
    assert _push(local)[0] == {"delivered": 1}
    local.settle()  # the dispatcher records the provider's `sent`, older news than the receipt
    assert _push(local)[0] == {"delivered": 1}
    assert [m["status"] for m in local.messages("u1")] == ["delivered"]


def test_a_late_delivered_never_moves_an_opened_message_back_and_an_open_counts_once(
        start_local: StartLocal, durable_db: str, journeys_dir: Path, tmp_path: Path) -> None:
    """opened, then a late delivered, then opened again: the message stays opened, delivered once
    in the messages, opened once in the engagement, as the person's engagement counts it."""
    (journeys_dir / "shipped.yaml").write_text(SHIPPED_JOURNEY, encoding="utf-8")
    local = start_local(db=durable_db)
    local.client.put("/v1/profiles/u1", json={"push_token": "tok-u1", "timezone": "UTC"})
    assert post_events(local, {"type": "order.shipped", "user_id": "u1"}).status_code == 202
    local.settle()
    [message] = local.messages("u1")
    for status in ("opened", "delivered", "opened"):
        event = {"type": f"push.{status}", "user_id": "u1", "properties": {"message_id": message["message_id"]}}
        assert post_events(local, event).status_code == 202
        local.advance(60)
        assert [m["status"] for m in local.messages("u1")] == ["opened"]
    assert _push(local) == ({"delivered": 1}, {"opened": 1})
    person = local.client.get("/v1/profiles/u1").json()["engagement"]["push"]
    assert (person["delivered"], person["engaged"]) == (1, 1)


def test_two_workers_on_one_postgresql_database_count_into_rows_of_their_own_and_agree(
        postgres_fresh_db_url: str, journeys_dir: Path) -> None:
    """Two engines (two workers' stores) enter 200 people each at once on one database: the
    stats read from either count all 400, each worker's engine added to rows of its own (no
    row two workers write), and a third process opening the database later reads the same."""
    from concurrent.futures import ThreadPoolExecutor

    from sqlalchemy import create_engine, text

    from engine.compiler import load_paths
    from engine.service import Engine
    from engine.stores.sql import SqlStore

    journeys = [j for j in load_paths([journeys_dir]) if j.id == "welcome"]
    stores = [SqlStore(postgres_fresh_db_url) for _ in range(2)]
    clock = VirtualClock(parse_time("2026-01-05T10:00:00Z", "at"))
    for n, store in enumerate(stores):
        assert store.partitions is not None
        store.partitions.worker = f"w{n}"

    def enter(n: int) -> None:
        engine = Engine(journeys, load_policy(), stores[n], clock, counter_ids(f"w{n}-i"))
        for batch in range(4):
            engine.ingest_many([{"type": "account.created", "user_id": f"w{n}-u{batch}-{i}"} for i in range(50)])

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(enter, range(2)))
    reader = SqlStore(postgres_fresh_db_url)
    for store in (*stores, reader):
        rows = dict(((p, name), v) for p, name, v in store.views.journey_counts("welcome", None, None, None))
        assert (rows[("", "entered")], rows[("", "step:pause:waiting")], rows[("", "skip:push:no_address")]) == \
            (400, 400, 400)
    database = create_engine(postgres_fresh_db_url)
    with database.connect() as conn:
        writers = {w for (w,) in conn.execute(text("SELECT DISTINCT writer FROM journey_counters"))}
        shared = conn.execute(text("SELECT count(*) FROM (SELECT journey_id, version, hour, path, name FROM "
                                   "journey_counters GROUP BY 1, 2, 3, 4, 5 HAVING count(*) > 2) AS s")).scalar()
    database.dispose()
    assert writers == {"w0", "w1"} and shared == 0
    for store in (*stores, reader):
        store.close()
