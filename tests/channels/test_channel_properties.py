"""Properties of select() over random profiles, ledgers, contents and candidates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

import channels
from channels import (
    CHANNELS,
    ConsentRecord,
    Profile,
    SendRequest,
    SentRecord,
    consent_reason,
    load_policy,
    select,
)

POLICY = load_policy()
NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
CATEGORIES = ("marketing", "transactional")

records = st.builds(
    ConsentRecord,
    channel=st.sampled_from(CHANNELS),
    category=st.sampled_from(CATEGORIES),
    granted=st.booleans(),
    source=st.just("test"),
    at=st.integers(0, 10).map(lambda d: NOW - timedelta(days=d)),
)
profiles = st.builds(
    Profile,
    user_id=st.just("u1"),
    timezone=st.sampled_from([None, "America/New_York", "Asia/Tokyo"]),
    email=st.sampled_from([None, "u@example.com"]),
    phone=st.sampled_from([None, "+12125550123", "+4930123456"]),
    push_token=st.sampled_from([None, "tok"]),
    rcs_capable=st.booleans(),
    consents=st.lists(records, max_size=12).map(tuple),
)
content = st.fixed_dictionaries({"text": st.text(max_size=200)}, optional={"media_url": st.just("https://x/y.png")})
contents = st.dictionaries(st.sampled_from(CHANNELS), content)
sent = st.lists(
    st.builds(
        SentRecord,
        channel=st.sampled_from(CHANNELS),
        category=st.sampled_from(CATEGORIES),
        at=st.integers(0, 200).map(lambda h: NOW - timedelta(hours=h)),
    ),
    max_size=15,
)
requests = st.builds(
    SendRequest,
    profile=profiles,
    category=st.sampled_from(CATEGORIES),
    urgency=st.sampled_from(["low", "normal", "high", "critical"]),
    candidates=st.lists(st.sampled_from(CHANNELS), unique=True, max_size=7).map(tuple),
    contents=contents,
    template_errors=st.dictionaries(st.sampled_from(CHANNELS), st.just("undefined"), max_size=2),
    sent=sent,
    now=st.just(NOW),
    strategy=st.sampled_from([None, "first", "cheapest", "all", "escalate"]),
)


@settings(max_examples=300)
@given(requests)
def test_every_candidate_is_decided_exactly_once_in_order(request: SendRequest) -> None:
    decisions = select(request, POLICY).decisions
    assert tuple(d.channel for d in decisions) == request.candidates
    assert all(d.eligible == (d.reason is None) for d in decisions)


@settings(max_examples=300)
@given(requests)
def test_no_channel_is_chosen_without_consent(request: SendRequest) -> None:
    for delivery in select(request, POLICY).deliveries:
        assert consent_reason(request.profile.consents, delivery.channel, request.category) is None


@settings(max_examples=300)
@given(requests)
def test_no_channel_is_delivered_twice_and_only_eligible_ones(request: SendRequest) -> None:
    selection = select(request, POLICY)
    chosen = [d.channel for d in selection.deliveries]
    assert len(chosen) == len(set(chosen))
    usable = {d.channel for d in selection.decisions if d.eligible}
    usable |= {d.fallback for d in selection.decisions if d.fallback}
    assert set(chosen) <= usable
    if selection.strategy in ("first", "cheapest"):
        assert len(chosen) <= 1


def test_public_api_names_exist() -> None:
    missing = [name for name in channels.__all__ if not hasattr(channels, name)]
    assert missing == []
    assert len(channels.__all__) == len(set(channels.__all__))
