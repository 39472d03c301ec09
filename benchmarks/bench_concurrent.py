"""1,000 concurrent jobs tracked to completion: comfy_nb against a bare loop doing the same work.

Both submit 1,000 prompts at once and wait until every one has ended with its outputs. The bare
loop is what a careful programmer writes on aiohttp: one session and one WebSocket, client-chosen
prompt ids, a reader that collects each prompt's ``executed`` outputs and resolves its future at
``executing {node: null}``. Connecting is outside the clock for both; the clock runs from the first
submit to the last end. Blocks alternate which goes first. Throughput ratio = comfy_nb / bare
(goal >= 0.95). Peak RSS growth of the process during comfy_nb's run is reported too.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import psutil

from comfy_nb import AsyncComfyClient

from ._common import collect_outputs, mock_server_process, plain, record, trivial_prompt


async def bare(url: str, start: int, n: int) -> float:
    import aiohttp

    cid = uuid.uuid4().hex
    loop = asyncio.get_running_loop()
    waiting: dict[str, tuple[asyncio.Future[list[Any]], list[Any]]] = {}
    async with aiohttp.ClientSession(url) as http, http.ws_connect(f"/ws?clientId={cid}", max_msg_size=0) as ws:


        task = asyncio.create_task(collect_outputs(ws, waiting))

        async def one(i: int) -> list[Any]:
            pid = str(uuid.uuid4())
            waiting[pid] = (loop.create_future(), [])
            body = {"prompt": trivial_prompt(i, "conc/img"), "client_id": cid, "prompt_id": pid}
            async with http.post("/prompt", json=body) as r:
                r.raise_for_status()
                await r.read()
            return await waiting[pid][0]

        t0 = time.perf_counter()
        outputs = await asyncio.gather(*(one(i) for i in range(start, start + n)))
        seconds = time.perf_counter() - t0
        task.cancel()
    assert all(outputs), "bare loop: a prompt ended without outputs"
    return seconds


async def ours(url: str, start: int, n: int) -> tuple[float, int]:
    proc = psutil.Process()
    rss0 = peak = proc.memory_info().rss
    async with AsyncComfyClient(url) as client:
        t0 = time.perf_counter()
        jobs = await asyncio.gather(*(client.submit(trivial_prompt(i, "conc/img")) for i in range(start, start + n)))
        peak = max(peak, proc.memory_info().rss)
        outputs = [await job.result(timeout=120) for job in jobs]
        seconds = time.perf_counter() - t0
        peak = max(peak, proc.memory_info().rss)
    assert all(outputs), "comfy_nb: a job ended without outputs"
    return seconds, peak - rss0


def run(quick: bool = False) -> list[dict[str, Any]]:
    n, blocks = (200, 2) if quick else (1000, 4)
    b_total = o_total = 0.0
    ratios = []
    growth = 0
    with mock_server_process() as url:
        asyncio.run(bare(url, 0, 50))
        asyncio.run(ours(url, 50, 50))
        seq = 100
        for b in range(blocks):
            for who in (("bare", "ours") if b % 2 == 0 else ("ours", "bare")):
                if who == "bare":
                    bs = asyncio.run(bare(url, seq, n))
                else:
                    os_, g = asyncio.run(ours(url, seq, n))
                    growth = max(growth, g)
                seq += n
            b_total, o_total = b_total + bs, o_total + os_
            ratios.append(round(bs / os_, 3))
    jobs = n * blocks
    return [
        record("concurrent_1000_jobs_throughput", jobs / o_total, "jobs/s", jobs / b_total,
               jobs_per_block=n, blocks=blocks, goal=">= 0.95", block_ratios=ratios,
               baseline_is="bare aiohttp loop, same work (all submitted at once, outputs from executed)"),
        plain("concurrent_1000_jobs_peak_rss_growth", growth / 2**20, "MiB", jobs_per_block=n),
    ]
