"""Item 20: a ``PoolJob`` has the whole job surface, and a closed pool releases its waiters."""

from __future__ import annotations

import asyncio

import pytest

from comfy_nb import JobState
from comfy_nb.errors import ClientClosed
from comfy_nb.experiments import ServerPool

from ._fake import GRAPH, FakeComfy, never_ends
from .conftest import BOUND, FAST, Ledger, until_state


async def test_job_view_can_cancel_a_pool_job(fake: FakeComfy) -> None:
    pytest.importorskip("anywidget")
    from comfy_nb.widgets import JobView

    fake.script = never_ends
    async with ServerPool([fake.url], **FAST) as pool:
        job = await pool.submit(GRAPH)
        ledger = Ledger(job)
        await until_state(job, JobState.RUNNING)
        future = JobView(job).cancel()  # the widget's button: cancel_nowait from any thread
        assert future is not None
        assert await asyncio.wrap_future(future) is True
        assert (await ledger.ended_once()).state is JobState.CANCELLED


async def test_pool_job_surface_matches_job(fake: FakeComfy) -> None:
    from comfy_nb import Job

    async with ServerPool([fake.url], **FAST) as pool:
        job = await pool.submit(GRAPH)
        public = {n for n in dir(Job) if not n.startswith("_")}
        assert public <= {n for n in dir(job) if not n.startswith("_")}
        seen = [status.state async for status in job.updates()]
        assert seen[-1] is JobState.COMPLETED and seen.count(JobState.COMPLETED) == 1
        assert len(await job.result(timeout=BOUND)) == 1


async def test_closing_the_pool_releases_waiters(fake: FakeComfy) -> None:
    fake.script = never_ends
    pool = ServerPool([fake.url], **FAST)
    await pool.__aenter__()
    job = await pool.submit(GRAPH)
    errors: list[BaseException] = []
    job.subscribe(lambda status: None, errors.append)
    waiter = asyncio.ensure_future(job.result())
    await pool.aclose()
    done, _ = await asyncio.wait([waiter], timeout=BOUND)
    assert done and isinstance(waiter.exception(), ClientClosed)
    assert len(errors) == 1
