"""Capability looked up, not assumed: before the first RCS send to a number the engine asks a provider
that can tell, caches the answer on the profile (`rcs_capability`) for the provider's TTL, and decides
with it before anything is sent; the rcs decision says whether the capability was known (and from whom)
or assumed. A provider that cannot tell now leaves it assumed and is not asked again at once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from channels import Profile, load_policy
from engine.clock import VirtualClock
from engine.compiler import load_text
from engine.events import Event
from engine.host.capability import ProviderCapability
from engine.ports import HostStore
from engine.service import Engine
from engine.stores.memory import MemoryStore
from engine.stores.sql import SqlStore

T0 = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)
PHONE = "+14155550100"
JOURNEY = """\
id: ready
category: transactional
trigger: {event: ready}
steps:
  - {id: tell, type: send, message: ready, channels: [rcs, sms], strategy: first}
messages:
  ready:
    rcs: {text: "Your table is ready", suggestions: [{reply: "On my way", postback: coming}]}
    sms: {text: "Your table is ready"}
"""


class Answers:
    """A capability check that answers from a table (a number it does not know: it cannot tell)."""

    def __init__(self, answers: dict[str, bool], ttl: timedelta = timedelta(hours=24)) -> None:
        self.name = "rbm-test"
        self.capability_ttl = ttl
        self.answers = answers
        self.asked: list[str] = []

    def check_rcs(self, phone: str) -> bool | None:
        self.asked.append(phone)
        return self.answers.get(phone)


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> HostStore:
    return MemoryStore() if request.param == "memory" else SqlStore(f"sqlite:///{tmp_path}/journey.db")


def _engine(store: HostStore, answers: Answers, clock: VirtualClock, rcs_capable: bool = True) -> Engine:
    engine = Engine([load_text(JOURNEY, "ready.yaml")], load_policy(), store, clock)
    engine.capabilities = ProviderCapability([answers])
    with store.transaction() as tx:
        tx.put_profile(Profile.from_dict({"user_id": "u1", "phone": PHONE, "rcs_capable": rcs_capable, "consents": [
            {"channel": c, "category": "transactional", "granted": True, "at": "2026-01-01T00:00:00Z"}
            for c in ("rcs", "sms")]}))
    return engine


def _sends(store: HostStore, engine: Engine, n: int) -> tuple[str, dict[str, object]]:
    engine.ingest(Event("ready", "u1", engine.clock.now(), {}, f"e{n}"))
    with store.transaction() as tx:
        latest = {c: tx.latest_message("u1", c) for c in ("rcs", "sms")}
    channel = max((c for c in latest if latest[c]), key=lambda c: str(latest[c]))
    [message] = [m for m in store.views.messages_for_user("u1") if m["message_id"] == latest[channel]]
    return channel, next(d for d in message["decisions"] if d["channel"] == "rcs")


def _cached(store: HostStore) -> dict[str, object] | None:
    with store.transaction() as tx:
        profile = tx.get_profile("u1")
    assert profile is not None
    return profile.to_dict()["rcs_capability"]


def test_not_capable_falls_back_to_sms_decided_before_sending_and_the_answer_is_cached(store: HostStore) -> None:
    clock = VirtualClock(T0)
    answers = Answers({PHONE: False})
    engine = _engine(store, answers, clock)  # the profile says capable: assumed, until a provider answers
    channel, rcs = _sends(store, engine, 1)
    assert channel == "sms"
    assert rcs == {"channel": "rcs", "eligible": False, "reason": "not_capable", "fallback": "sms",
                   "capability": "known", "capability_source": "rbm-test"}
    assert answers.asked == [PHONE]
    assert _cached(store) == {"capable": False, "checked_at": "2026-01-05T15:00:00Z", "source": "rbm-test"}
    clock.advance_to(T0 + timedelta(hours=23))
    assert _sends(store, engine, 2)[0] == "sms"
    assert answers.asked == [PHONE]  # within the TTL: the cached answer decides


def test_a_stale_answer_is_asked_again_and_a_capable_answer_sends_rcs(store: HostStore) -> None:
    clock = VirtualClock(T0)
    answers = Answers({PHONE: False})
    engine = _engine(store, answers, clock)
    _sends(store, engine, 1)
    answers.answers[PHONE] = True  # the person switched RCS on
    clock.advance_to(T0 + timedelta(hours=24))
    channel, rcs = _sends(store, engine, 2)
    assert channel == "rcs" and answers.asked == [PHONE, PHONE]
    assert rcs == {"channel": "rcs", "eligible": True, "reason": None, "capability": "known",
                   "capability_source": "rbm-test"}
    assert _cached(store) == {"capable": True, "checked_at": "2026-01-06T15:00:00Z", "source": "rbm-test"}


def test_a_provider_that_cannot_tell_leaves_it_assumed_and_is_not_asked_again_at_once(store: HostStore) -> None:
    clock = VirtualClock(T0)
    answers = Answers({})  # it cannot tell (an error, a timeout)
    engine = _engine(store, answers, clock)
    channel, rcs = _sends(store, engine, 1)
    assert channel == "rcs" and rcs["capability"] == "assumed" and "capability_source" not in rcs
    clock.advance_to(T0 + timedelta(minutes=1))
    _sends(store, engine, 2)
    assert answers.asked == [PHONE] and _cached(store) is None
    clock.advance_to(T0 + timedelta(minutes=6))
    _sends(store, engine, 3)
    assert answers.asked == [PHONE, PHONE]


def test_no_rcs_candidate_asks_nothing(store: HostStore) -> None:
    clock = VirtualClock(T0)
    answers = Answers({PHONE: True})
    engine = _engine(store, answers, clock)
    sms_only = load_text(JOURNEY.replace("[rcs, sms]", "[sms]").replace("id: ready", "id: sms-only")
                         .replace("event: ready", "event: ready.sms"), "sms.yaml")
    engine.load(sms_only)
    engine.ingest(Event("ready.sms", "u1", T0, {}, "e1"))
    assert answers.asked == [] and _cached(store) is None
