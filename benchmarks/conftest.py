"""Benchmarks are timed runs (``python -m benchmarks``), never pytest tests: collect nothing here."""

collect_ignore_glob = ["*.py"]
