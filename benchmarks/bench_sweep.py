"""Sweeps at scale: a 1,000-cell sweep of trivial prompts on mock servers (step_delay 0, own processes).

Each cell is submitted, followed, its output downloaded into the run directory and its sidecar
written, with a live grid attached. Figures:

* ``sweep_jobs_per_s_1_server`` – baseline: a bare concurrent aiohttp loop on the same server with
  the same concurrency that writes the same files (``sweep.json``, each output under
  ``outputs/<cell>/`` and a ``cells/<cell>.json`` sidecar with the parameters, graph, prompt id and
  timings, written atomically off the event loop); outputs come from ``executed`` messages. Goal >= 0.8.
* ``sweep_jobs_per_s_3_servers`` – baseline: the 1-server sweep figure (ratio = scaling).
* ``sweep_rss_growth`` – the kernel side's peak RSS growth during the 1-server sweep (goal < 100 MB).
* ``sweep_loop_lag_max`` – worst event-loop lag seen by a 5 ms ticker while the sweep and its grid
  update (goal < 50 ms); the baseline is the worst lag the same ticker saw during the bare loop, which
  is what the machine's own scheduling costs (on a loaded machine it dominates).

Blocks alternate which of bare loop and sweep goes first.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pathlib
import tempfile
import time
import uuid
from typing import Any

import psutil

from comfy_nb.experiments import ServerPool, Sweep
from comfy_nb.widgets import SweepGrid
from comfy_nb.workflows import Workflow

from ._common import collect_outputs, mock_server_process, plain, record, trivial_prompt

PER_SERVER = 8


class _Watch:
    """Ticks every 5 ms: the worst lateness is the loop's lag; RSS is sampled on the same tick."""

    def __init__(self) -> None:
        self.lag = 0.0
        self.peak_rss = psutil.Process().memory_info().rss
        self._task: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        process = psutil.Process()
        n = 0
        while True:
            t0 = time.perf_counter()
            await asyncio.sleep(0.005)
            self.lag = max(self.lag, time.perf_counter() - t0 - 0.005)
            n += 1
            if n % 4 == 0:
                self.peak_rss = max(self.peak_rss, process.memory_info().rss)

    def __enter__(self) -> _Watch:
        self._task = asyncio.get_running_loop().create_task(self._tick())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()


def _sweep(n: int, offset: int) -> Sweep:
    return Sweep(Workflow(trivial_prompt(0, prefix="bench/sweep")), **dict[str, Any]({"1.color": list(range(offset, offset + n))}))


