"""`journey bench` end to end, small: a real store, scheduler, dispatcher (and for --via http a
real `journey serve`), checked by the command itself. Speed is measured apart (see README)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

JOURNEY = Path(sys.executable).parent / "journey"
KEYS = {"users", "events_per_s", "processed_per_s", "timers_per_s", "wall_beyond_t_s", "lateness_p50_ms",
        "lateness_p99_ms", "open_delay_max_ms", "peak_rss_mb", "db_mb", "correct", "events", "engine_cpu_ms_per_1k",
        "process_cpu_ms_per_1k", "postgres_cpu_ms_per_1k", "statements_per_event", "rows_per_event", "load_avg_1m"}


@pytest.mark.parametrize(("via", "batch"), [("python", 1000), ("http", 500)])
def test_bench_runs_w1_and_reports_every_figure_as_json(via: str, batch: int) -> None:
    done = subprocess.run([str(JOURNEY), "bench", "--users", "300", "--timeout-seconds", "1", "--via", via,
                           "--json"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result.keys() >= KEYS
    assert result["correct"] is True and result["problems"] == []
    assert (result["users"], result["via"], result["batch"]) == (300, via, batch)
    assert result["events_per_s"] > 0 and result["processed_per_s"] > 0 and result["timers_per_s"] > 0
    assert result["peak_rss_mb"] > 0
    assert result["wall_beyond_t_s"] > 0  # the SMS can only go out after T
    assert_costs(result, users=300, postgres=False)


def assert_costs(result: dict[str, Any], users: int, postgres: bool) -> None:
    """What the run cost per event (its carts and its 30% opens): CPU, and SQL at the driver."""
    assert result["events"] == users + users * 3 // 10
    assert result["engine_cpu_ms_per_1k"] > 0 and result["process_cpu_ms_per_1k"] > 0, result
    assert result["statements_per_event"] > 0 and result["rows_per_event"] > 1, result  # an instance, a message...
    assert (result["postgres_cpu_ms_per_1k"] is not None and result["postgres_cpu_ms_per_1k"] > 0) == postgres, result


def test_bench_prints_a_table_without_json_and_takes_a_batch_size() -> None:
    done = subprocess.run([str(JOURNEY), "bench", "--users", "100", "--timeout-seconds", "0.8", "--batch", "7"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "batches of 7" in done.stdout and "events/s ingested" in done.stdout and "events/s processed" in done.stdout
    assert "yes" in done.stdout


def test_a_timeout_no_longer_than_the_open_delay_is_refused_before_anything_runs() -> None:
    done = subprocess.run([str(JOURNEY), "bench", "--users", "100", "--timeout-seconds", "0.5"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "--timeout-seconds 0.5" in done.stderr and "longer" in done.stderr


def test_the_time_sends_are_in_flight_counts_overlaps_once() -> None:
    from engine.bench.burst import busy_seconds

    assert busy_seconds([(0.0, 1.0, 5), (0.5, 1.5, 5), (3.0, 4.0, 5), (3.2, 3.4, 1)]) == 2.5


def test_workers_are_refused_without_postgresql_before_anything_runs() -> None:
    done = subprocess.run([str(JOURNEY), "bench", "--users", "100", "--workers", "2"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "--workers 2" in done.stderr and "PostgreSQL" in done.stderr
    assert "Traceback" not in done.stderr


def bench_workers(url: str, attempts: int = 3) -> dict[str, Any]:
    """`journey bench --workers 2` on `url`, again (each run has users of its own) when the bench
    itself fell behind on a busy machine: opens it sent once T had run out say nothing of the
    engine. Any other problem is the engine's, and stands."""
    for _ in range(attempts):
        done = subprocess.run([str(JOURNEY), "bench", "--users", "400", "--timeout-seconds", "1", "--workers", "2",
                               "--db", url, "--json"], capture_output=True, text=True, timeout=240)
        # An incorrect run exits 1 after printing its document; only a crash prints none.
        assert done.returncode in (0, 1) and done.stdout.strip(), done.stderr[-2000:]
        result: dict[str, Any] = json.loads(done.stdout)
        assert done.returncode == (0 if result["correct"] else 1), result["problems"]
        if not any(problem.startswith("the bench sent") for problem in result["problems"]):
            break
    return result


def test_bench_runs_journey_serve_workers_on_postgresql(postgres_fresh_db_url: str) -> None:
    """What `journey serve --workers 2` runs, measured: correct (no opener got the SMS), with every
    figure filled in."""
    result = bench_workers(postgres_fresh_db_url)
    assert result["correct"] is True and result["workers"] == 2 and result["via"] == "http", result["problems"]
    assert result["events_per_s"] > 0 and result["processed_per_s"] > 0 and result["timers_per_s"] > 0
    # the opens follow their pushes as on one worker (not a heartbeat later): inside T
    assert 0 < result["open_delay_max_ms"] < 1000, result
    # the burst began once the two shared the 256 partitions out: none changed hands for it
    assert result["lease_changes"] < 32, result
    assert_costs(result, users=400, postgres=True)  # every worker's, and the server's on this machine


def test_bench_audience_enters_everyone_once_while_another_journeys_timers_stay_under_1_s_late() -> None:
    """The CI size of `journey bench --audience` (the 1,000,000-profile figures are measured apart)."""
    done = subprocess.run([str(JOURNEY), "bench", "--audience", "20000", "--json"], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["correct"] is True and result["problems"] == []
    assert (result["profiles"], result["matching"], result["entered"]) == (20_000, 10_000, 10_000)
    assert result["entered_per_s"] > 0 and result["peak_rss_mb"] > 0
    assert result["timers"] >= 1, "no timer came due during the run: nothing was measured"
    assert result["timer_lateness_max_ms"] < 1000, result



def test_a_database_the_bench_cannot_reach_is_said_in_words_not_a_traceback(tmp_path: Path) -> None:
    done = subprocess.run([str(JOURNEY), "bench", "--users", "10", "--workers", "2", "--json",
                           "--db", "postgresql+psycopg://postgres@127.0.0.1:9/nothing"],
                          capture_output=True, text=True, timeout=240, cwd=tmp_path)
    assert done.returncode == 1 and done.stdout == ""
    assert "Connection refused" in done.stderr and "Traceback" not in done.stderr


def test_a_server_the_bench_started_that_exits_is_a_bench_error_with_its_log(tmp_path: Path) -> None:
    """The bench's own `journey serve` exiting is the harness failing, not a figure: a BenchError
    (which the command prints as one line) carrying the end of the server's log."""
    from engine.bench.child import wait_healthy
    from engine.errors import BenchError

    log = tmp_path / "serve.log"
    log.write_text("could not open the database\n", encoding="utf-8")
    child = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    with pytest.raises(BenchError, match="exited: could not open the database"):
        wait_healthy("http://127.0.0.1:9", child, log)
