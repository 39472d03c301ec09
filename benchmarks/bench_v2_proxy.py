"""Issue 16: jobs through ``comfy-api-proxy`` 0.1.6, comfy_nb's ``V2Session`` against ``comfy-sdk``, same run.

The mock (own process) behind the proxy (own process, started as its CLI does). Job: ``EmptyImage``
(colour i) -> ``SaveImage``; submit, wait for the end, download the image. The two clients take
turns in blocks (order rotating) on one event loop in this process. ``lost`` counts jobs a client
ended as not succeeded (comfy-sdk raises ``JobFailed("... ended expired")`` on the proxy's
history/queue race; ``V2Session`` re-reads such states). ``ratio`` is comfy_nb's median per-job time
over comfy-sdk's. comfy-sdk is optional (``pip install comfy-sdk==0.5.0``); without it only comfy_nb's
line is printed, against itself.

Run: ``python -m benchmarks v2_proxy`` (``--quick`` for a smoke run; ``--url URL`` puts the proxy in
front of a real ComfyUI instead of the mock).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import time
from typing import Any

from ._common import api_proxy, mock_server_process, plain, record, trivial_prompt


async def _comfy_nb_jobs(url: str, start: int, count: int, times: list[float]) -> int:
    from comfy_nb.client._v2 import V2Session
    from comfy_nb.errors import ComfyError

    lost = 0
    async with V2Session(url, poll_interval=0.05) as session:
        for i in range(start, start + count):
            t0 = time.perf_counter()
            try:
                job = await session.submit(trivial_prompt(i, "bench_v2/nb"))
                [out] = await session.result(job.id, timeout=60)
                data = await session.download(out)
            except ComfyError:
                lost += 1
                continue
            times.append(time.perf_counter() - t0)
            assert data[:4] == b"\x89PNG"
    return lost


async def _sdk_jobs(url: str, start: int, count: int, times: list[float]) -> int:
    os.environ["COMFY_BASE_URL"] = url
    from comfy_sdk import AsyncComfy
    from comfy_sdk.exceptions import ComfyError as SdkError

    lost = 0
    client = AsyncComfy()
    try:
        for i in range(start, start + count):
            t0 = time.perf_counter()
            try:
                job = await client.run(client.workflows.from_json(trivial_prompt(i, "bench_v2/sdk")))
                data = await job.get_outputs("2")[0].to_bytes()
            except SdkError:
                lost += 1
                continue
            times.append(time.perf_counter() - t0)
            assert data[:4] == b"\x89PNG"
    finally:
        await client.aclose()
    return lost


def _have_sdk() -> bool:
    try:
        import comfy_sdk  # noqa: F401
    except ImportError:
        return False
    return True


def run(quick: bool = False, url: str | None = None) -> list[dict[str, Any]]:
    blocks, per_block = (2, 5) if quick else (6, 25)
    sdk = _have_sdk()
    clients = {"comfy_nb_v2": _comfy_nb_jobs, **({"comfy_sdk": _sdk_jobs} if sdk else {})}
    times: dict[str, list[float]] = {name: [] for name in clients}
    lost: dict[str, int] = dict.fromkeys(clients, 0)
    upstream_cm = contextlib.nullcontext(url) if url else mock_server_process()
    with upstream_cm as upstream, api_proxy(upstream) as proxy_url:

        async def main() -> None:
            n = 0
            for b in range(blocks):
                order = list(clients)[b % len(clients):] + list(clients)[: b % len(clients)]
                for name in order:
                    lost[name] += await clients[name](proxy_url, n, per_block, times[name])
                    n += per_block

        asyncio.run(main())
    median = {name: statistics.median(t) * 1000 if t else float("nan") for name, t in times.items()}
    jobs = blocks * per_block
    upstream_is = "real" if url else "mock"
    if not sdk:  # without comfy-sdk there is nothing to compare with: an absolute figure, no ratio
        return [plain("v2_proxy_per_job_comfy_nb_v2", median["comfy_nb_v2"], "ms", jobs=jobs,
                      lost=lost["comfy_nb_v2"], upstream=upstream_is, note="comfy-sdk not installed")]
    return [
        record(f"v2_proxy_per_job_{name}", median[name], "ms", median["comfy_sdk"], jobs=jobs, lost=lost[name],
               baseline_name="comfy_sdk", upstream=upstream_is)
        for name in clients
    ]
