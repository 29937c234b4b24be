"""The SQL store's side of the `Journeys` port: every version of every journey it has run (its
YAML, so an instance outlives a redeploy) and each journey's lifecycle state (so a pause or a
stop outlives a restart)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select

from engine.ports import JourneyVersion
from engine.stores.sql.counters import add_counts, moved
from engine.stores.sql.database import SqlPort
from engine.stores.sql.driver import Driver
from engine.stores.sql.schema import INSTANCES, JOURNEY_STATES, JOURNEY_VERSIONS, aware, dialect_insert
from engine.stores.sql.translate import translating


class SqlJourneys(SqlPort):
    """The `Journeys` port: the `journey_versions` and `journey_states` tables."""

    @translating
    def save_versions(self, versions: Sequence[JourneyVersion]) -> None:
        rows = [{"journey_id": v.journey_id, "version": v.version, "file": v.file, "source": v.source,
                 "first_loaded_at": v.first_loaded_at, "templates": dict(v.templates) or None} for v in versions]
        if rows:
            with self._writing(urgent=True), self.engine.begin() as conn:
                conn.execute(dialect_insert(self.dialect, JOURNEY_VERSIONS).values(rows).on_conflict_do_nothing())

    @translating
    def journey_version(self, journey_id: str, version: str) -> JourneyVersion | None:
        query = select(JOURNEY_VERSIONS).where(JOURNEY_VERSIONS.c.journey_id == journey_id,
                                               JOURNEY_VERSIONS.c.version == version)
        with self._autocommit() as conn:
            row = conn.execute(query).mappings().first()
        return _version(row) if row else None

    @translating
    def journey_versions(self, journey_id: str) -> list[JourneyVersion]:
        query = select(JOURNEY_VERSIONS).where(JOURNEY_VERSIONS.c.journey_id == journey_id) \
            .order_by(JOURNEY_VERSIONS.c.first_loaded_at, JOURNEY_VERSIONS.c.version)
        with self._autocommit() as conn:
            return [_version(row) for row in conn.execute(query).mappings()]

    @translating
    def journey_ids(self) -> list[str]:
        query = select(JOURNEY_VERSIONS.c.journey_id).distinct().order_by(JOURNEY_VERSIONS.c.journey_id)
        with self._autocommit() as conn:
            return [str(j) for (j,) in conn.execute(query)]

    @translating
    def journey_states(self) -> dict[str, str]:
        with self._autocommit() as conn:
            return {str(j): str(s) for j, s in conn.execute(select(JOURNEY_STATES.c.journey_id,
                                                                    JOURNEY_STATES.c.state))}

    @translating
    def set_journey_state(self, journey_id: str, state: str, at: datetime) -> None:
        with self._writing(urgent=True), self.engine.begin() as conn:
            conn.execute(delete(JOURNEY_STATES).where(JOURNEY_STATES.c.journey_id == journey_id))
            if state != "active":
                conn.execute(insert(JOURNEY_STATES).values(journey_id=journey_id, state=state, at=at))

    @translating
    def active_counts(self, journey_id: str) -> dict[str, int]:
        query = (select(INSTANCES.c.version, func.count()).where(INSTANCES.c.journey_id == journey_id,
                                                                 INSTANCES.c.status == "active")
                 .group_by(INSTANCES.c.version))
        with self._autocommit() as conn:
            return {str(v): int(n) for v, n in conn.execute(query)}

    @translating
    def cancel_pending(self, journey_id: str, reason: str, at: datetime,
                       instance_ids: Collection[str] | None = None) -> int:
        if instance_ids is not None and not instance_ids:
            return 0
        with self._writing(urgent=False), self.engine.begin() as conn:
            db = Driver(conn, self.dialect)
            m = db.mark
            ids = list(instance_ids or ())
            only = f" AND instance_id IN ({db.marks(len(ids))})" if ids else ""
            rows = db.rows(
                f"UPDATE messages SET dispatch = 'cancelled', status = 'cancelled', status_at = {m}, error = {m} "
                f"WHERE dispatch = 'pending' AND journey_id = {m}{only} RETURNING journey_id, tally, channel",
                (db.time(at), reason, journey_id, *ids))
            add_counts(db, moved(rows, "queued", "cancelled"), self._writer("host"))
            return len(rows)


def _version(row: Any) -> JourneyVersion:
    return JourneyVersion(row["journey_id"], row["version"], row["file"], row["source"], aware(row["first_loaded_at"]),
                          row["templates"] or {})
