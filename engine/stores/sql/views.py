"""The SQL store's `ReadViews`: what the HTTP API and the webhooks read, outside the engine's
transactions, each on a connection of its own."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import and_, func, or_, select

from engine.ports import MessageQuery
from engine.state import Instance
from engine.stores.links import with_links
from engine.stores.sql.counters import read_counts
from engine.stores.sql.database import SqlPort
from engine.stores.sql.driver import Driver
from engine.stores.sql.schema import INSTANCES, LINKS, MESSAGES, PROFILES, SKIPS, aware
from engine.stores.sql.translate import translating

_SHOWN = [c for c in MESSAGES.c if c.name not in ("claim", "tally", "engaged")]  # the dispatcher's and the counters'



class SqlViews(SqlPort):
    """Reads by user, by provider id, by phone number and by journey."""

    @translating
    def instances_for_user(self, user_id: str) -> list[Instance]:
        with self._autocommit() as conn:
            rows = conn.execute(select(INSTANCES.c.doc).where(INSTANCES.c.user_id == user_id)
                                .order_by(INSTANCES.c.entered_at))
            return [Instance.from_dict(doc) for (doc,) in rows]

    @translating
    def messages_for_user(self, user_id: str, limit: int = 200) -> list[dict[str, Any]]:
        with self._autocommit() as conn:
            rows = [dict(r) for r in conn.execute(select(*_SHOWN).where(MESSAGES.c.user_id == user_id)
                                                  .order_by(MESSAGES.c.at.desc()).limit(limit)).mappings()]
            links = conn.execute(select(LINKS).where(LINKS.c.user_id == user_id)).mappings().all() if rows else []
            return with_links(rows, [_aware_times(dict(link)) for link in links])

    @translating
    def find_messages(self, query: MessageQuery, limit: int) -> list[dict[str, Any]]:
        m = MESSAGES.c
        wanted = [column == value for column, value in ((m.journey_id, query.journey_id), (m.step, query.step),
                                                         (m.channel, query.channel), (m.status, query.status))
                  if value is not None]
        if query.since is not None:
            wanted.append(m.at >= query.since)
        if query.until is not None:
            wanted.append(m.at < query.until)
        if query.before is not None:
            at, message_id = query.before
            wanted.append(or_(m.at < at, and_(m.at == at, m.message_id < message_id)))
        with self._autocommit() as conn:
            rows = [dict(r) for r in conn.execute(select(*_SHOWN).where(*wanted)
                                                  .order_by(m.at.desc(), m.message_id.desc()).limit(limit)).mappings()]
            ids = [r["message_id"] for r in rows]
            links = conn.execute(select(LINKS).where(LINKS.c.message_id.in_(ids))).mappings().all() if ids else []
            return with_links(rows, [_aware_times(dict(link)) for link in links])

    @translating
    def skips_for_user(self, user_id: str, limit: int = 200) -> list[dict[str, Any]]:
        with self._autocommit() as conn:
            rows = conn.execute(select(SKIPS).where(SKIPS.c.user_id == user_id)
                                .order_by(SKIPS.c.at.desc()).limit(limit)).mappings()
            return [dict(r) for r in rows]

    @translating
    def message_by_provider_id(self, provider_id: str) -> dict[str, Any] | None:
        """The message a provider knows as `provider_id` (its message_id, user_id, channel, provider)."""
        query = select(MESSAGES.c.message_id, MESSAGES.c.user_id, MESSAGES.c.channel, MESSAGES.c.provider) \
            .where(MESSAGES.c.provider_id == provider_id).limit(1)
        with self._autocommit() as conn:
            if self.database.partitioning.shards:  # the user first, then the message in the user's shard
                user = conn.exec_driver_sql("SELECT user_id FROM provider_ids WHERE provider_id = %s",
                                            (provider_id,)).scalar()
                if user is None:
                    return None
                query = query.where(MESSAGES.c.user_id == user)
            row = conn.execute(query).mappings().first()
        return dict(row) if row else None

    @translating
    def users_by_phone(self, phone: str) -> list[str]:
        """The users whose profile has this E.164 phone number, in user_id order."""
        query = select(PROFILES.c.user_id).where(PROFILES.c.phone == phone).order_by(PROFILES.c.user_id)
        with self._autocommit() as conn:
            return [str(row[0]) for row in conn.execute(query)]

    @translating
    def step_counts(self, journey_id: str) -> dict[str, dict[str, int]]:
        """Instances per current step and status, for the journeys API."""
        query = (select(INSTANCES.c.step, INSTANCES.c.status, func.count())
                 .where(INSTANCES.c.journey_id == journey_id).group_by(INSTANCES.c.step, INSTANCES.c.status))
        counts: dict[str, dict[str, int]] = {}
        with self._autocommit() as conn:
            for step, status, count in conn.execute(query):
                counts.setdefault(step or "(none)", {})[status] = int(count)
        return counts

    @translating
    def journey_counts(self, journey_id: str, version: str | None, low: str | None, high: str | None,
                       ) -> list[tuple[str, str, float]]:
        with self._autocommit() as conn:
            return read_counts(Driver(conn, self.dialect), journey_id, version, low, high)


def _aware_times(row: Mapping[str, Any]) -> dict[str, Any]:
    """A link's row with its hit times in UTC (SQLite hands them back naive)."""
    return {**row, **{k: aware(row[k]) for k in ("first_hit_at", "last_hit_at") if row[k] is not None}}
