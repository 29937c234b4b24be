"""`/metrics` under several workers reads every worker's files; one being created at that moment
must not fail the scrape (prometheus_client creates a file before sizing it)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.values import MultiProcessValue

from engine.http.multiprocess import WorkersCollector


def _worker_counted(folder: Path, monkeypatch: pytest.MonkeyPatch, pid: int, total: float) -> None:
    """A worker's counter as prometheus_client writes it to its own file."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(folder))
    value = MultiProcessValue(process_identifier=lambda: pid)(
        "counter", "journey_events", "journey_events_total", [], [], "Events", multiprocess_mode="")
    value.inc(total)


def test_a_scrape_while_another_worker_creates_its_file_sums_the_others(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _worker_counted(tmp_path, monkeypatch, 101, 5)
    _worker_counted(tmp_path, monkeypatch, 102, 7)
    (tmp_path / "counter_103.db").touch()  # a third worker between creating its file and sizing it
    with pytest.raises(struct.error):  # what the library's own collector does: the whole scrape fails
        MultiProcessCollector(None, str(tmp_path)).collect()
    families = {family.name: family for family in WorkersCollector(str(tmp_path)).collect()}
    assert [(s.name, s.value) for s in families["journey_events"].samples] == [("journey_events_total", 12.0)]

