"""The same model-free job for every client, side by side in one run; per-job median and p90.

Job: ``EmptyImage(8x8, colour i) -> SaveImage``; submit, wait for the end, get the image (details
and the clock rules in ``_client_workers``). Each client runs in its own process, set up once and
kept; the run is many short blocks (10 jobs) whose order rotates, so drift and neighbours' load hit
all alike. ``block_ratio_median`` is the median over blocks of a client's block median divided by
``bare_aiohttp``'s in the same block. Ratios are against ``bare_aiohttp``, a
bare loop doing the same protocol work as comfy_nb (outputs from ``executed``, no history read, one
connection kept); ``bare_httpx`` is the same loop on httpx + websockets; ``bare_httpx_aiohttp`` the
same loop with its HTTP through httpx over the httpx-aiohttp transport (comfy_nb's one HTTP path).

Lines:
- ``per_job_async_median`` / ``_p90``, ``per_job_blocking_median`` / ``_p90``: the targets
  (median <= 1.05x, p90 <= 1.10x the bare aiohttp loop);
- ``http_path_floor_median`` (``bare_httpx_aiohttp`` / ``bare_aiohttp``): what comfy_nb's one HTTP path
  costs a bare loop; ``per_job_async_over_floor_median`` (comfy_nb async / ``bare_httpx_aiohttp``): what
  comfy_nb adds on top of it;
- ``http_path_*_public``, ``http_path_plain_httpx``: comfy_nb async handed a public ``httpx.AsyncClient`` (with the httpx-aiohttp
  transport, and plain httpx) against comfy_nb's own client (since issue 14 that is httpx over the
  httpx-aiohttp transport too, so the first pair should be level);
- ``clients_<name>``: every client, peers included when ``python -m benchmarks --setup-peers`` made
  ``benchmarks/.peers-venv`` (ComfyScript sync and async, comfy-api-simplified, comfy-sdk through a
  comfy-api-proxy started here for the run).

Lost jobs are listed one by one (sequence, prompt id, cause, the server's history of that prompt),
never extrapolated (warm-up jobs included: ``lost`` can exceed the timed count's complement); a
worker stops after ``MAX_LOST`` and its unsubmitted jobs are ``not_run``.
Run: ``python -m benchmarks clients`` (built-in mock) or ``... clients --url URL`` (a real ComfyUI).
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import statistics
import subprocess
import sys
import uuid
from typing import Any

from . import _peers
from ._common import api_proxy, mock_server_process

OURS = ["bare_aiohttp", "bare_httpx", "bare_httpx_aiohttp", "comfy_nb_async", "comfy_nb_blocking",
        "comfy_nb_async_httpx_aiohttp", "comfy_nb_async_httpx"]
PEERS = ["comfyscript_sync", "comfyscript_async", "comfy_api_simplified", "comfy_sdk_proxy"]
ROOT = pathlib.Path(__file__).resolve().parent.parent
WARMUP = 5


def p90(xs: list[float]) -> float:
    return statistics.quantiles(xs, n=10, method="inclusive")[-1] if len(xs) > 1 else xs[0]




class Worker:
    """One client's process, kept for the whole run; ``block`` runs ``n`` jobs and returns its JSON."""

    def __init__(self, name: str, url: str, history_url: str | None = None) -> None:
        python = str(_peers.python()) if name in PEERS else sys.executable
        self.name = name
        history = ["--history-url", history_url] if history_url else []
        self.proc = subprocess.Popen(
            [python, "-m", "benchmarks._client_workers", name, "--url", url, *history], cwd=ROOT, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        self.failed: str | None = None
        self._read()  # the ready line: imports and setup are done before any block

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        while True:  # peers print their own chatter on stdout; our lines start with {"client"
            line = self.proc.stdout.readline()
            if not line:
                self.failed = f"worker exited ({self.proc.wait()})"
                return {}
            if line.startswith('{"client"'):
                return dict(json.loads(line))

    def block(self, start: int, n: int, warmup: int, prefix: str) -> dict[str, Any]:
        empty = {"client": self.name, "ms": [], "lost": [], "bad": [], "not_run": n, "error": self.failed}
        if self.failed:
            return empty
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"start": start, "n": n, "warmup": warmup, "prefix": prefix}) + "\n")
        self.proc.stdin.flush()
        got = self._read()
        if got.get("error"):
            self.failed = got["error"]
        return got or {**empty, "error": self.failed}

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def run(quick: bool = False, url: str | None = None) -> list[dict[str, Any]]:
    n, blocks = (5, 4) if quick else (10, 24)
    peers = sorted(_peers.available() & set(PEERS), key=PEERS.index)
    clients = OURS + peers
    tag = uuid.uuid4().hex[:6]
    got: dict[str, list[dict[str, Any]]] = {c: [] for c in clients}
    with contextlib.ExitStack() as stack:
        server = url or stack.enter_context(mock_server_process())
        proxy = stack.enter_context(api_proxy(server, str(_peers.python()))) if "comfy_sdk_proxy" in peers else None
        workers = {}
        for c in clients:
            workers[c] = Worker(c, proxy if c == "comfy_sdk_proxy" and proxy else server)
            stack.callback(workers[c].close)
        seq = 1
        for b in range(blocks):
            order = clients[b % len(clients):] + clients[: b % len(clients)]
            for c in order:
                warmup = WARMUP if b == 0 else 0
                # one output folder per client: SaveImage's folder scan costs every client the same
                got[c].append(workers[c].block(seq, n, warmup, f"bench_{tag}_{c}/img"))
                seq += n + warmup
    return summarize(got, n, blocks, url, skipped=[p for p in PEERS if p not in peers])


