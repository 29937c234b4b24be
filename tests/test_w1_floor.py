"""benchmarks/w1_floor.py: the floor it reports is the engine's own W1 work replayed, nothing less."""

from __future__ import annotations

import importlib.util
from datetime import timedelta
from pathlib import Path
from types import ModuleType

import engine.bench.runner as runner
from engine.stores.sql import SqlStore

USERS = 300


def _floor() -> ModuleType:
    path = Path(__file__).parents[1] / "benchmarks" / "w1_floor.py"
    spec = importlib.util.spec_from_file_location("w1_floor", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_replay_sends_every_message_w1_sends_and_each_part_costs_something(tmp_path: Path) -> None:
    floor = _floor()
    opened = SqlStore.__init__
    recorder = floor.Recorder(tmp_path)
    with recorder.installed():
        result = runner.run_bench(USERS, timedelta(seconds=5))  # no open late on a busy machine
    assert SqlStore.__init__ is opened  # nothing stays wrapped after the recording
    assert result.correct, result.problems
    whole = floor.copy_database(tmp_path / floor.BEFORE, tmp_path / "whole.db")
    spent = floor.replay(whole, recorder.statements)
    assert floor.replayed_problems(whole, USERS) == []
    assert {"inbox", "dispatch", "timers", "accept"} <= set(spent)
    assert all(seconds > 0 for part, seconds in spent.items() if part != "other")

    # without the dispatcher's statements nothing is handed over: the check sees it
    partial = floor.copy_database(tmp_path / floor.BEFORE, tmp_path / "partial.db")
    floor.replay(partial, [s for s in recorder.statements if s[0] != "dispatch"])
    assert any("pushes" in problem for problem in floor.replayed_problems(partial, USERS))

