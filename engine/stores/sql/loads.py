"""Reading users' state in bulk: a few queries for a whole batch of users, each filling the
`UserState` of every user it finds (profiles with their consent ledgers and engagement, active instances and
each journey's latest entry, recent sends and the latest message per channel)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from channels import ConsentRecord, Profile, SentRecord
from channels.engagement import engagement_from_stored
from channels.preferences import Preferences
from channels.profile import RcsCapability
from engine.state import Instance
from engine.stores.sql.cache import UserState
from engine.stores.sql.driver import Driver
from engine.stores.sql.schema import aware, chunks


def load_users(db: Driver, users: Sequence[str], since: datetime, routed: bool = False) -> dict[str, UserState]:
    """The state of these users as committed, their sends from `since` on; `routed`: on Citus."""
    states = {u: UserState(since) for u in users}
    load_profiles(db, states, routed=routed)
    load_instances(db, states)
    load_sends(db, states, since)
    return states


def profiles_of(db: Driver, user_ids: Sequence[str], numbers: dict[str, datetime | None] | None = None,
                routed: bool = False) -> dict[str, Profile]:
    """Just the profiles (with their consent ledgers) of these users, read as committed;
    `numbers`: filled by the same statements with whether each profile's phone number is
    suppressed (number -> since, None: not), which the dispatcher asks next; `routed`: on Citus."""
    states = {u: UserState(datetime.min) for u in user_ids}
    for chunk in chunks(list(states)):
        load_profiles(db, {u: states[u] for u in chunk}, numbers, routed)
    return {u: state.profile for u, state in states.items() if state.profile is not None}


_CONSENTS = ("SELECT user_id, channel, category, granted, source, at FROM consents c WHERE user_id IN ({in}) "
             "AND NOT EXISTS (SELECT 1 FROM erasures e WHERE e.user_id = c.user_id AND e.consents_through >= c.id) "
             "ORDER BY user_id, seq")  # rows kept as proof by an erasure are no longer the person's consent
_WITH_LEDGERS = (  # PostgreSQL: each profile with its ledger (as `_CONSENTS`) and its number's suppression
    "SELECT p.user_id, p.doc, p.engagement, p.phone, s.since, (SELECT json_agg(json_build_array(c.channel, "
    "c.category, c.granted, c.source, c.at) ORDER BY c.seq) FROM consents c WHERE c.user_id = p.user_id "
    "AND NOT EXISTS (SELECT 1 FROM erasures e WHERE e.user_id = c.user_id AND e.consents_through >= c.id)) "
    "FROM profiles p LEFT JOIN suppressed_numbers s ON s.number = p.phone WHERE p.user_id = ANY(%b)")
_SUPPRESSED = ("SELECT p.user_id, p.doc, p.engagement, p.phone, s.since FROM profiles p "
               "LEFT JOIN suppressed_numbers s ON s.number = p.phone WHERE p.user_id IN ({in})")


def load_profiles(db: Driver, states: dict[str, UserState], numbers: dict[str, datetime | None] | None = None,
                  routed: bool = False) -> None:
    """The users' profiles with their consent ledgers: on PostgreSQL one statement (a second only
    for users with a ledger and no profile row); on SQLite, and on Citus (`routed`), one for the
    ledgers and one for the profiles, as Citus routes a statement to the users' shard only if each
    table's own condition names them, and those conditions in the ledgers' subquery cost more
    than the statement they save. `numbers`: see `profiles_of`."""
    if db.sqlite or routed:
        ledgers = _ledgers(db, list(states))
        for user_id, doc, engagement, phone, since in db.where_in(_SUPPRESSED, list(states)):
            if numbers is not None and phone:
                numbers[str(phone)] = db.read_time(since) if since is not None else None
            states[user_id].profile = stored_profile(db.read_json(doc), tuple(ledgers.pop(user_id, ())),
                                                     db.read_json(engagement))
    else:
        ledgers = _with_ledgers(db, states, numbers)
    for user_id, records in ledgers.items():  # consents given before any profile was stored
        states[user_id].profile = Profile(user_id, consents=tuple(records))
    for state in states.values():
        state.consents_stored = len(state.profile.consents) if state.profile else 0


def _ledgers(db: Driver, users: list[str]) -> dict[str, list[ConsentRecord]]:
    ledgers: dict[str, list[ConsentRecord]] = {}
    times: dict[Any, datetime] = {}  # a ledger's timestamps repeat (imports, STOP campaigns): parse each once
    for user_id, channel, category, granted, source, at in db.where_in(_CONSENTS, users):
        when = times.get(at)
        if when is None:
            when = times[at] = db.read_time(at)
        ledgers.setdefault(user_id, []).append(ConsentRecord(channel, category, bool(granted), source, when))
    return ledgers


def _with_ledgers(db: Driver, states: dict[str, UserState], numbers: dict[str, datetime | None] | None,
                  ) -> dict[str, list[ConsentRecord]]:
    """PostgreSQL: the profiles with their ledgers filled in; returns the ledgers of users without a
    profile row, read apart (only if there are any such users)."""
    users = list(states)
    times: dict[str, datetime] = {}
    found: set[str] = set()
    for user_id, doc, engagement, phone, since, ledger in db.rows(_WITH_LEDGERS, [users]):
        if numbers is not None and phone:
            numbers[str(phone)] = db.read_time(since) if since is not None else None
        records = tuple(ConsentRecord(channel, category, bool(granted), source, _time(at, times))
                        for channel, category, granted, source, at in ledger or ())
        states[user_id].profile = stored_profile(db.read_json(doc), records, db.read_json(engagement))
        found.add(user_id)
    missing = [u for u in users if u not in found]
    return _ledgers(db, missing) if missing else {}


def _time(text: str, times: dict[str, datetime]) -> datetime:
    """A timestamp of a ledger read as JSON (ISO 8601), in UTC; each distinct one parsed once."""
    when = times.get(text)
    if when is None:
        when = times[text] = aware(datetime.fromisoformat(text))
    return when


def load_instances(db: Driver, states: dict[str, UserState]) -> None:
    """Active instances, and each journey's (and key's) latest entry for the re-entry rules:
    an active instance is always its journey's latest entry, so it sorts last on a tie."""
    query = ('SELECT user_id, journey_id, "key", instance_id, entered_at, '
             "CASE WHEN status = 'active' THEN doc END FROM instances WHERE user_id IN ({in}) "
             "ORDER BY entered_at, CASE WHEN status = 'active' THEN 1 ELSE 0 END")
    for user_id, journey_id, key, instance_id, entered_at, doc in db.where_in(query, list(states)):
        state = states[user_id]
        state.entries[(journey_id, entry_key(key))] = (instance_id, db.read_time(entered_at))
        if doc is not None:
            state.active[instance_id] = Instance.from_dict(db.read_json(doc))


