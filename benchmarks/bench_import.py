"""``import comfy_nb`` cold time (fresh interpreter each run, median of several) against a bare
``python -c pass``, and whether importing the client pulls in ipywidgets (must not)."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from typing import Any

from ._common import record


def _time(code: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    return time.perf_counter() - t0


def run(quick: bool = False) -> list[dict[str, Any]]:
    runs = 5 if quick else 15
    _time("import comfy_nb")  # warm the OS file cache and .pyc files; still a cold interpreter each run
    bare = statistics.median(_time("pass") for _ in range(runs))
    ours = statistics.median(_time("import comfy_nb") for _ in range(runs))
    probe = subprocess.run(
        [sys.executable, "-X", "importtime", "-c",
         "import comfy_nb, sys, json; print(json.dumps(['ipywidgets' in sys.modules, len(sys.modules)]))"],
        check=True, capture_output=True, text=True,
    )
    widgets_loaded, modules = json.loads(probe.stdout.strip())
    slowest = sorted(
        (line.split("|") for line in probe.stderr.splitlines() if line.startswith("import time:") and "|" in line
         and line.split("|")[1].strip().isdigit()),
        key=lambda parts: -int(parts[1]),
    )[:3]
    return [
        record("import_comfy_nb_cold", 1000 * ours, "ms", 1000 * bare, runs=runs, baseline_is="python -c pass",
               import_cost_ms=round(1000 * (ours - bare), 1), ipywidgets_imported=widgets_loaded, modules=modules,
               heaviest=[p[2].strip() for p in slowest]),
    ]
