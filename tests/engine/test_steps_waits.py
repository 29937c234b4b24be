"""Waits that know about time and about events that came early: `wait_for` on several events and
with a look-back, `wait ... if_past`, a send's `expires`, calendar offsets across a daylight-saving
change, and `now` in conditions (run plain and with state round-trips)."""

from __future__ import annotations

import pytest

from channels import load_policy
from tests.engine.conftest import Simulate, event, profile, sent, statuses

HEAD = """
id: orders
category: transactional
trigger: {event: order.placed}
"""
MESSAGES = """
messages:
  thanks: {sms: {text: "Thanks for paying"}}
  remind: {sms: {text: "Your order is waiting for payment"}}
  sorry: {sms: {text: "Order cancelled"}}
"""
PAY = HEAD + """
steps:
  - {id: settle, type: wait, duration: 30m}
  - id: paid
    type: wait_for
    event: order.paid
    LOOKBACK
    timeout: 1d
    on_event: thanks
    on_timeout: remind
  - {id: remind, type: send, message: remind, next: done}
  - {id: thanks, type: send, message: thanks}
  - {id: done, type: exit}
""" + MESSAGES
SMS = "sms:transactional"


def _at(minute: int) -> str:
    return f"2026-01-05T{10 + minute // 60:02d}:{minute % 60:02d}:00Z"


def test_lookback_takes_a_payment_that_arrived_twenty_minutes_before_the_wait_began(simulate: Simulate) -> None:
    """Paid at 10:10, during the 30-minute wait; the wait_for begins at 10:30 and takes it then."""
    result = simulate(PAY.replace("LOOKBACK", "lookback: 1h"),
                      [event("order.placed", "u1", _at(0)), event("order.paid", "u1", _at(10))], [profile("u1", SMS)])
    assert sent(result) == [("u1", "sms", _at(30))]
    assert result["messages"][0]["step"] == "thanks"
    assert result["instances"][0]["path"] == ["settle", "paid", "thanks", "done"]


def test_without_lookback_the_early_payment_is_missed_as_before(simulate: Simulate) -> None:
    result = simulate(PAY.replace("LOOKBACK", ""),
                      [event("order.placed", "u1", _at(0)), event("order.paid", "u1", _at(10))], [profile("u1", SMS)])
    assert [m["step"] for m in result["messages"]] == ["remind"]
    assert sent(result) == [("u1", "sms", "2026-01-06T10:30:00Z")]


def test_lookback_does_not_reach_further_back_than_it_says(simulate: Simulate) -> None:
    """A 10-minute look-back at 10:30 does not see a payment made at 10:10."""
    result = simulate(PAY.replace("LOOKBACK", "lookback: 10m"),
                      [event("order.placed", "u1", _at(0)), event("order.paid", "u1", _at(10))], [profile("u1", SMS)])
    assert [m["step"] for m in result["messages"]] == ["remind"]


def test_a_looked_back_event_counts_once(simulate: Simulate) -> None:
    """Two waits in a row for the same event, each with a look-back: one payment ends the first only."""
    journey = HEAD + """
steps:
  - {id: settle, type: wait, duration: 30m}
  - {id: first, type: wait_for, event: order.paid, lookback: 1h, timeout: 1h, on_timeout: done}
  - {id: second, type: wait_for, event: order.paid, lookback: 2h, timeout: 1h, on_event: thanks, on_timeout: remind}
  - {id: remind, type: send, message: remind, next: done}
  - {id: thanks, type: send, message: thanks}
  - {id: done, type: exit}
""" + MESSAGES
    result = simulate(journey, [event("order.placed", "u1", _at(0)), event("order.paid", "u1", _at(10))],
                      [profile("u1", SMS)])
    assert result["instances"][0]["path"] == ["settle", "first", "second", "remind", "done"]
    assert sent(result) == [("u1", "sms", _at(90))]


def test_a_lookback_never_takes_the_event_that_entered_the_instance(simulate: Simulate) -> None:
    """Waiting for another update after the first: the first (which entered) does not count."""
    journey = """
id: again
category: transactional
trigger: {event: order.updated}
steps:
  - {id: settle, type: wait, duration: 10m}
  - {id: more, type: wait_for, event: order.updated, lookback: 1h, timeout: 1h, on_event: thanks, on_timeout: done}
  - {id: thanks, type: send, message: thanks}
  - {id: done, type: exit}
""" + MESSAGES
    alone = simulate(journey, [event("order.updated", "u1", _at(0))], [profile("u1", SMS)])
    assert alone["instances"][0]["path"] == ["settle", "more", "done"]
    second = simulate(journey, [event("order.updated", "u1", _at(0)), event("order.updated", "u1", _at(5), n=2)],
                      [profile("u1", SMS)])
    assert second["instances"][0]["path"] == ["settle", "more", "thanks", "done"]
    assert sent(second) == [("u1", "sms", _at(10))]