def load_sends(db: Driver, states: dict[str, UserState], since: datetime) -> None:
    query = ("SELECT user_id, channel, category, at, message_id, journey_id FROM messages "
             "WHERE user_id IN ({in}) AND at >= " + db.mark + " ORDER BY at")
    for user_id, channel, category, at, message_id, journey in db.where_in(query, list(states), [db.time(since)]):
        state = states[user_id]
        state.sends.append(SentRecord(channel, category, db.read_time(at), journey))
        state.latest[channel] = message_id


def entry_key(key: str | None) -> str:
    """Entry keys are part of a primary key: None is '', a real key is prefixed so it never is."""
    return "" if key is None else "=" + key


def stored_profile(doc: dict[str, Any], consents: tuple[ConsentRecord, ...],
                   engagement: dict[str, Any] | None = None) -> Profile:
    """A profile read back: it was validated when it came in, so it is not parsed again."""
    return Profile(doc["user_id"], doc.get("timezone"), doc.get("email"), doc.get("phone"), doc.get("push_token"),
                   bool(doc.get("rcs_capable")), doc.get("attributes") or {}, consents,
                   RcsCapability.stored(doc.get("rcs_capability")), engagement_from_stored(engagement),
                   doc.get("locale"), Preferences.from_dict(doc.get("preferences")))
