"""`/metrics` under `journey serve --workers K`: one scrape target answered by K processes.

Each worker counts in its own memory, so a scrape would show whichever worker answered it:
totals that flip from one scrape to the next, which Prometheus reads as counter resets.
prometheus_client's multiprocess mode is the library's answer: the parent points
`PROMETHEUS_MULTIPROC_DIR` at an empty folder for its children, each worker writes its values
to its own files there, and a scrape sums every worker's files (`MultiProcessCollector`).

The host keeps plain counts and never imports prometheus_client, so each worker's `Mirror`
writes them to its files: moments after the server says they changed (`Server.tally.counted`: each
sweep run, each batch taken in), at least every second, and before each scrape it answers. A
counter's file holds the worker's total, so the sum goes on growing after a worker dies (its
file stays) and its replacement starts from zero beside it. Gauges say how they combine
(`GAUGE_MODES`); the parent removes a dead worker's gauges (`mark_dead`).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.values import MultiProcessValue

ENV = "PROMETHEUS_MULTIPROC_DIR"
GAP = 0.02  # seconds between two writes at most: changes within it are written together
IDLE = 1.0  # seconds: written at least this often (a count the server did not announce)
GAUGE_MODES = {  # how each gauge of the workers combines; `live`: the workers alive now
    "journey_events_queued": "livesum",  # each worker's own users' queued events
    "journey_sweep_failing": "livemax",  # the worst worker's consecutive failed runs
    "journey_journeys_loaded": "livemax",  # the same in every worker but for a moment during a reload
}


def multiprocess_dir() -> str | None:
    """The folder this process writes its metrics to, when it is one of several behind a port."""
    return os.environ.get(ENV) or None


@contextlib.contextmanager
def metrics_folder() -> Iterator[str]:
    """An empty folder for the workers' metrics, in `PROMETHEUS_MULTIPROC_DIR` for the processes
    started inside (files from another run would be counted in), removed afterwards."""
    folder = tempfile.mkdtemp(prefix="journey-metrics-")
    before = os.environ.get(ENV)
    os.environ[ENV] = folder
    try:
        yield folder
    finally:
        if before is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = before
        shutil.rmtree(folder, ignore_errors=True)


class WorkersCollector:
    """Sums every worker's files, as `MultiProcessCollector` does, leaving out a file another
    worker is creating at this very moment.

    prometheus_client creates a worker's file first and sizes it after (client_python#1199):
    a scrape that lands in between reads a file of 0 bytes, and the library's collector then
    raises for the whole scrape, so `/metrics` answered 500 now and then under
    `--workers K`. An empty file holds no value yet, so leaving it out loses nothing; it is
    read at the next scrape."""

    def __init__(self, folder: str) -> None:
        self._folder = folder

    def collect(self) -> Iterable[Metric]:
        files = [path for path in glob.glob(os.path.join(self._folder, "*.db")) if _holds_values(path)]
        return MultiProcessCollector.merge(files, accumulate=True)


def _holds_values(path: str) -> bool:
    """Whether a worker's file has been sized (a missing one was a dead worker's `live` gauge)."""
    try:
        return os.path.getsize(path) > 0
    except OSError:
        return False


def mark_dead(pid: int) -> None:
    """A worker died: its `live` gauges no longer count (its counters stay in the totals)."""
    folder = multiprocess_dir()
    if folder is not None:
        mark_process_dead(pid, folder)


class Mirror:
    """Writes this process's totals (`read`: the metric families of its plain counts) to its
    files in the multiprocess folder."""

    def __init__(self, read: Callable[[], Iterable[Metric]]) -> None:
        self._read = read
        self._changed = threading.Event()
        self._value = MultiProcessValue()  # the file-backed value prometheus_client's own metrics use
        self._values: dict[tuple[Any, ...], Any] = {}
        self._lock = threading.Lock()

    def start(self) -> None:
        threading.Thread(target=self._run, name="metrics-mirror", daemon=True).start()

    def changed(self) -> None:
        """The totals changed: write them soon (cheap: the writing is the mirror's thread's)."""
        self._changed.set()

    def publish(self) -> None:
        with self._lock:
            for family in self._read():
                for name, labels, value in _stored(family):
                    self._slot(family, name, labels).set(value)

    def _run(self) -> None:
        while True:
            self._changed.wait(IDLE)
            self._changed.clear()
            time.sleep(GAP)
            with contextlib.suppress(Exception):  # a figure missed now is written at the next turn
                self.publish()

    def _slot(self, family: Metric, name: str, labels: dict[str, str]) -> Any:
        key = (family.name, name, tuple(labels.items()))
        slot = self._values.get(key)
        if slot is None:
            mode = GAUGE_MODES.get(family.name, "livesum") if family.type == "gauge" else ""
            slot = self._values[key] = self._value(family.type, family.name, name, list(labels), list(labels.values()),
                                                   family.documentation, multiprocess_mode=mode)
        return slot


def _stored(family: Metric) -> Iterator[tuple[str, dict[str, str], float]]:
    """The samples as the multiprocess files hold them: a histogram's buckets each on its own
    (the collector adds them up again, and counts them) and its sum; the rest as they are.
    (The histograms here have no labels: one series of buckets each.)"""
    if family.type != "histogram":
        yield from ((s.name, s.labels, s.value) for s in family.samples)
        return
    below = 0.0
    for sample in family.samples:
        if sample.name.endswith("_bucket"):
            yield sample.name, sample.labels, sample.value - below
            below = sample.value
        elif sample.name.endswith("_sum"):
            yield sample.name, sample.labels, sample.value
