"""What one SQL transaction holds, under each of its roles (engine/stores/sql/tx.py): its
connection, the users' state it loaded (from the `StateCache` or in a few queries by
`prefetch`), the instances it read by id, and the writes it buffered until the flush.

On PostgreSQL the cache is checked (`StateCache.checked`): after the batch's users are locked,
one statement reads their `Stamp`s, and only a cached state whose stamp matches is used; the
others are read again. The flush stamps what this transaction wrote with its own id."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime

from sqlalchemy import Connection

from engine.state import Instance, Partitioning
from engine.stats import Counts, merge
from engine.stores.sql.cache import StateCache, UserState, forget_sends_before
from engine.stores.sql.claims import Owner
from engine.stores.sql.counters import add_counts, receipts
from engine.stores.sql.driver import Driver
from engine.stores.sql.loads import load_users
from engine.stores.sql.recent import SqlRecent
from engine.stores.sql.schema import chunks
from engine.stores.sql.shard_reads import ShardReads
from engine.stores.sql.stamps import NONE, read_stamps, written
from engine.stores.sql.suppression import TxSuppressions
from engine.stores.sql.user_locks import lock_users
from engine.stores.sql.writes import WriteBuffer


class TxState:
    """One transaction: user state from the cache or prefetch, writes buffered until flush."""

    def __init__(self, conn: Connection, dialect: str, cache: StateCache | None, owner: Owner | None = None,
                 partitioning: Partitioning = Partitioning(), shard_reads: ShardReads | None = None) -> None:
        self.conn = conn
        self.shard_reads = shard_reads  # Citus: which timers of a shard are due, asked of its node
        self.owner = owner  # PostgreSQL workers: the sweeps take only this worker's partitions
        self.partitioning = partitioning
        self.dialect = dialect
        self.cache = cache
        self.db = Driver(conn, dialect)
        self.users: dict[str, UserState] = {}
        self._since: datetime | None = None
        self.loaded: dict[str, Instance] = {}  # instances read or saved by id in this transaction
        self._saved_user = ""  # the user of the instance saved last (its commands follow)
        self.writes = WriteBuffer(self.db, partitioning)
        self.suppressions = TxSuppressions(self.db, cache if cache is None or not cache.checked else None)
        self.xid = 0  # PostgreSQL, checked cache: this transaction's id as the rows it writes carry it
        self.inserted: dict[str, int] = {}  # user_id -> instances this transaction adds
        self.marks = SqlRecent(self.db, partitioning.shards)  # the users' marks: look-backs and throttles
        self.counts: Counts = {}  # added to the journeys' counters at the flush

    def prefetch(self, user_ids: Collection[str], since: datetime) -> None:
        if self._since is None or since < self._since:
            self._since = since
        if self.cache is not None and self.cache.checked:
            self._prefetch_checked(user_ids, since, self.cache)
        else:
            self._prefetch_trusted(user_ids, since)
        self.suppressions.load({p for p in (self._phone(u) for u in user_ids) if p})

    def _prefetch_trusted(self, user_ids: Collection[str], since: datetime) -> None:
        """SQLite (or no cache): a cached user is as committed, this process being the only writer."""
        missing = []
        for user_id in user_ids:
            if user_id in self.users:
                continue
            cached = self.cache.users.get(user_id) if self.cache is not None else None
            if cached is not None and cached.sends_since <= since:
                forget_sends_before(cached, since)
                self.users[user_id] = cached
            else:
                missing.append(user_id)
        lock_users(self.db, missing)  # PostgreSQL: one writer per user at a time, across workers
        for chunk in chunks(missing):
            states = load_users(self.db, chunk, since, self.partitioning.shards)
            self.users.update(states)
            if self.cache is not None:
                self.cache.add(states)

    def _prefetch_checked(self, user_ids: Collection[str], since: datetime | None, cache: StateCache) -> None:
        """PostgreSQL: lock the users, read their stamps, keep the cached states that match and
        read the others (`since` None: only keep, as for the instances of timers, whose users a
        prefetch with the caps' window follows); every state this transaction holds is marked
        busy until it ends."""
        new = [u for u in dict.fromkeys(user_ids) if u not in self.users]
        if not new:
            return
        lock_users(self.db, new)
        stamps, self.xid = read_stamps(self.db, new)
        missing = []
        for user_id in new:
            cached = cache.users.get(user_id)
            if cached is not None and (since is None or cached.sends_since <= since) \
                    and cached.stamp == stamps.get(user_id, NONE):
                if since is not None:
                    forget_sends_before(cached, since)
                self._adopt(user_id, cached)
            else:
                missing.append(user_id)
        if since is None:
            return
        for chunk in chunks(missing):
            states = load_users(self.db, chunk, since, self.partitioning.shards)
            for user_id, state in states.items():
                state.stamp = stamps.get(user_id, NONE)
                self._adopt(user_id, state)
            cache.add(states)

    def _adopt(self, user_id: str, state: UserState) -> None:
        assert self.cache is not None
        self.users[user_id] = state
        self.cache.hold(state)

    def release(self) -> None:
        """The transaction ended (committed or not): its users' states are no longer in its hands."""
        if self.cache is not None and self.cache.checked:
            self.cache.let_go(list(self.users.values()))

    def _phone(self, user_id: str) -> str | None:
        state = self.users.get(user_id)
        return state.profile.phone if state is not None and state.profile is not None else None

    def _state(self, user_id: str) -> UserState:
        state = self.users.get(user_id)
        if state is None:
            self.prefetch([user_id], self._since or datetime.fromtimestamp(0).astimezone())
            state = self.users[user_id]
        return state

    def _part(self, user_id: str) -> int:
        return self.partitioning.of(user_id)

    def load_instances(self, instance_ids: Sequence[str], users: Mapping[str, str] | None = None) -> None:
        """Instances by id (a timer sweep's), from the cache where it has them. `users`: each
        instance's user, named in the query beside the ids (on Citus, a timer claim's instances are
        one shard's: the read is routed to it)."""
        wanted = [i for i in instance_ids if i not in self.loaded]
        if self.cache is not None and self.cache.checked:  # their users checked first, in one statement
            states = (self.cache.owner(i) for i in wanted)
            self._prefetch_checked({s.active[i].user_id for i, s in zip(wanted, states, strict=True) if s}, None,
                                   self.cache)
        if self.cache is not None:
            wanted = [i for i in wanted if not self._from_cache(i)]
        for chunk in chunks(wanted):
            owners = sorted({users[i] for i in chunk}) if users else []
            where = f"user_id IN ({self.db.marks(len(owners))}) AND " if owners else ""
            for (doc,) in self.db.rows(f"SELECT doc FROM instances WHERE {where}instance_id IN "
                                       f"({self.db.marks(len(chunk))})", [*owners, *chunk]):
                instance = Instance.from_dict(self.db.read_json(doc))
                self.loaded[instance.instance_id] = instance

    def _from_cache(self, instance_id: str) -> bool:
        """A cached instance; on PostgreSQL only of a user this transaction checked (prefetched)."""
        assert self.cache is not None
        state = self.cache.owner(instance_id)
        if state is None:
            return False
        if self.cache.checked and self.users.get(state.active[instance_id].user_id) is not state:
            return False
        instance = state.active[instance_id]
        self.users.setdefault(instance.user_id, state)
        self.loaded[instance_id] = instance
        return True

    @property
    def writer(self) -> str:
        """Whose rows of the counters this transaction adds to: this worker's engine."""
        return self.owner.worker if self.owner is not None else ""

    def flush(self) -> None:
        """Write everything buffered: the suppression list first, then one executemany per table,
        then the new marks (and the expired ones pruned), then the counters (the status changes
        of feedback counted from the statuses they replace)."""
        self.suppressions.flush()
        self._receipts()
        self.writes.flush()
        self.marks.flush()
        add_counts(self.db, self.counts, self.writer)
        if self.cache is not None and self.cache.checked:
            self._stamp_writes()

    def _stamp_writes(self) -> None:
        """The states this transaction wrote carry its id from now on, as their rows will once it
        commits (a failure evicts them: see `SqlStore.transaction`)."""
        saved = {i.user_id for i in self.writes.instances.values()}
        profiles = self.writes.profiles.keys() | self.writes.engagement.keys()
        for user_id, state in self.users.items():
            if state.stamp is not None and (user_id in saved or user_id in profiles):
                state.stamp = written(state.stamp, self.xid, user_id in profiles, self.inserted.get(user_id, 0),
                                      user_id in saved)

    def _receipts(self) -> None:
        """The statuses feedback set, as they land (engine.stats.received: never backwards, each
        engagement counted once), on stored messages of the users named and on those this
        transaction adds; the ones that change nothing are not written."""
        statuses = self.writes.statuses
        landed = receipts(self.db, [(u, m, s) for s, _, u, m in statuses], self.writes.added() if statuses else None,
                          self.partitioning)
        self.writes.statuses = []
        for (_, at, user_id, message_id), receipt in zip(statuses, landed, strict=True):
            if receipt is not None and receipt.changed:
                merge(self.counts, receipt.counts)
                self.writes.statuses.append((receipt.status, at, receipt.engaged, user_id, message_id))
