"""What one SQL transaction holds, under each of its roles (engine/stores/sql/tx.py): its
connection, the users' state it loaded (from the `StateCache` or in a few queries by
`prefetch`), the instances it read by id, and the writes it buffered until the flush."""

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
        self.suppressions = TxSuppressions(self.db, cache)
        self.marks = SqlRecent(self.db, partitioning.shards)  # the users' marks (`RecentTx.recent`)
        self.counts: Counts = {}  # added to the journeys' counters at the flush

    def prefetch(self, user_ids: Collection[str], since: datetime) -> None:
        if self._since is None or since < self._since:
            self._since = since
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
            states = load_users(self.db, chunk, since)
            self.users.update(states)
            if self.cache is not None:
                self.cache.add(states)
        self.suppressions.load({p for p in (self._phone(u) for u in user_ids) if p})

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
        assert self.cache is not None
        state = self.cache.owner(instance_id)
        if state is None:
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
