"""``import comfy_nb`` cold: a fresh interpreter each time, median of 10 (goal <= 150 ms, interpreter start
included), alternating with ``python -c pass`` (the baseline) so load hits both alike. A second line
times ``from comfy_nb import AsyncComfyClient`` (the client and its wire models, loaded on first use) as
an absolute figure, and the probe reports whether importing comfy_nb pulls in ipywidgets (must not)."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from typing import Any

from ._common import plain, record

CODE = {"bare": "pass", "ours": "import comfy_nb", "client": "from comfy_nb import AsyncComfyClient"}


def _time(code: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    return time.perf_counter() - t0


def run(quick: bool = False) -> list[dict[str, Any]]:
    runs = 5 if quick else 10
    for code in CODE.values():  # warm the OS file cache and .pyc files; still a cold interpreter each run
        _time(code)
    times: dict[str, list[float]] = {k: [] for k in CODE}
    for _ in range(runs):
        for key, code in CODE.items():
            times[key].append(_time(code))
    bare, ours, client = (1000 * statistics.median(times[k]) for k in ("bare", "ours", "client"))
    probe = subprocess.run(
        [sys.executable, "-X", "importtime", "-c",
         "import comfy_nb, sys, json; print(json.dumps(['ipywidgets' in sys.modules, len(sys.modules)]))"],
        check=True, capture_output=True, text=True,
    )
    widgets_loaded, modules = json.loads(probe.stdout.strip())
    return [
        record("import_comfy_nb_cold", ours, "ms", bare, runs=runs, goal="<= 150 ms", baseline_is="python -c pass",
               import_cost_ms=round(ours - bare, 1), ipywidgets_imported=widgets_loaded, modules=modules),
        plain("import_comfy_nb_client_cold", client, "ms", runs=runs, import_cost_ms=round(client - bare, 1),
              code=CODE["client"]),
    ]
