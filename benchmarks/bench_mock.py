"""Mock server throughput: trivial prompts (EmptyImage → SaveImage, 8x8) completed per second.

One client, one WebSocket, one HTTP connection pool: all prompts are submitted, then the clock stops
at the last ``executing {node: null}``. Each prompt has its own colour, so nothing comes from the cache.
The server runs in its usual background thread (the same process, so client and server share the GIL,
which makes this a conservative figure).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

BASELINE = 300.0


def _prompt(i: int) -> dict[str, Any]:
    return {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": i & 0xFFFFFF}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "bench/trivial"}},
    }


async def _measure(url: str, count: int) -> float:
    import aiohttp

    client_id = uuid.uuid4().hex
    ws_url = f"{url.replace('http', 'ws', 1)}/ws?clientId={client_id}"
    async with aiohttp.ClientSession() as session, session.ws_connect(ws_url) as ws:
        await ws.receive()  # hello status
        done = 0
        finished = asyncio.Event()

        async def reader() -> None:
            nonlocal done
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    continue
                if '"executing"' in msg.data:
                    data = json.loads(msg.data)["data"]
                    if data.get("node") is None:
                        done += 1
                        if done >= count:
                            finished.set()
                            return

        task = asyncio.create_task(reader())
        sem = asyncio.Semaphore(16)

        async def submit(i: int) -> None:
            async with sem:
                body = {"prompt": _prompt(i), "client_id": client_id}
                async with session.post(f"{url}/prompt", json=body) as resp:
                    resp.raise_for_status()
                    await resp.read()

        start = time.perf_counter()
        await asyncio.gather(*(submit(i) for i in range(count)))
        await asyncio.wait_for(finished.wait(), timeout=120)
        elapsed = time.perf_counter() - start
        task.cancel()
        return count / elapsed


def run(quick: bool = False) -> list[dict[str, Any]]:
    from comfy_nb.mock import MockServer

    count = 300 if quick else 2000
    with MockServer(step_delay=0) as server:
        asyncio.run(_measure(server.url, 50))  # warm up
        value = asyncio.run(_measure(server.url, count))
    return [
        {
            "name": "mock_throughput",
            "value": round(value, 1),
            "unit": "prompts/s",
            "baseline": BASELINE,
            "ratio": round(value / BASELINE, 3),
        }
    ]


if __name__ == "__main__":
    for record in run():
        print(record)
