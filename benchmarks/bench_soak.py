"""10,000 jobs on the mock (step_delay 0), 64 in flight: jobs/s and the count of lost or hung jobs (must be 0).

A job is *lost* when it ends in any state but completed-with-its-one-output, and *hung* when it has
not ended 60 s after submission. The mock runs in its own process.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from comfy_nb import AsyncComfyClient, JobState

from ._common import mock_server_process, trivial_prompt


def plain(name: str, value: float, unit: str, **details: Any) -> dict[str, Any]:
    """A figure with no baseline (ratio null)."""
    return {"name": name, "value": round(value, 4), "unit": unit, "baseline": None, "ratio": None, **details}


async def soak(url: str, total: int, in_flight: int = 64) -> dict[str, Any]:
    lost = hung = done = 0
    sem = asyncio.Semaphore(in_flight)
    async with AsyncComfyClient(url) as client:

        async def one(i: int) -> None:
            nonlocal lost, hung, done
            async with sem:
                job = await client.submit(trivial_prompt(i, prefix=f"soak{i // 1000}/img"))
                try:
                    status = await job.wait(timeout=60)
                except Exception:
                    hung += 1
                    return
                if status.state is not JobState.COMPLETED or len(status.outputs) != 1:
                    lost += 1
                done += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(total)))
        seconds = time.perf_counter() - t0
        leftover = len(client.jobs)
    return {"seconds": seconds, "lost": lost, "hung": hung, "done": done, "still_tracked": leftover}


def run(quick: bool = False) -> list[dict[str, Any]]:
    total = 1000 if quick else 10_000
    with mock_server_process() as url:
        r = asyncio.run(soak(url, total))
    return [
        plain("soak_jobs_per_second", r["done"] / r["seconds"], "jobs/s", jobs=total, seconds=round(r["seconds"], 2)),
        plain("soak_lost_or_hung_jobs", r["lost"] + r["hung"], "jobs", lost=r["lost"], hung=r["hung"],
               still_tracked=r["still_tracked"], jobs=total, goal="0"),
    ]