CHOICE = HEAD + """
steps:
  - id: outcome
    type: wait_for
    events: [order.paid, order.cancelled]
    timeout: 1d
    on_event: {order.paid: thanks, order.cancelled: sorry}
    on_timeout: remind
  - {id: remind, type: send, message: remind, next: done}
  - {id: thanks, type: send, message: thanks, next: done}
  - {id: sorry, type: send, message: sorry, next: done}
  - {id: done, type: exit}
""" + MESSAGES


@pytest.mark.parametrize("spelling", ["events: [", "event: ["])  # a list under `event:` (RCS's form) reads the same
def test_events_branch_on_whichever_comes_first(simulate: Simulate, spelling: str) -> None:
    result = simulate(CHOICE.replace("events: [", spelling), [
        event("order.placed", "u1", _at(0)), event("order.cancelled", "u1", _at(5)), event("order.paid", "u1", _at(6)),
        event("order.placed", "u2", _at(0)), event("order.paid", "u2", _at(7)), event("order.cancelled", "u2", _at(8)),
        event("order.placed", "u3", _at(0)),
    ], [profile("u1", SMS), profile("u2", SMS), profile("u3", SMS)])
    paths = {i["user_id"]: i["path"] for i in result["instances"]}
    assert paths == {"u1": ["outcome", "sorry", "done"], "u2": ["outcome", "thanks", "done"],
                     "u3": ["outcome", "remind", "done"]}
    assert sent(result) == [("u1", "sms", _at(5)), ("u2", "sms", _at(7)), ("u3", "sms", "2026-01-06T10:00:00Z")]


def test_one_on_event_for_several_events_reads_event_type(simulate: Simulate) -> None:
    journey = HEAD + """
steps:
  - {id: outcome, type: wait_for, events: [order.paid, order.cancelled], timeout: 1d, on_timeout: done}
  - id: which
    type: branch
    branches: [{when: "event.type == 'order.paid'", next: thanks}]
    default: sorry
  - {id: thanks, type: send, message: thanks, next: done}
  - {id: sorry, type: send, message: sorry, next: done}
  - {id: done, type: exit}
""" + MESSAGES
    result = simulate(journey, [event("order.placed", "u1", _at(0)), event("order.cancelled", "u1", _at(5)),
                                event("order.placed", "u2", _at(0)), event("order.paid", "u2", _at(5))],
                      [profile("u1", SMS), profile("u2", SMS)])
    assert {i["user_id"]: i["path"][2] for i in result["instances"]} == {"u1": "sorry", "u2": "thanks"}


APPOINTMENT = """
id: appointment
category: transactional
trigger: {event: appointment.booked}
steps:
  - {id: day_before, type: wait, until: "event.properties.starts_at", OFFSET, IF_PAST}
  - {id: remind, type: send, message: remind, channels: [sms], expires: "event.properties.starts_at"}
  - {id: after, type: send, message: after, channels: [sms]}
messages:
  remind: {sms: {text: "See you tomorrow"}}
  after: {sms: {text: "Booked"}}
"""


def _appointment(offset: str = "offset: -1d", if_past: str = "if_past: go") -> str:
    return APPOINTMENT.replace("OFFSET", offset).replace("IF_PAST", if_past)


def test_if_past_exit_sends_nothing_and_ends_expired(simulate: Simulate) -> None:
    """Booked at 10:00 for 11:00 the same day: the day before has passed."""
    result = simulate(_appointment(if_past="if_past: exit"),
                      [event("appointment.booked", "u1", _at(0), starts_at=_at(60))], [profile("u1", SMS)])
    assert result["messages"] == []
    assert result["instances"] == [{"user_id": "u1", "key": None, "status": "exited", "path": ["day_before"],
                                    "reason": "expired"}]


