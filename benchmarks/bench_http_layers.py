"""Issue 15: what one HTTP exchange costs on each layer of the path the project requires.

The same ``GET /prompt`` (a small JSON answer) against the mock in its own process, read whole, on one
kept-alive connection, through: plain aiohttp (``ClientSession.get`` + ``read()``, the baseline); the
httpx-aiohttp transport's public ``handle_async_request``; ``httpx.AsyncClient.send`` over that transport
(what a client built on httpx's public API pays); and comfy_nb's own ``Transport.request`` (the client's
one exchange: bounded read, error mapping, retries). Blocks of 300 requests rotate between the four, 8
blocks each; the figure is the median microseconds per request over the blocks, the ratio against
aiohttp in the same run.

Run: ``python -m benchmarks http_layers``.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from ._common import mock_server_process, record


async def _measure(url: str, blocks: int, per_block: int) -> dict[str, float]:
    import aiohttp
    import httpx
    from httpx_aiohttp import AiohttpTransport

    from comfy_nb.client._transport import Transport

    target = f"{url}/prompt"
    transport = AiohttpTransport()
    client = httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(30.0))
    session = aiohttp.ClientSession()
    ours = Transport(url, {}, timeout=30.0, max_retries=0, verify=True, max_download_size=1 << 20, http_client=None)
    timeout = {"connect": 30.0, "read": 30.0, "write": 30.0, "pool": 30.0}

    async def plain_aiohttp() -> None:
        async with session.get(target) as response:
            await response.read()

    async def httpx_transport() -> None:
        request = httpx.Request("GET", target, extensions={"timeout": timeout})
        response = await transport.handle_async_request(request)
        await response.aread()
        await response.aclose()

    async def httpx_client() -> None:
        response = await client.send(client.build_request("GET", target), stream=True)
        await response.aread()
        await response.aclose()

    async def comfy_nb_transport() -> None:
        await ours.request("GET", "/prompt")

    ways: dict[str, Callable[[], Awaitable[None]]] = {
        "aiohttp": plain_aiohttp, "httpx_transport": httpx_transport, "httpx_client": httpx_client,
        "comfy_nb_transport": comfy_nb_transport,
    }
    times: dict[str, list[float]] = {name: [] for name in ways}
    try:
        for way in ways.values():  # warm-up: connections open, code paths hot
            for _ in range(50):
                await way()
        for block in range(blocks):
            names = list(ways)
            names = names[block % len(names):] + names[:block % len(names)]  # rotate the order
            for name in names:
                t0 = time.perf_counter()
                for _ in range(per_block):
                    await ways[name]()
                times[name].append((time.perf_counter() - t0) / per_block * 1e6)
    finally:
        await ours.aclose()
        await client.aclose()
        await session.close()
    return {name: statistics.median(values) for name, values in times.items()}


def run(quick: bool = False) -> list[dict[str, Any]]:
    blocks, per_block = (2, 100) if quick else (8, 300)
    with mock_server_process() as url:
        medians = asyncio.run(_measure(url, blocks, per_block))
    base = medians["aiohttp"]
    notes = {
        "aiohttp": "aiohttp ClientSession.get + read(), one session",
        "httpx_transport": "httpx-aiohttp AiohttpTransport.handle_async_request (public transport API)",
        "httpx_client": "httpx.AsyncClient.send over that transport (httpx's public client API)",
        "comfy_nb_transport": "comfy_nb's Transport.request (bounded read, error mapping, retries)",
    }
    return [
        record(f"http_layer_{name}_us", value, "µs/request (median)", base, baseline_is="aiohttp",
               note=notes[name], blocks=blocks, requests_per_block=per_block)
        for name, value in medians.items()
    ]