def _write_atomic(path: pathlib.Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


async def _bare(url: str, n: int, offset: int) -> tuple[float, float]:
    """jobs/s and worst loop lag of a bare aiohttp loop doing the sweep's work and writing its files."""
    import aiohttp

    cid = uuid.uuid4().hex
    loop = asyncio.get_running_loop()
    waiting: dict[str, tuple[asyncio.Future[list[Any]], list[Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="comfy_nb-bench-bare-") as directory:
        root = pathlib.Path(directory)
        cells = [{"index": k, "key": f"c{k:05d}", "params": {"1.color": offset + k}} for k in range(n)]
        _write_atomic(root / "sweep.json", json.dumps({"cells": cells}).encode())
        async with aiohttp.ClientSession(url) as http, http.ws_connect(f"/ws?clientId={cid}", max_msg_size=0) as ws:


            task = asyncio.create_task(collect_outputs(ws, waiting))
            slots = asyncio.Semaphore(PER_SERVER)

            async def one(cell: dict[str, Any]) -> None:
                graph = trivial_prompt(cell["params"]["1.color"], prefix="bench/bare")
                pid = str(uuid.uuid4())
                async with slots:
                    submitted = time.time()
                    waiting[pid] = (loop.create_future(), [])
                    body = {"prompt": graph, "client_id": cid, "prompt_id": pid}
                    async with http.post("/prompt", json=body) as r:
                        r.raise_for_status()
                        await r.read()
                    images = await waiting[pid][0]
                    del waiting[pid]
                image = images[0]
                async with http.get("/view", params=image) as r:
                    r.raise_for_status()
                    data = await r.read()
                target = root / "outputs" / cell["key"] / image["subfolder"] / image["filename"]
                sidecar = {**cell, "state": "completed", "prompt_id": pid, "server": url, "graph": graph,
                           "submitted_at": submitted, "finished_at": time.time(),
                           "outputs": [target.relative_to(root).as_posix()]}

                def write() -> None:
                    _write_atomic(target, data)
                    _write_atomic(root / "cells" / f"{cell['key']}.json", json.dumps(sidecar).encode())

                await asyncio.to_thread(write)

            with _Watch() as watch:
                t0 = time.perf_counter()
                await asyncio.gather(*(one(c) for c in cells))
                elapsed = time.perf_counter() - t0
            task.cancel()
        assert len(list((root / "cells").glob("*.json"))) == n, "bare loop: a sidecar is missing"
    return n / elapsed, watch.lag


async def _run(urls: list[str], n: int, offset: int) -> tuple[float, float, int]:
    """jobs/s, worst loop lag (s), RSS growth (bytes) for one sweep with a grid attached."""
    with tempfile.TemporaryDirectory(prefix="comfy_nb-bench-sweep-") as directory:
        async with ServerPool(urls) as pool:
            rss0 = psutil.Process().memory_info().rss
            with _Watch() as watch:
                t0 = time.perf_counter()
                run = await pool.run_sweep(_sweep(n, offset), concurrency=PER_SERVER * len(urls),
                                           output_dir=directory)
                grid = SweepGrid(run, size=64)
                await run.wait()
                elapsed = time.perf_counter() - t0
                grid.flush()
            assert run.counts() == {"completed": n}, run.counts()
            grid.close()
        return n / elapsed, watch.lag, watch.peak_rss - rss0


def run(quick: bool = False) -> list[dict[str, Any]]:
    n, blocks = (100, 1) if quick else (1000, 2)
    bare_s = sweep_s = 0.0
    bare_lag = sweep_lag = 0.0
    rss = 0
    ratios = []
    with contextlib.ExitStack() as stack:
        urls = [stack.enter_context(mock_server_process()) for _ in range(3)]
        asyncio.run(_run(urls[:1], 50, 10_000_000))  # warm-up: imports, widget machinery, server caches
        asyncio.run(_bare(urls[0], 50, 11_000_000))
        offset = 0
        for b in range(blocks):
            pair: dict[str, float] = {}
            for who in ("bare", "sweep") if b % 2 == 0 else ("sweep", "bare"):
                offset += n
                if who == "bare":
                    rate, lag = asyncio.run(_bare(urls[0], n, offset))
                    bare_s, bare_lag = bare_s + n / rate, max(bare_lag, lag)
                else:
                    rate, lag, grown = asyncio.run(_run(urls[:1], n, offset))
                    sweep_s, sweep_lag, rss = sweep_s + n / rate, max(sweep_lag, lag), max(rss, grown)
                pair[who] = rate
            ratios.append(round(pair["sweep"] / pair["bare"], 3))
        three, lag3, _ = asyncio.run(_run(urls, n, offset + n))
    one = n * blocks / sweep_s
    return [
        record("sweep_jobs_per_s_1_server", one, "jobs/s", n * blocks / bare_s, jobs=n, blocks=blocks,
               concurrency=PER_SERVER, goal=">= 0.8", block_ratios=ratios,
               baseline_is="bare concurrent aiohttp loop writing the same files, same server and concurrency"),
        record("sweep_jobs_per_s_3_servers", three, "jobs/s", one, jobs=n, concurrency=3 * PER_SERVER,
               baseline_is="the 1-server sweep"),
        plain("sweep_rss_growth", rss / 2**20, "MB", jobs=n, goal="< 100 MB"),
        record("sweep_loop_lag_max", 1000 * max(sweep_lag, lag3), "ms", 1000 * bare_lag, goal="< 50 ms",
               one_server_ms=round(1000 * sweep_lag, 1), three_servers_ms=round(1000 * lag3, 1),
               baseline_is="worst lag the same ticker saw during the bare loop (the machine's own scheduling)"),
    ]
