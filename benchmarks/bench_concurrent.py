"""1,000 concurrent jobs tracked to completion: comfy_nb against a bare loop doing the same.

All submit 1,000 prompts at once, then wait for every ``executing null`` (the bare loops: one
socket, a dict of futures by prompt id; one on httpx+websockets, one on aiohttp; the faster is the
baseline). Throughput ratio = comfy_nb jobs/s / bare jobs/s (goal >=
0.9). Peak RSS growth of the client process during comfy_nb's run is reported too. Blocks alternate.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
import psutil
import websockets

from comfy_nb import AsyncComfyClient

from ._common import finished_prompt, mock_server_process, record, trivial_prompt


def plain(name: str, value: float, unit: str, **details: Any) -> dict[str, Any]:
    """A figure with no baseline (ratio null)."""
    return {"name": name, "value": round(value, 4), "unit": unit, "baseline": None, "ratio": None, **details}


async def bare(url: str, start: int, n: int) -> float:
    cid = uuid.uuid4().hex
    loop = asyncio.get_running_loop()
    waiting: dict[str, asyncio.Future[None]] = {}
    async with httpx.AsyncClient(base_url=url, limits=httpx.Limits(max_connections=64),
                                 timeout=httpx.Timeout(60.0, pool=None)) as http, \
            websockets.connect(url.replace("http", "ws", 1) + f"/ws?clientId={cid}", max_size=None) as ws:

        async def reader() -> None:
            async for frame in ws:
                fut = waiting.get(finished_prompt(frame) or "")
                if fut is not None and not fut.done():
                    fut.set_result(None)

        task = asyncio.create_task(reader())
        t0 = time.perf_counter()

        async def one(i: int) -> None:
            pid = str(uuid.uuid4())
            waiting[pid] = loop.create_future()
            r = await http.post("/prompt", json={"prompt": trivial_prompt(i, "conc/img"), "client_id": cid, "prompt_id": pid})
            r.raise_for_status()
            await waiting[pid]

        await asyncio.gather(*(one(i) for i in range(start, start + n)))
        seconds = time.perf_counter() - t0
        task.cancel()
    return seconds


async def bare_aiohttp(url: str, start: int, n: int) -> float:
    import aiohttp

    cid = uuid.uuid4().hex
    loop = asyncio.get_running_loop()
    waiting: dict[str, asyncio.Future[None]] = {}
    async with aiohttp.ClientSession(url) as http, http.ws_connect(f"/ws?clientId={cid}", max_msg_size=0) as ws:

        async def reader() -> None:
            async for frame in ws:
                if frame.type == aiohttp.WSMsgType.TEXT:
                    fut = waiting.get(finished_prompt(frame.data) or "")
                    if fut is not None and not fut.done():
                        fut.set_result(None)

        task = asyncio.create_task(reader())
        t0 = time.perf_counter()

        async def one(i: int) -> None:
            pid = str(uuid.uuid4())
            waiting[pid] = loop.create_future()
            body = {"prompt": trivial_prompt(i, "conc/img"), "client_id": cid, "prompt_id": pid}
            async with http.post("/prompt", json=body) as r:
                r.raise_for_status()
            await waiting[pid]

        await asyncio.gather(*(one(i) for i in range(start, start + n)))
        seconds = time.perf_counter() - t0
        task.cancel()
    return seconds


async def ours(url: str, start: int, n: int) -> tuple[float, int]:
    proc = psutil.Process()
    rss0 = proc.memory_info().rss
    peak = rss0
    async with AsyncComfyClient(url) as client:
        t0 = time.perf_counter()
        jobs = await asyncio.gather(*(client.submit(trivial_prompt(i, "conc/img")) for i in range(start, start + n)))
        peak = max(peak, proc.memory_info().rss)
        for job in jobs:
            await job.result(timeout=120)
        seconds = time.perf_counter() - t0
        peak = max(peak, proc.memory_info().rss)
    return seconds, peak - rss0


def run(quick: bool = False) -> list[dict[str, Any]]:
    n, blocks = (200, 2) if quick else (1000, 3)
    b_total = a_total = o_total = 0.0
    growth = 0
    with mock_server_process() as url:
        asyncio.run(bare(url, 0, 50))
        asyncio.run(ours(url, 50, 50))
        seq = 100
        for _ in range(blocks):
            b_total += asyncio.run(bare(url, seq, n))
            seq += n
            a_total += asyncio.run(bare_aiohttp(url, seq, n))
            seq += n
            s, g = asyncio.run(ours(url, seq, n))
            o_total += s
            growth = max(growth, g)
            seq += n
    jobs = n * blocks
    return [
        record("concurrent_1000_jobs_throughput", jobs / o_total, "jobs/s", jobs / min(b_total, a_total),
               jobs_per_block=n, blocks=blocks, goal=">= 0.9",
               bare_httpx_jobs_per_s=round(jobs / b_total, 1), bare_aiohttp_jobs_per_s=round(jobs / a_total, 1),
               baseline_is="the faster of two bare loops (httpx+websockets, aiohttp), all submitted at once"),
        plain("concurrent_1000_jobs_peak_rss_growth", growth / 2**20, "MiB", jobs_per_block=n),
    ]
