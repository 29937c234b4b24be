"""Benchmarks run apart from the test suite: `python -m pytest benchmarks --benchmark-enable`."""
