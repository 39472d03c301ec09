"""Issue 16: jobs through ``comfy-api-proxy`` 0.1.6, comfy_nb's ``AsyncComfyClient(kind="v2")`` against ``comfy-sdk``.

The mock (own process) behind the proxy (own process, started as its CLI does); both clients talk to
that one proxy in the same run. Job: ``EmptyImage(8x8, colour i)`` -> ``SaveImage``; submit, wait
for the end, download the image, with the clock rules of ``_client_workers`` (each client in its own
process set up once, short blocks whose order rotates, a job not ended within ``JOB_TIMEOUT`` is
lost). comfy_nb runs ``comfy_nb_v2`` (submit, ``job.result()``, ``client.download``) with its
defaults; comfy-sdk runs ``comfy_sdk_proxy`` (its README path) in the peers venv
(``python -m benchmarks --setup-peers``). Lost jobs are listed one by one (sequence, id, cause, and
what the server behind the proxy has in its history for that prompt: comfy-sdk's job id is the
prompt id there). comfy-sdk takes the proxy's ``expired`` (a job that finished between its
``/history`` and ``/queue`` reads) as final; comfy_nb re-reads it. ``ratio`` is comfy_nb's median
per-job time over comfy-sdk's. Without the peers venv only comfy_nb's line is printed, with no ratio.

Run: ``python -m benchmarks v2_proxy`` (``--quick`` for a smoke run; ``--url URL`` puts the proxy in
front of a real ComfyUI instead of the mock).
"""

from __future__ import annotations

import contextlib
import statistics
import uuid
from typing import Any

from . import _peers
from ._common import api_proxy, mock_server_process, plain, record
from .bench_clients import Worker, p90

OURS = "comfy_nb_v2"
PEER = "comfy_sdk_proxy"


def run(quick: bool = False, url: str | None = None) -> list[dict[str, Any]]:
    blocks, per_block, warmup = (2, 5, 2) if quick else (10, 15, 3)
    clients = [OURS] + ([PEER] if PEER in _peers.available() else [])
    got: dict[str, list[dict[str, Any]]] = {c: [] for c in clients}
    tag = uuid.uuid4().hex[:6]
    with contextlib.ExitStack() as stack:
        upstream = url or stack.enter_context(mock_server_process())
        proxy = stack.enter_context(api_proxy(upstream))
        workers = {}
        for c in clients:
            workers[c] = Worker(c, proxy, history_url=upstream)
            stack.callback(workers[c].close)
        seq = 1
        for b in range(blocks):
            for c in clients[b % len(clients):] + clients[: b % len(clients)]:
                w = warmup if b == 0 else 0
                got[c].append(workers[c].block(seq, per_block, w, f"bench_v2_{tag}_{c}/img"))
                seq += per_block + w

    def summary(c: str) -> dict[str, Any]:
        rows = got[c]
        ms = [x for r in rows for x in r["ms"]]
        lost = [dict(x, block=b) for b, r in enumerate(rows) for x in r["lost"] + r["bad"]]
        return {"ms": ms, "median": statistics.median(ms) if ms else float("nan"), "p90": p90(ms) if ms else None,
                "lost": len(lost), "lost_jobs": lost[:20], "not_run": sum(r.get("not_run", 0) for r in rows),
                "errors": sorted({r["error"] for r in rows if r.get("error")})[:3]}

    s = {c: summary(c) for c in clients}
    common = {"jobs": blocks * per_block, "warmup": warmup, "upstream": "real" if url else "mock"}

    def details(c: str) -> dict[str, Any]:
        st = s[c]
        return {"timed_jobs": len(st["ms"]), "p90_ms": round(st["p90"], 3) if st["p90"] else None,
                "lost": st["lost"], "lost_jobs": st["lost_jobs"], "not_run": st["not_run"],
                "worker_errors": st["errors"], **common}

    if PEER not in clients:  # nothing to compare with: an absolute figure, no ratio
        return [plain(f"v2_proxy_per_job_{OURS}", s[OURS]["median"], "ms", **details(OURS),
                      note="comfy-sdk not installed: run python -m benchmarks --setup-peers")]
    return [record(f"v2_proxy_per_job_{c}", s[c]["median"], "ms", s[PEER]["median"], baseline_name=PEER, **details(c))
            for c in clients]
