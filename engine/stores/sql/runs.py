"""Audience runs in SQL: the `runs` table (one row per run: its counts, its cursor, its lease),
the `Runs` port of `SqlStore` (`SqlRuns`), and `SqlRunChunks`, the role of the engine's
transaction (`SqlTx`) that one chunk of a run reads and writes in it (the next profiles in
user_id order, the run row).

On PostgreSQL a chunk holds its run's row (`FOR UPDATE`) to commit: two workers never take the
same chunk, and a lease (`lease_owner` until `lease_until`, renewed each chunk) says which worker
works a run; when a worker dies its lease runs out and another takes the run over. One run per
journey and occurrence (`UNIQUE (journey_id, occurrence)`): two workers, or a restart, never
create two runs for one scheduled instant.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Column, Index, UniqueConstraint
from sqlalchemy.types import JSON
from sqlmodel import Field, SQLModel

from channels import Profile
from engine.runs import PENDING, RUNNING, WORKING, AudienceRun
from engine.stores.sql.database import SqlPort
from engine.stores.sql.driver import Driver
from engine.stores.sql.loads import stored_profile
from engine.stores.sql.translate import translating
from engine.stores.sql.tx_state import TxState


class RunRow(SQLModel, table=True):
    __tablename__ = "runs"
    __table_args__ = (UniqueConstraint("journey_id", "occurrence", name="uq_runs_occurrence"),
                      Index("ix_runs_status", "status"))
    run_id: str = Field(primary_key=True)
    journey_id: str
    version: str
    trigger_kind: str
    occurrence: str
    scheduled_at: datetime
    created_at: datetime
    status: str
    started_at: datetime | None = None
    finished_at: datetime | None = None
    missed: int = 0
    profiles: int = 0
    matched: int = 0
    entered: int = 0
    skipped: dict[str, int] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    last_user_id: str | None = None
    lease_owner: str | None = None
    lease_until: datetime | None = None
    error: str | None = None


COLUMNS = ("run_id", "journey_id", "version", "trigger_kind", "occurrence", "scheduled_at", "created_at", "status",
           "started_at", "finished_at", "missed", "profiles", "matched", "entered", "skipped", "last_user_id",
           "lease_owner", "lease_until", "error")
_SELECT = f"SELECT {', '.join(COLUMNS)} FROM runs"
_TIMES = ("scheduled_at", "created_at", "started_at", "finished_at", "lease_until")


def _row(db: Driver, run: AudienceRun) -> tuple[Any, ...]:
    values = {"trigger_kind": run.trigger, "occurrence": run.occurrence, "skipped": db.json(dict(run.skipped)),
              "last_user_id": run.cursor}
    for name in _TIMES:
        values[name] = db.maybe_time(getattr(run, name))
    return tuple(values[c] if c in values else getattr(run, c) for c in COLUMNS)


def _run(db: Driver, row: Sequence[Any]) -> AudienceRun:
    values = dict(zip(COLUMNS, row, strict=True))
    for name in _TIMES:
        values[name] = db.read_time(values[name]) if values[name] is not None else None
    values.pop("occurrence")
    return AudienceRun(trigger=values.pop("trigger_kind"), cursor=values.pop("last_user_id"),
                       skipped=db.read_json(values.pop("skipped")), **values)


def _runs(db: Driver, sql: str, params: Sequence[Any] = ()) -> list[AudienceRun]:
    return [_run(db, row) for row in db.rows(sql, params)]


class SqlRunChunks(TxState):
    """`RunsTx`: the chunk of an audience run, in the engine's transaction."""

    def profiles_after(self, user_id: str | None, limit: int) -> Sequence[Profile]:
        db = self.db
        after = "" if user_id is None else f"WHERE user_id > {db.mark} "
        rows = db.rows(f"SELECT doc FROM profiles {after}ORDER BY user_id LIMIT {int(limit)}",
                       [] if user_id is None else [user_id])
        return [stored_profile(db.read_json(doc), ()) for (doc,) in rows]

    def lock_run(self, run_id: str) -> AudienceRun | None:
        db = self.db
        found = _runs(db, f"{_SELECT} WHERE run_id = {db.mark}" + ("" if db.sqlite else " FOR UPDATE"), [run_id])
        return found[0] if found else None

    def save_run(self, run: AudienceRun) -> None:
        db = self.db
        names = [c for c in COLUMNS if c != "run_id"]
        db.write(f"UPDATE runs SET {', '.join(f'{c} = {db.mark}' for c in names)} WHERE run_id = {db.mark}",
                 [(*_row(db, run)[1:], run.run_id)])


