"""`journey forecast` speed (docs/cli.md): the shipped cart-abandonment journey over 100,000
profiles x 10 runs, a million profile-runs, in under 60 s on two cores, worker processes included.

Run: python -m pytest benchmarks/test_bench_forecast.py --benchmark-enable   (JOURNEY_BENCH_PROFILES for N)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from pytest_benchmark.fixture import BenchmarkFixture

from benchmarks.forecast_population import write_population

ROOT = Path(__file__).resolve().parent.parent
PROFILES = int(os.environ.get("JOURNEY_BENCH_PROFILES", "100000"))


def test_forecast_a_million_profile_runs(benchmark: BenchmarkFixture, tmp_path: Path) -> None:
    profiles, events = write_population(tmp_path, PROFILES)
    argv = [sys.executable, "-c", "from engine.cli import main; main()", "forecast",
            str(ROOT / "journeys" / "cart-abandonment.yaml"), "--profiles", str(profiles), "--events", str(events),
            "--runs", "10", "--workers", "2", "--json"]

    def forecast() -> tuple[float, dict[str, object]]:
        started = time.monotonic()
        done = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=600)
        return time.monotonic() - started, json.loads(done.stdout)

    seconds, document = benchmark.pedantic(forecast, rounds=1, iterations=1)
    assert document["profiles"] == PROFILES and document["runs"] == 10
    assert seconds < 60 * PROFILES / 100_000, f"{seconds:.1f} s"
