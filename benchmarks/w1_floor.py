"""What SQLite itself needs for W1: the floor under `journey bench` on the embedded default.

Runs `journey bench` on a fresh SQLite file, recording every statement the engine's store hands
to sqlite3 (text, parameters, commits) and which part of the engine ran it (the inbox, the timer
sweep, the dispatcher, `accept`). Then replays exactly those statements, in the same order and
transactions, with the bare sqlite3 module on one thread, against a copy of the database as it
was before the burst, and reports sqlite3's CPU per 1,000 events for each part.

No engine, however fast its Python, does W1 for less than the replay: the figures say how far
the engine is above the floor and what rate the floor allows (`processed_per_s` is the inbox's
events per second of its own work, so its ceiling is 1,000,000 / the inbox's milliseconds).

Run: python benchmarks/w1_floor.py [users]
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event

import engine.bench.runner as runner
from engine.bench.workload import check_w1
from engine.host.dispatcher import Dispatcher
from engine.host.server import Server
from engine.host.timers import TimerSweep
from engine.service.engine import Engine
from engine.stores.sql import SqlStore

Statement = tuple[str, str | None, Any, bool]  # part, SQL (None: commit), parameters, executemany
BEFORE = "before.db"
PARTS = ((Engine, "process_queued", "inbox"), (Dispatcher, "drain", "dispatch"), (TimerSweep, "sweep", "timers"),
         (Server, "accept", "accept"))
"""The methods whose statements are each part's."""


def copy_database(database: Path, to: Path) -> Path:
    """A SQLite file with its write-ahead log and index, where they exist."""
    for suffix in ("", "-wal", "-shm"):
        if database.with_name(database.name + suffix).exists():
            shutil.copy(database.with_name(database.name + suffix), to.with_name(to.name + suffix))
    return to


class Recorder:
    """The statements of the first store opened once armed (the engine's: the bench opens it
    after loading the profiles), each with the part of the engine that ran it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.statements: list[Statement] = []
        self.armed = False
        self._part = threading.local()

    @contextmanager
    def installed(self) -> Iterator[None]:
        """Recording while inside; every method wrapped is put back on the way out."""
        wrapped = [(runner, "_load_profiles"), (SqlStore, "__init__"), *((cls, name) for cls, name, _ in PARTS)]
        originals = [(owner, name, getattr(owner, name)) for owner, name in wrapped]
        self._after_profiles()
        self._on_open()
        for cls, name, part in PARTS:
            self._tag(cls, name, part)
        try:
            yield
        finally:
            for owner, name, original in originals:
                setattr(owner, name, original)

    def part(self) -> str:
        return getattr(self._part, "name", "other")

    def _tag(self, cls: type, name: str, part: str) -> None:
        """Statements under `cls.name` belong to `part`; queued events a timer sweep processes
        first belong to the inbox, whose rate counts them."""
        method = getattr(cls, name)
        local = self._part

        def tagged(*args: Any, **kwargs: Any) -> Any:
            outer = getattr(local, "name", "other")
            local.name = part if outer == "other" or part == "inbox" else outer
            try:
                return method(*args, **kwargs)
            finally:
                local.name = outer

        setattr(cls, name, tagged)

    def _after_profiles(self) -> None:
        load: Callable[..., Any] = runner._load_profiles

        def loaded(urls: Sequence[str], *args: Any) -> Any:
            found = load(urls, *args)
            copy_database(Path(urls[0].removeprefix("sqlite:///")), self.folder / BEFORE)
            self.armed = True
            return found

        runner._load_profiles = loaded  # type: ignore[assignment]

    def _on_open(self) -> None:
        opened = SqlStore.__init__
        recorder = self

        def opening(store: SqlStore, *args: Any, **kwargs: Any) -> None:
            opened(store, *args, **kwargs)
            if recorder.armed:
                recorder.armed = False
                recorder._watch(store)

        SqlStore.__init__ = opening  # type: ignore[method-assign,assignment]

    def _watch(self, store: SqlStore) -> None:
        def executed(_conn: Any, _cursor: Any, sql: str, parameters: Any, _context: Any, many: bool) -> None:
            self.statements.append((self.part(), sql, parameters, many))

        event.listen(store.engine, "before_cursor_execute", executed)
        event.listen(store.engine, "commit", lambda _conn: self.statements.append((self.part(), None, None, False)))


def replay(database: Path, statements: Sequence[Statement]) -> dict[str, float]:
    """sqlite3's CPU seconds for each part's statements, replayed in order on one connection."""
    db = sqlite3.connect(database, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")  # as the store opens it
    spent: dict[str, float] = {}
    open_tx = False
    for part, sql, parameters, many in statements:
        started = time.thread_time()
        if sql is None:
            if open_tx:
                db.execute("COMMIT")
            open_tx = False
        else:
            if not open_tx:
                db.execute("BEGIN")
                open_tx = True
            if many:
                db.executemany(sql, parameters)
            else:
                db.execute(sql, parameters).fetchall()
        spent[part] = spent.get(part, 0.0) + time.thread_time() - started
    if open_tx:
        db.execute("COMMIT")
    db.close()
    return spent


def replayed_problems(database: Path, users: int) -> list[str]:
    """W1's check (`check_w1`) of the messages the replay left handed over: the replay did the
    engine's work when every push and SMS is there, once."""
    db = sqlite3.connect(database)
    try:
        sent = db.execute("SELECT user_id, channel FROM messages WHERE dispatch = 'sent'").fetchall()
    finally:
        db.close()
    named = re.match(r"(.*u)[0-9]+$", sent[0][0]) if sent else None
    return check_w1(users, sent, named.group(1) if named else "u")


def main(users: int) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="journey-floor-"))
    try:
        recorder = Recorder(folder)
        with recorder.installed():
            result = runner.run_bench(users, timedelta(seconds=2))
        spent = replay(folder / BEFORE, recorder.statements)
        problems = replayed_problems(folder / BEFORE, users)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    per_1k = {part: round(1e6 * seconds / result.events, 1) for part, seconds in sorted(spent.items())}
    inbox = per_1k.get("inbox", 0.0)
    return {"engine_cpu_ms_per_1k": result.engine_cpu_ms_per_1k, "processed_per_s": round(result.processed_per_s),
            "correct": result.correct, "floor_ms_per_1k": round(sum(per_1k.values()), 1), "floor_by_part": per_1k,
            "inbox_ceiling_per_s": round(1e6 / inbox) if inbox else None,
            "statements_replayed": sum(1 for _, sql, _, _ in recorder.statements if sql is not None),
            "replay_problems": problems}


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)))
