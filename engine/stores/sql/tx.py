"""One SQL transaction as the engine sees it (`Tx`): one class per role of the port over the
`TxState` they share (engine/stores/sql/tx_state.py).

`prefetch` loads what the engine will read for a batch of users in a few queries; writes
are buffered and flushed with executemany at the end. With a `StateCache` committed per-user
state stays in memory between transactions, so a user seen before costs no query at all on
SQLite (the only writer) and one stamp check a batch on PostgreSQL (tx_state.py); a
transaction that fails evicts every user it touched, so the cache never holds anything the
database does not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime

from channels import Profile, SentRecord
from channels.engagement import Engagement
from engine.events import Event
from engine.ports import EntryHistory
from engine.state import Instance, Send, Skip, TimerRef, Trace
from engine.stats import Key, merge
from engine.stores.sql.claims import (
    claim_queued,
    claim_shard_timers,
    due_shard_timers,
    due_timer_users,
    due_timers,
    inbox_rows,
    quarantine_queued,
)
from engine.stores.sql.loads import entry_key
from engine.stores.sql.recent import SqlRecent
from engine.stores.sql.runs import SqlRunChunks
from engine.stores.sql.schema import chunks
from engine.stores.sql.tx_state import TxState
from engine.stores.sql.writes import delete_timers, statements


class SqlUsers(TxState):
    """`UsersTx`: reads from the loaded state (a query only for what no prefetch brought), writes
    to it and to the buffer, so a transaction sees its own writes."""

    def get_profile(self, user_id: str) -> Profile | None:
        return self._state(user_id).profile

    def put_profile(self, profile: Profile) -> None:
        state = self._state(profile.user_id)
        if profile.engagement is None and state.profile is not None and state.profile.engagement is not None:
            profile = replace(profile, engagement=state.profile.engagement)  # none given: the stored counts stay
        for seq, record in enumerate(profile.consents[state.consents_stored:], state.consents_stored):
            self.writes.consents.append((profile.user_id, seq, record.channel, record.category, record.granted,
                                         record.source, self.db.time(record.at)))
        state.consents_stored = max(state.consents_stored, len(profile.consents))
        state.profile = profile
        self.writes.profiles[profile.user_id] = profile

    def put_engagement(self, user_id: str, engagement: Engagement) -> None:
        state = self._state(user_id)
        if state.profile is None:
            return
        state.profile = replace(state.profile, engagement=engagement)
        if user_id in self.writes.profiles:
            self.writes.profiles[user_id] = state.profile
        self.writes.engagement[user_id] = engagement

    def active_instances(self, user_id: str) -> Sequence[Instance]:
        return list(self._state(user_id).active.values())

    def get_instance(self, instance_id: str) -> Instance | None:
        self.load_instances([instance_id])
        return self.loaded.get(instance_id)

    def active_instances_of(self, journey_id: str, limit: int) -> Sequence[Instance]:
        db = self.db
        rows = db.rows(f"SELECT doc FROM instances WHERE journey_id = {db.mark} AND status = 'active' "
                       f"LIMIT {int(limit)}", [journey_id])
        found = [Instance.from_dict(db.read_json(doc)) for (doc,) in rows]
        for instance in found:
            self.loaded.setdefault(instance.instance_id, instance)
        return found

    def entry_history(self, journey_id: str, user_id: str, key: str | None) -> EntryHistory | None:
        state = self._state(user_id)
        last = state.entries.get((journey_id, entry_key(key)))
        return None if last is None else EntryHistory(last[0] in state.active, last[1])

    def recent_sends(self, user_id: str, since: datetime) -> Sequence[SentRecord]:
        sends = self._state(user_id).sends
        return sends if not sends or sends[0].at >= since else [s for s in sends if s.at >= since]

    def latest_message(self, user_id: str, channel: str) -> str | None:
        state = self._state(user_id)
        if channel not in state.latest:
            mark = self.db.mark
            rows = self.db.rows("SELECT message_id FROM messages WHERE user_id = " + mark + " AND channel = " + mark
                                + " ORDER BY at DESC LIMIT 1", [user_id, channel])
            state.latest[channel] = next((r[0] for r in rows), None)
        return state.latest[channel]

    def set_message_status(self, user_id: str, message_id: str, status: str, at: datetime) -> None:
        self.writes.statuses.append((status, self.db.time(at), user_id, message_id))

    def suppressed_since(self, phone: str) -> datetime | None:
        return self.suppressions.since(phone)

    def record_suppression(self, phone: str, keyword: str, at: datetime, source: str) -> None:
        self.suppressions.record(phone, keyword, at, source)


class SqlInbox(TxState):
    """`InboxTx`: idempotency keys and the inbox (claims.py holds the statements)."""

    def remember_events(self, event_ids: Sequence[str]) -> set[str]:
        unique = list(dict.fromkeys(event_ids))
        if self.dialect == "sqlite":
            return self._remember_single_writer(unique)
        if not unique:
            return set()
        rows = self.db.rows("INSERT INTO event_ids (id) SELECT unnest(%b::varchar[]) ON CONFLICT DO NOTHING "
                            "RETURNING id", [unique])  # one statement text: nothing compiled per batch
        return {r[0] for r in rows}

    def _remember_single_writer(self, unique: list[str]) -> set[str]:
        """SQLite has one writer at a time: look the ids up, then insert the new ones in one executemany
        (cheaper than a many-row INSERT ... RETURNING, which is compiled afresh for every size)."""
        seen: set[str] = set()
        for chunk in chunks(unique):
            seen.update(r[0] for r in self.db.where_in("SELECT id FROM event_ids WHERE id IN ({in})", chunk))
        new = [i for i in unique if i not in seen]
        self.db.write(statements(self.db)["event_ids"], [(i,) for i in new])
        return set(new)

    def queue_events(self, events: Sequence[Event]) -> None:
        self.db.write(statements(self.db)["inbox"], inbox_rows(self.db, events, self._part))

    def claim_queued(self, limit: int) -> list[Event]:
        """The oldest queued events (of this worker's partitions; on Citus, of one of them),
        deleted in this transaction."""
        return claim_queued(self.db, self.owner, limit, one_partition=self.partitioning.shards)

    def quarantine_queued(self, error: str) -> str | None:
        return quarantine_queued(self.db, self.owner, error)


class SqlTimers(TxState):
    """`TimersTx`: due timers of this worker's partitions, claimed in batches."""

    def due_timer_users(self, now: datetime, limit: int) -> set[str]:
        """From the timers' own user column (no instance read); a timer from before schema 11
        has none, and its instance says."""
        if self.shard_reads is not None:  # Citus: the shards the claims will take (see `claim_shard_timers`)
            return {user for user, _ in due_shard_timers(self.shard_reads, self.owner, now, limit, ahead=True)}
        users, unknown = due_timer_users(self.db, self.owner, now, limit)
        if unknown:
            self.load_instances(unknown)
            users |= {self.loaded[i].user_id for i in unknown if i in self.loaded}
        return users

    def claim_due_timers(self, now: datetime, limit: int) -> Sequence[tuple[str, str]]:
        if self.shard_reads is not None:  # Citus: one shard's, claimed by the DELETE routed to it
            found = claim_shard_timers(self.db, self.owner, now, limit, self.shard_reads)
        else:
            found = due_timers(self.db, self.owner, now, limit, lock=not self.db.sqlite)
            delete_timers(self.db, [(timer, user) for _, timer, user in found])
        self.load_instances([i for i, _, _ in found], {i: user for i, _, user in found})
        return [(instance, timer) for instance, timer, _ in found]


class SqlCommands(TxState):
    """`CommandsTx`: each command changes the loaded state at once (later reads in the batch see
    it) and is buffered for the flush."""

    def save_instance(self, instance: Instance) -> None:
        self._saved_user = instance.user_id
        state = self._state(instance.user_id)
        if instance.instance_id not in state.active and instance.instance_id not in self.loaded:
            state.entries[(instance.journey_id, entry_key(instance.key))] = (instance.instance_id, instance.entered_at)
            self.inserted[instance.user_id] = self.inserted.get(instance.user_id, 0) + 1
        self.loaded[instance.instance_id] = instance
        self.writes.instances[instance.instance_id] = instance
        if instance.active:
            state.active[instance.instance_id] = instance
            if self.cache is not None:
                self.cache.owners[instance.instance_id] = instance.user_id
        else:
            state.active.pop(instance.instance_id, None)
            if self.cache is not None:
                self.cache.owners.pop(instance.instance_id, None)

    def add_message(self, send: Send) -> None:
        instance = self.loaded.get(send.instance_id or "")  # saved just before its commands
        self.writes.add_message(send, instance.tally if instance is not None else None)
        state = self._state(send.user_id)
        state.latest[send.channel] = send.message_id
        state.sends.append(SentRecord(send.channel, send.category, send.at, send.journey_id))

    def add_timer(self, instance_id: str, timer: TimerRef) -> None:
        instance = self.loaded.get(instance_id)  # saved just before its commands
        user_id = instance.user_id if instance is not None else ""
        self.writes.add_timer(timer.timer_id, (timer.timer_id, instance_id, self.db.time(timer.due), user_id,
                                               self._part(user_id)))

    def cancel_timer(self, timer_id: str) -> None:
        """Of the instance saved just before (`carry_out` saves an instance, then its commands)."""
        self.writes.cancel_timer(timer_id, self._saved_user)

    def add_skip(self, skip: Skip) -> None:
        self.writes.add_skip(skip)

    def add_trace(self, trace: Trace) -> None:
        """The timeline is a dry-run view; production explains itself by messages and skips."""

    def count(self, counts: Mapping[Key, float]) -> None:
        merge(self.counts, counts)


class SqlMarks(TxState):
    """`RecentTx`: the users' marks for look-backs and throttles, read per batch and written with
    the flush (recent.py holds the table and its statements)."""

    @property
    def recent(self) -> SqlRecent:
        return self.marks


class SqlTx(SqlUsers, SqlInbox, SqlTimers, SqlCommands, SqlMarks, SqlRunChunks):
    """The `Tx` port on SQL: its six roles over one `TxState`, flushed by the store at commit."""
