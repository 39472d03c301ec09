"""Output download throughput: ``client.download`` against a plain aiohttp download of the same files.

Twenty 1024x1024 random-noise PNGs (incompressible, ~3 MiB each) are uploaded once to the mock (its
own process) and fetched through ``/view``; both download all of them into memory over one kept
connection (opened outside the clock), in blocks that alternate which goes first. MiB/s; goal >= 0.9x.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from comfy_nb import AsyncComfyClient
from comfy_nb.client import Output

from ._common import mock_server_process, record


async def make_outputs(url: str, n: int) -> list[Output]:
    """Upload n random-noise PNGs (incompressible) and address them as outputs of type ``input``."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(9)
    outs = []
    async with AsyncComfyClient(url) as client:
        for i in range(n):
            img = Image.fromarray(rng.integers(0, 256, (1024, 1024, 3), dtype=np.uint8))
            name = await client.upload_image(img, name=f"noise_{i}.png", subfolder="dl", overwrite=True)
            sub, _, base = name.rpartition("/")
            outs.append(Output(kind="image", filename=base, subfolder=sub, folder_type="input"))
    return outs


async def ours(url: str, outs: list[Output]) -> tuple[float, int]:
    async with AsyncComfyClient(url) as client:
        t0 = time.perf_counter()
        total = 0
        for o in outs:
            total += len(await client.download(o))
        return time.perf_counter() - t0, total


async def bare(url: str, outs: list[Output]) -> tuple[float, int]:
    import aiohttp

    async with aiohttp.ClientSession(url) as http:
        async with http.get("/prompt") as r:  # open the connection outside the clock, as comfy_nb's connect does
            await r.read()
        t0 = time.perf_counter()
        total = 0
        for o in outs:
            async with http.get("/view", params=o.view_params()) as r:
                r.raise_for_status()
                total += len(await r.read())
        return time.perf_counter() - t0, total


def run(quick: bool = False) -> list[dict[str, Any]]:
    n, blocks = (5, 2) if quick else (20, 5)
    with mock_server_process() as url:
        outs = asyncio.run(make_outputs(url, n))
        asyncio.run(ours(url, outs[:2]))
        asyncio.run(bare(url, outs[:2]))
        o_s = p_s = 0.0
        o_b = p_b = 0
        for k in range(blocks):
            for who in (bare, ours) if k % 2 == 0 else (ours, bare):
                s, b = asyncio.run(who(url, outs))
                if who is bare:
                    p_s, p_b = p_s + s, p_b + b
                else:
                    o_s, o_b = o_s + s, o_b + b
    assert o_b == p_b, "both fetched the same bytes"
    mib = 2**20
    return [record("download_throughput", o_b / mib / o_s, "MiB/s", p_b / mib / p_s, files=len(outs),
                   mean_file_kib=round(o_b / len(outs) / blocks / 1024, 1), goal=">= 0.9",
                   baseline_is="aiohttp.ClientSession.get + read() of the same /view URLs, one session")]
