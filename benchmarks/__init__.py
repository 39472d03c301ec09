"""Benchmarks: ``python -m benchmarks`` prints one JSON line per benchmark.

Each ``bench_*.py`` module has ``run(quick: bool = False, url: str | None = None) -> list[dict]``; a
record has ``name``, ``value``, ``unit``, ``baseline`` and ``ratio`` (value / baseline, measured in
the same run), plus optional details.
"""
