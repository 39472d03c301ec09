"""Per-job client overhead: N trivial jobs one after another, comfy_nb against a bare protocol loop.

The bare loop is the least a correct client must do (raw ``websockets`` + ``httpx``: submit, wait for
``executing {node: null}``, read history). Both run against the same mock server (its own process) in
the same run, taking turns in blocks so drift hits both alike. ``ratio`` = comfy_nb / bare (goal ≤ 1.10).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
import websockets

from comfy_nb import AsyncComfyClient

from ._common import finished_prompt, mock_server_process, record, trivial_prompt


async def bare_jobs(url: str, start: int, n: int) -> float:
    cid = uuid.uuid4().hex
    ws_url = url.replace("http://", "ws://") + f"/ws?clientId={cid}"
    async with httpx.AsyncClient(base_url=url) as http, websockets.connect(ws_url, max_size=None) as ws:
        t0 = time.perf_counter()
        for i in range(start, start + n):
            pid = str(uuid.uuid4())
            r = await http.post("/prompt", json={"prompt": trivial_prompt(i), "client_id": cid, "prompt_id": pid})
            r.raise_for_status()
            while finished_prompt(await ws.recv()) != pid:
                pass
            h = await http.get(f"/history/{pid}")
            assert h.json()[pid]["outputs"], "bare loop: no outputs"
        return time.perf_counter() - t0


async def comfy_nb_jobs(url: str, start: int, n: int) -> float:
    async with AsyncComfyClient(url) as client:
        t0 = time.perf_counter()
        for i in range(start, start + n):
            job = await client.submit(trivial_prompt(i))
            outputs = await job.result()
            assert outputs, "comfy_nb: no outputs"
        return time.perf_counter() - t0


def run(quick: bool = False) -> list[dict[str, Any]]:
    jobs, blocks = (40, 2) if quick else (200, 4)
    per_block = jobs // blocks
    with mock_server_process() as url:
        asyncio.run(bare_jobs(url, 0, 20))  # warm-up both paths (imports, server caches)
        asyncio.run(comfy_nb_jobs(url, 20, 20))
        bare = ours = 0.0
        seq = 1000
        for _ in range(blocks):
            bare += asyncio.run(bare_jobs(url, seq, per_block))
            seq += per_block
            ours += asyncio.run(comfy_nb_jobs(url, seq, per_block))
            seq += per_block

    def per_job(total: float) -> float:
        return 1000 * total / (per_block * blocks)

    return [record("client_overhead_per_job", per_job(ours), "ms/job", per_job(bare), jobs=per_block * blocks,
                   baseline_is="bare websockets+httpx loop (submit, executing null, GET /history)")]
