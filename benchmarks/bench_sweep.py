"""Sweeps at scale: a 1,000-cell sweep of trivial prompts on mock servers (step_delay 0, own processes).

Each cell is submitted, followed, its output downloaded into the run directory and its sidecar
written, with a live grid attached. Figures:

* ``sweep_jobs_per_s_1_server`` – baseline: a bare concurrent loop on the same server with the same
  concurrency (``AsyncComfyClient.submit`` + ``result`` + ``download`` into memory, no files, no grid):
  the ratio is what the sweep's bookkeeping and disk writes cost.
* ``sweep_jobs_per_s_3_servers`` – baseline: the 1-server sweep figure (ratio = scaling).
* ``sweep_rss_growth`` – the kernel side's peak RSS growth during the 1-server sweep (goal < 100 MB).
* ``sweep_loop_lag_max`` – worst event-loop lag seen by a 5 ms ticker while the sweep and its grid
  update (goal < 100 ms).
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from typing import Any

import psutil

from comfy_nb import AsyncComfyClient
from comfy_nb.experiments import ServerPool, Sweep
from comfy_nb.widgets import SweepGrid
from comfy_nb.workflows import Workflow

from ._common import mock_server_process, record, trivial_prompt

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


async def _bare(url: str, n: int, offset: int) -> float:
    async with AsyncComfyClient(url) as client:
        slots = asyncio.Semaphore(PER_SERVER)

        async def one(i: int) -> None:
            async with slots:
                job = await client.submit(trivial_prompt(i, prefix="bench/bare"))
                outputs = await job.result()
            await client.download(outputs[0])

        t0 = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(offset, offset + n)))
        return n / (time.perf_counter() - t0)


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
    n = 100 if quick else 1000
    with contextlib.ExitStack() as stack:
        urls = [stack.enter_context(mock_server_process()) for _ in range(3)]
        asyncio.run(_run(urls[:1], 50, 10_000_000))  # warm-up: imports, widget machinery, server caches
        bare = asyncio.run(_bare(urls[0], n, 0))
        one, lag1, rss1 = asyncio.run(_run(urls[:1], n, 1_000_000))
        three, lag3, _ = asyncio.run(_run(urls, n, 2_000_000))
    return [
        record("sweep_jobs_per_s_1_server", one, "jobs/s", bare, jobs=n, concurrency=PER_SERVER,
               baseline_is="bare concurrent submit+result+download loop, same server and concurrency"),
        record("sweep_jobs_per_s_3_servers", three, "jobs/s", one, jobs=n, concurrency=3 * PER_SERVER,
               baseline_is="the 1-server sweep"),
        record("sweep_rss_growth", rss1 / 2**20, "MB", 100.0, jobs=n, baseline_is="goal: under 100 MB"),
        record("sweep_loop_lag_max", 1000 * max(lag1, lag3), "ms", 100.0, baseline_is="goal: under 100 ms"),
    ]