def test_if_past_go_still_goes_on_at_once_and_if_past_a_step_goes_there(simulate: Simulate) -> None:
    go = simulate(_appointment(), [event("appointment.booked", "u1", _at(0), starts_at=_at(60))],
                  [profile("u1", SMS)])
    assert [(m["step"], m["at"]) for m in go["messages"]] == [("remind", _at(0)), ("after", _at(0))]
    jump = simulate(_appointment(if_past="if_past: after"),
                    [event("appointment.booked", "u1", _at(0), starts_at=_at(60))], [profile("u1", SMS)])
    assert [m["step"] for m in jump["messages"]] == ["after"]


def test_a_send_whose_moment_has_passed_is_skipped_expired_and_the_instance_goes_on(simulate: Simulate) -> None:
    """Booked after the appointment began (the wait goes on at once): the reminder is skipped."""
    result = simulate(_appointment(), [event("appointment.booked", "u1", _at(30), starts_at=_at(0))],
                      [profile("u1", SMS)])
    assert [m["step"] for m in result["messages"]] == ["after"]
    assert [(s["step"], s["reason"], s["detail"]) for s in result["skipped"]] == [
        ("remind", "expired", f"expired at {_at(0)}")]
    assert statuses(result) == {"u1": "completed"}


def test_expires_after_skips_a_send_that_quiet_hours_put_off_too_long(simulate: Simulate) -> None:
    """A marketing SMS at 22:00 waits for quiet hours to end at 08:00: with expires_after: 2h it is
    skipped then; without, it goes out at 08:00."""
    journey = """
id: flash
category: marketing
trigger: {event: sale.started}
steps:
  - {id: tell, type: send, message: sale, channels: [sms]EXPIRES}
messages:
  sale: {sms: {text: "Sale on"}}
"""
    events = [event("sale.started", "u1", "2026-01-05T22:00:00Z")]
    late = simulate(journey.replace("EXPIRES", ", expires_after: 2h"), events, [profile("u1", "sms:marketing")])
    assert late["messages"] == []
    assert [(s["reason"], s["at"]) for s in late["skipped"]] == [("expired", "2026-01-06T08:00:00Z")]
    kept = simulate(journey.replace("EXPIRES", ""), events, [profile("u1", "sms:marketing")])
    assert sent(kept) == [("u1", "sms", "2026-01-06T08:00:00Z")]


def test_calendar_offset_keeps_the_local_time_across_the_dst_change(simulate: Simulate) -> None:
    """10:00 in Paris on 2026-03-29 (summer time from that night) is 08:00Z. The day before at
    10:00 local is 09:00Z; 24 hours before is 08:00Z, 09:00 local."""
    booked = [event("appointment.booked", "u1", "2026-03-20T09:00:00Z", starts_at="2026-03-29T10:00:00+02:00")]
    people = [profile("u1", SMS, timezone="Europe/Paris")]
    calendar = simulate(_appointment(offset="offset: {days: -1}"), booked, people)
    assert sent(calendar)[0] == ("u1", "sms", "2026-03-28T09:00:00Z")
    flag = simulate(_appointment(offset="offset: -1d, calendar: true"), booked, people)
    assert sent(flag)[0] == ("u1", "sms", "2026-03-28T09:00:00Z")
    hours = simulate(_appointment(offset="offset: -1d"), booked, people)
    assert sent(hours)[0] == ("u1", "sms", "2026-03-28T08:00:00Z")


def test_now_is_the_engines_clock_in_conditions(simulate: Simulate) -> None:
    """On the virtual clock, `now` is the time of the event being handled; compared by instant,
    so 10:30+02:00 (08:30Z) is before 09:00Z although it reads later as text."""
    journey = HEAD + """
steps:
  - id: check
    type: branch
    branches: [{when: "event.properties.starts_at > now", next: thanks}]
    default: sorry
  - {id: thanks, type: send, message: thanks, next: done}
  - {id: sorry, type: send, message: sorry, next: done}
  - {id: done, type: exit}
""" + MESSAGES
    result = simulate(journey, [
        event("order.placed", "u1", "2026-01-05T09:00:00Z", starts_at="2026-01-05T10:30:00+02:00"),
        event("order.placed", "u2", "2026-01-05T09:00:00Z", starts_at="2026-01-05T09:30:00Z"),
    ], [profile("u1", SMS), profile("u2", SMS)], load_policy())
    assert {i["user_id"]: i["path"][1] for i in result["instances"]} == {"u1": "sorry", "u2": "thanks"}
