"""The SQL store's side of the `Privacy` port: erasing a person, their consent ledger, and the
audit trail of every user's consent changes (the `consents` table, whose autoincrement `id` is
the order rows were written in).

An erasure leaves the person's consent rows where they are, under the same user_id, as the
proof of past consent, and records itself in `erasures` with the highest consent id it covers:
the transactions' loader (`engine.stores.sql.loads`) reads no consent row an erasure covers, so the person starts
afresh while the proof stays in the audit trail. Their phone and email survive only as salted
hashes (`engine.stores.privacy`), under a salt made once per database and kept in `meta`.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlmodel import Field, SQLModel

from channels import ConsentRecord, Profile
from engine.ports import ERASED, Erasure, LedgerEntry, SuppressionEntry, Tx
from engine.stores.privacy import address_hash
from engine.stores.sql.cache import StateCache
from engine.stores.sql.counters import add_counts, moved
from engine.stores.sql.database import Database, SqlPort
from engine.stores.sql.driver import Driver
from engine.stores.sql.recent import forget as forget_recent
from engine.stores.sql.schema import numbered
from engine.stores.sql.suppression import suppression_rows
from engine.stores.sql.translate import translating
from engine.stores.sql.tx import SqlTx

SALT_KEY = "erasure_salt"
# Where an id may be held; the proof an erasure keeps (consents, erasures) counts too, so erasing
# twice answers the same.
HOLDERS = ("profiles", "consents", "instances", "messages", "inbox", "skips", "erasures")


class ErasureRow(SQLModel, table=True):
    """One erasure: whose, when, the hashes of the addresses they had, and the highest consent row
    it covers (those rows stay, as proof, but no longer count as the person's consent)."""

    __tablename__ = "erasures"
    user_id: str = Field(primary_key=True, index=True)
    id: int | None = numbered()
    at: datetime
    phone_sha256: str | None = None
    email_sha256: str | None = None
    consents_through: int | None = None


class SqlPrivacy(SqlPort):
    """The `Privacy` port. An erasure bypasses the store's `StateCache` and evicts the person from it."""

    def __init__(self, database: Database, cache: StateCache | None) -> None:
        super().__init__(database)
        self.cache = cache

    @translating
    def erase_user(self, user_id: str, at: datetime, end_instances: Callable[[Tx], None]) -> Erasure | None:
        """The engine's part first and flushed (instances ended, their timers deleted by id: the
        timers table has no index by instance), then the rows.
        The transaction reads the database, not the cache, and the user is evicted from the cache
        afterwards either way, so no committed state of theirs is left in memory."""
        with self._writing(urgent=True):  # evicted before another writer or the dispatcher reads the cache
            try:
                with self.engine.begin() as conn:
                    tx = SqlTx(conn, self.dialect, None)
                    if not _holds(tx.db, user_id):
                        return None
                    tx.prefetch([user_id], at)
                    end_instances(tx)
                    profile = tx.get_profile(user_id)
                    tx.flush()
                    return _erase_rows(tx.db, user_id, at, profile)
            finally:
                if self.cache is not None:
                    self.cache.evict([user_id])

    @translating
    def consent_ledger(self, user_id: str) -> list[ConsentRecord]:
        with self._autocommit() as conn:
            db = Driver(conn, self.dialect)
            rows = db.rows("SELECT channel, category, granted, source, at FROM consents "
                           f"WHERE user_id = {db.mark} ORDER BY id", [user_id])
            return [ConsentRecord(c, k, bool(g), s, db.read_time(t)) for c, k, g, s, t in rows]

    @translating
    def consent_feed(self, since: datetime | None, after: int, limit: int) -> list[LedgerEntry]:
        with self._autocommit() as conn:
            db = Driver(conn, self.dialect)
            rows = _after(db, "id, user_id, channel, category, granted, source, at FROM consents", since, after, limit)
            return [LedgerEntry(int(i), u, ConsentRecord(c, k, bool(g), s, db.read_time(t)))
                    for i, u, c, k, g, s, t in rows]

    @translating
    def suppression_feed(self, since: datetime | None, after: int, limit: int) -> list[SuppressionEntry]:
        with self._autocommit() as conn:
            db = Driver(conn, self.dialect)
            rows = _after(db, "id, number, keyword, source, at FROM suppressions", since, after, limit)
            return [SuppressionEntry(int(i), n, k, s, db.read_time(t)) for i, n, k, s, t in rows]

    @translating
    def suppressions_for(self, phone: str) -> list[dict[str, Any]]:
        with self._autocommit() as conn:
            return suppression_rows(Driver(conn, self.dialect), phone)


def _after(db: Driver, columns_from: str, since: datetime | None, after: int, limit: int) -> Sequence[Sequence[Any]]:
    """Up to `limit` rows of a ledger table past row id `after` (and at or after `since`), in id order."""
    sql = f"SELECT {columns_from} WHERE id > {db.mark}"
    params: list[Any] = [after]
    if since is not None:
        sql += f" AND at >= {db.mark}"
        params.append(db.time(since))
    return db.rows(sql + f" ORDER BY id LIMIT {int(limit)}", params)


def _holds(db: Driver, user_id: str) -> bool:
    found = " OR ".join(f"EXISTS (SELECT 1 FROM {table} WHERE user_id = {db.mark})" for table in HOLDERS)
    return bool(db.rows("SELECT 1 WHERE " + found, [user_id] * len(HOLDERS)))


def _erase_rows(db: Driver, user_id: str, at: datetime, profile: Profile | None) -> Erasure:
    m = db.mark
    salt = _salt(db)
    through = db.rows(f"SELECT max(id) FROM consents WHERE user_id = {m}", [user_id])[0][0]
    db.write(db.insert_sql("erasures", ("user_id", "at", "phone_sha256", "email_sha256", "consents_through")),
             [(user_id, db.time(at), address_hash(salt, profile.phone if profile else None),
               address_hash(salt, profile.email if profile else None), through)])
    rows = db.rows("UPDATE messages SET dispatch = 'cancelled', status = 'cancelled', "
                   f"status_at = {m}, error = {m} WHERE user_id = {m} AND dispatch = 'pending' "
                   "RETURNING journey_id, tally, channel", [db.time(at), ERASED, user_id])
    add_counts(db, moved(rows, "queued", "cancelled"), "/host")
    cancelled = len(rows)
    messages = _count(db, f"UPDATE messages SET content = {m}, error = CASE WHEN error IS NULL THEN NULL "
                          f"ELSE {m} END WHERE user_id = {m}", [db.json({}), ERASED, user_id])
    _count(db, f"UPDATE skips SET detail = NULL WHERE user_id = {m}", [user_id])
    _count(db, f"DELETE FROM feed_states WHERE user_id = {m}", [user_id])
    _count(db, f"DELETE FROM links WHERE user_id = {m}", [user_id])  # their codes answer nothing from now on
    queued = _count(db, f"DELETE FROM inbox WHERE user_id = {m} AND error IS NULL", [user_id])
    _count(db, f"DELETE FROM inbox WHERE user_id = {m}", [user_id])  # set aside as failed: gone too
    instances = _count(db, f"DELETE FROM instances WHERE user_id = {m}", [user_id])
    _count(db, f"DELETE FROM profiles WHERE user_id = {m}", [user_id])
    forget_recent(db, user_id)
    return Erasure(instances, queued, messages, cancelled)


def _count(db: Driver, sql: str, params: Sequence[Any]) -> int:
    return int(db.conn.exec_driver_sql(sql, tuple(params)).rowcount or 0)


def _salt(db: Driver) -> str:
    """This database's salt, made by the first erasure (two workers racing: one insert wins)."""
    m = db.mark
    db.write(db.insert_sql("meta", ("key", "value"), ("key",)), [(SALT_KEY, secrets.token_hex(16))])
    return str(db.rows(f"SELECT value FROM meta WHERE key = {m}", [SALT_KEY])[0][0])