class SqlRuns(SqlPort):
    """The `Runs` port: runs added once per occurrence, listed, leased to one worker, ended."""

    @translating
    def add_run(self, run: AudienceRun) -> bool:
        with self._writing(urgent=True), self.engine.begin() as conn:
            db = Driver(conn, self.dialect)
            sql = db.insert_sql("runs", COLUMNS, ("journey_id", "occurrence"))
            return bool(conn.exec_driver_sql(sql, _row(db, run)).rowcount)

    @translating
    def get_run(self, run_id: str) -> AudienceRun | None:
        with self._autocommit() as conn:
            db = Driver(conn, self.dialect)
            found = _runs(db, f"{_SELECT} WHERE run_id = {db.mark}", [run_id])
        return found[0] if found else None

    @translating
    def runs_of(self, journey_id: str, limit: int = 100) -> list[AudienceRun]:
        with self._autocommit() as conn:
            db = Driver(conn, self.dialect)
            order = "ORDER BY scheduled_at DESC, created_at DESC, run_id DESC"
            return _runs(db, f"{_SELECT} WHERE journey_id = {db.mark} {order} LIMIT {int(limit)}", [journey_id])

    @translating
    def latest_scheduled_run(self, journey_id: str) -> AudienceRun | None:
        with self._autocommit() as conn:
            db = Driver(conn, self.dialect)
            found = _runs(db, f"{_SELECT} WHERE journey_id = {db.mark} AND trigger_kind <> 'manual' "
                              "ORDER BY scheduled_at DESC LIMIT 1", [journey_id])
        return found[0] if found else None

    @translating
    def claim_run(self, owner: str, journey_ids: Collection[str], now: datetime, lease: timedelta,
                  ) -> AudienceRun | None:
        # Asked even with no journeys: the runs sweep tells an outage from a recovery by the answer.
        with self._writing(urgent=False), self.engine.begin() as conn:
            db = Driver(conn, self.dialect)
            m, ids = db.mark, sorted(journey_ids)
            if not ids:
                conn.exec_driver_sql("SELECT 1")
                return None
            free = db.rows(f"SELECT run_id FROM runs WHERE status IN ('{PENDING}', '{RUNNING}') "
                           f"AND journey_id IN ({db.marks(len(ids))}) "
                           f"AND (lease_owner IS NULL OR lease_owner = {m} OR lease_until <= {m}) "
                           "ORDER BY created_at, run_id LIMIT 1" + ("" if db.sqlite else " FOR UPDATE SKIP LOCKED"),
                           [*ids, owner, db.time(now)])
            if not free:
                return None
            run_id = free[0][0]
            conn.exec_driver_sql(f"UPDATE runs SET status = '{RUNNING}', started_at = COALESCE(started_at, {m}), "
                                 f"lease_owner = {m}, lease_until = {m} WHERE run_id = {m}",
                                 (db.time(now), owner, db.time(now + lease), run_id))
            return _runs(db, f"{_SELECT} WHERE run_id = {m}", [run_id])[0]

    @translating
    def release_runs(self) -> None:
        with self._writing(urgent=True), self.engine.begin() as conn:
            conn.exec_driver_sql("UPDATE runs SET lease_owner = NULL, lease_until = NULL WHERE lease_owner IS NOT NULL")

    @translating
    def end_runs(self, journey_id: str, status: str, error: str, at: datetime) -> int:
        with self._writing(urgent=True), self.engine.begin() as conn:
            db = Driver(conn, self.dialect)
            m = db.mark
            working = ", ".join(f"'{s}'" for s in WORKING)
            result = conn.exec_driver_sql(
                f"UPDATE runs SET status = {m}, error = {m}, finished_at = {m}, lease_owner = NULL, "
                f"lease_until = NULL WHERE journey_id = {m} AND status IN ({working})",
                (status, error, db.time(at), journey_id))
            return int(result.rowcount or 0)
