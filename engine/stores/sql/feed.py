"""The SQL store's side of the `Feed` port: a person's in-app feed is their `in_app` messages that
were not cancelled (an erased person's, their content emptied, are left out), newest first, read
through `ix_messages_user_at`; what they did to each is a row of `feed_states`, made on the first
mark."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import String, and_, cast, func, insert, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.sql import Select

from engine.stores.sql.database import SqlPort
from engine.stores.sql.schema import FEED_STATES, MESSAGES, aware
from engine.stores.sql.translate import translating

_COLUMNS = {"seen": "seen_at", "read": "read_at", "archived": "archived_at"}
_TIMES = ("at", "seen_at", "read_at", "archived_at")


class SqlFeed(SqlPort):
    """The feed over the messages table and `feed_states`."""

    @translating
    def feed_items(self, user_id: str, before: tuple[datetime, str] | None, limit: int,
                   archived: bool = False) -> list[dict[str, Any]]:
        m = MESSAGES.c
        query = _feed(user_id, m.message_id, m.journey_id, m.message, m.content, m.locale, m.at,
                      FEED_STATES.c.seen_at, FEED_STATES.c.read_at, FEED_STATES.c.archived_at)
        if not archived:
            query = query.where(FEED_STATES.c.archived_at.is_(None))
        if before is not None:
            query = query.where(or_(m.at < before[0], and_(m.at == before[0], m.message_id < before[1])))
        with self._autocommit() as conn:
            rows = conn.execute(query.order_by(m.at.desc(), m.message_id.desc()).limit(limit)).mappings()
            return [{**row, **{k: aware(row[k]) if row[k] is not None else None for k in _TIMES}} for row in rows]

    @translating
    def feed_unread(self, user_id: str) -> int:
        query = _feed(user_id, func.count()).where(FEED_STATES.c.read_at.is_(None),
                                                    FEED_STATES.c.archived_at.is_(None))
        with self._autocommit() as conn:
            return int(conn.execute(query).scalar_one())

    @translating
    def mark_feed(self, user_id: str, message_ids: Sequence[str] | None, state: str, at: datetime) -> list[str]:
        column = _COLUMNS[state]
        query = _feed(user_id, MESSAGES.c.message_id, FEED_STATES.c.user_id.label("known"),
                      getattr(FEED_STATES.c, column).label("done")).order_by(MESSAGES.c.at, MESSAGES.c.message_id)
        if message_ids is not None:
            query = query.where(MESSAGES.c.message_id.in_(list(message_ids)))
        with self._writing(urgent=True), self.engine.begin() as conn:
            rows = [r for r in conn.execute(query).mappings() if r["done"] is None]
            _write(conn, user_id, rows, column, at)
        return [r["message_id"] for r in rows]


def _feed(user_id: str, *columns: Any) -> Select[Any]:
    """`columns` of the person's feed: their in-app messages not cancelled nor erased, with their states."""
    m = MESSAGES.c
    joined = MESSAGES.outerjoin(FEED_STATES, FEED_STATES.c.message_id == m.message_id)
    return select(*columns).select_from(joined).where(
        m.user_id == user_id, m.channel == "in_app", m.dispatch != "cancelled", cast(m.content, String) != "{}")


def _write(conn: Connection, user_id: str, rows: Sequence[Any], column: str, at: datetime) -> None:
    """The state set on each row: a new row for a message never marked, else an update (`read`: `seen` too)."""
    values = {column: at, **({"seen_at": at} if column == "read_at" else {})}
    new = [{"message_id": r["message_id"], "user_id": user_id, **values} for r in rows if r["known"] is None]
    if new:
        conn.execute(insert(FEED_STATES), new)
    known = [r["message_id"] for r in rows if r["known"] is not None]
    if known:
        conn.execute(update(FEED_STATES).where(FEED_STATES.c.message_id.in_(known)).values({column: at}))
        if column == "read_at":
            conn.execute(update(FEED_STATES).where(FEED_STATES.c.message_id.in_(known),
                                                   FEED_STATES.c.seen_at.is_(None)).values(seen_at=at))