def summarize(got: dict[str, list[dict[str, Any]]], n: int, blocks: int, url: str | None,
              skipped: list[str]) -> list[dict[str, Any]]:
    def stats(c: str) -> dict[str, Any]:
        rows = got[c]
        ms = [x for r in rows for x in r["ms"]]
        lost = [dict(x, block=b) for b, r in enumerate(rows) for x in r["lost"]]  # warm-up jobs too
        bad = [dict(x, block=b) for b, r in enumerate(rows) for x in r["bad"]]
        errors = sorted({r["error"] for r in rows if r.get("error")})
        not_run = sum(r.get("not_run", 0) for r in rows)
        paired = [statistics.median(r["ms"]) / statistics.median(bare["ms"])
                  for r, bare in zip(rows, got["bare_aiohttp"], strict=False) if r["ms"] and bare["ms"]]
        return {"ms": ms, "lost": lost, "bad": bad, "errors": errors, "not_run": not_run,
                "median": statistics.median(ms) if ms else None, "p90": p90(ms) if ms else None,
                "block_ratio_median": round(statistics.median(paired), 3) if paired else None}

    s = {c: stats(c) for c in got}
    base = s["bare_aiohttp"]
    server = url or "built-in mock (own process)"
    common = {"jobs_per_block": n, "blocks": blocks, "warmup_per_worker": WARMUP, "server": server}

    def line(name: str, c: str, q: str, ref: str, goal: str | None = None, **extra: Any) -> dict[str, Any]:
        v, b = s[c][q], s[ref][q]
        rec: dict[str, Any] = {"name": name, "value": round(v, 3) if v else None, "unit": f"ms/job ({q})",
                               "baseline": round(b, 3) if b else None,
                               "ratio": round(v / b, 3) if v and b else None, "client": c, "baseline_is": ref}
        if goal:
            rec["goal"] = goal
        return {**rec, **extra, **common}

    out = [
        line("per_job_async_median", "comfy_nb_async", "median", "bare_aiohttp", "<= 1.05"),
        line("per_job_async_p90", "comfy_nb_async", "p90", "bare_aiohttp", "<= 1.10"),
        line("per_job_blocking_median", "comfy_nb_blocking", "median", "bare_aiohttp", "<= 1.05"),
        line("per_job_blocking_p90", "comfy_nb_blocking", "p90", "bare_aiohttp", "<= 1.10"),
        line("http_path_floor_median", "bare_httpx_aiohttp", "median", "bare_aiohttp",
             note="the bare loop with its HTTP through httpx over httpx-aiohttp (comfy_nb's one HTTP path): "
                  "what that path costs any client"),
        line("per_job_async_over_floor_median", "comfy_nb_async", "median", "bare_httpx_aiohttp",
             note="comfy_nb async against the bare loop on the same HTTP path: what comfy_nb itself adds"),
        line("http_path_httpx_aiohttp_public_median", "comfy_nb_async_httpx_aiohttp", "median", "comfy_nb_async",
             note="comfy_nb given httpx.AsyncClient(transport=httpx_aiohttp.AiohttpTransport()) vs its own path today"),
        line("http_path_plain_httpx_median", "comfy_nb_async_httpx", "median", "comfy_nb_async",
             note="comfy_nb given a plain httpx.AsyncClient vs its own path today"),
    ]
    for c in got:
        st = s[c]
        out.append(line(f"clients_{c}", c, "median", "bare_aiohttp",
                        p90_ms=round(st["p90"], 3) if st["p90"] else None,
                        p90_ratio=round(st["p90"] / base["p90"], 3) if st["p90"] and base["p90"] else None,
                        block_ratio_median=st["block_ratio_median"], timed_jobs=len(st["ms"]),
                        lost=len(st["lost"]) + len(st["bad"]), lost_jobs=(st["lost"] + st["bad"])[:20],
                        not_run=st["not_run"],
                        worker_errors=st["errors"][:3]))
    for c in skipped:
        out.append({"name": f"clients_{c}", "skipped": "peer not installed: run python -m benchmarks --setup-peers"})
    return out
