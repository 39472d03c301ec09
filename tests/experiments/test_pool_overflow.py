"""A pool with an overflow endpoint, on real mock servers: local first, overflow only when opted in.

Local servers are made busy with the mock's gate (``faults.hold()`` / ``release()``): jobs wait in
their queues for as long as the test says, so where each job goes follows from counts, not timing.
The overflow endpoint is ``MockServer(cloud=True)`` (Comfy Cloud's differences: X-API-Key, routes
under ``/api``, socket token, downloads through a 302 to a storage host, parallel jobs), reached with
``kind="cloud"``; the blocking test overflows to a plain mock given by URL.
"""

from __future__ import annotations

import asyncio
import pathlib
from collections.abc import Callable
from typing import Any

import pytest
from PIL import Image

from comfy_nb import AsyncComfyClient
from comfy_nb.client import JobState
from comfy_nb.errors import ClientClosed, ComfyConnectionError, ComfyError
from comfy_nb.experiments import CellResult, OverflowPolicy, PoolJob, ServerPool, Sweep, SweepRun, run_sweep
from comfy_nb.mock import MockServer
from comfy_nb.workflows import Workflow

TIMEOUT = 60
POOL_OPTIONS: dict[str, Any] = {"health_interval": 0.05, "down_after": 2, "probe_timeout": 2.0, "max_retries": 0}


def cloud_client(server: MockServer) -> AsyncComfyClient:
    """A client of the mock's cloud mode, as a Comfy Cloud user makes one: its URL and API key."""
    assert server.api_key is not None
    return AsyncComfyClient(server.url, api_key=server.api_key, kind="cloud", max_retries=0)


def held(server: MockServer) -> MockServer:
    server.faults.hold()
    return server


def when(predicate: Callable[[], bool]) -> tuple[asyncio.Event, Callable[[CellResult], None]]:
    """An event and a run listener that sets it once ``predicate()`` holds."""
    event = asyncio.Event()

    def listener(_: CellResult) -> None:
        if predicate():
            event.set()

    return event, listener


async def submit_all(pool: ServerPool, wf: Workflow, n: int) -> list[PoolJob]:
    return [await pool.submit(wf) for _ in range(n)]


async def test_nothing_overflows_without_opt_in(small_wf: Workflow) -> None:
    with held(MockServer()) as local, MockServer(cloud=True) as cloud:
        async with ServerPool([local.url], **POOL_OPTIONS) as pool:
            jobs = await submit_all(pool, small_wf, 6)  # however long the local queue, it stays local
            assert {j.server for j in jobs} == {local.url} and not any(j.overflow for j in jobs)
            assert pool.overflow == [] and pool.overflow_policy is None and pool.capacity == 4
            local.faults.release()
            assert {(await j.wait(TIMEOUT)).state for j in jobs} == {JobState.COMPLETED}
        assert cloud.stats.prompts_submitted == 0

        # a cloud client in the main list is a local server like any other: the user put it there
        async with cloud_client(cloud) as client, ServerPool([local.url, client], **POOL_OPTIONS) as pool:
            local.faults.hold()
            jobs = await submit_all(pool, small_wf, 4)
            assert {j.server for j in jobs} == {local.url, client.url} and not any(j.overflow for j in jobs)
            assert [s.overflow for s in pool.stats()] == [False, False]
            local.faults.release()
            assert {(await j.wait(TIMEOUT)).state for j in jobs} == {JobState.COMPLETED}
        assert cloud.stats.prompts_submitted == sum(j.server == client.url for j in jobs)

    with pytest.raises(ComfyError, match=r"no overflow server is given: pass overflow="):
        ServerPool(["http://127.0.0.1:1"], overflow_policy=OverflowPolicy())
    with pytest.raises(ComfyError, match=r"http://127\.0\.0\.1:1 is given twice"):
        ServerPool(["http://127.0.0.1:1"], overflow=["http://127.0.0.1:1"])
    with pytest.raises(ComfyError, match="must be an OverflowPolicy, not dict"):
        ServerPool(["http://127.0.0.1:1"], overflow=["http://127.0.0.1:2"],
                   overflow_policy={"max_in_flight": 2})  # type: ignore[arg-type]


async def test_overflow_past_the_threshold_and_within_max_in_flight(small_wf: Workflow) -> None:
    with held(MockServer()) as a, held(MockServer()) as b, held(MockServer(cloud=True, parallel=4)) as cloud:
        policy = OverflowPolicy(when_queued_over=1, max_in_flight=3)
        async with cloud_client(cloud) as client, \
                ServerPool([a.url, b.url], overflow=[client], overflow_policy=policy, **POOL_OPTIONS) as pool:
            assert pool.servers == [a.url, b.url, client.url] and pool.overflow == [client.url]
            assert pool.capacity == 2 * 4 + 3
            jobs = await submit_all(pool, small_wf, 10)
            # each local queue takes 2 (over 1 is "more than 1"), the overflow 3, then the local queues grow
            names = {a.url: "a", b.url: "b", client.url: "cloud"}
            assert [names[j.server] for j in jobs] == ["a", "b", "a", "b", "cloud", "cloud", "cloud", "a", "b", "a"]
            assert [j.overflow for j in jobs] == [j.server == client.url for j in jobs]
            assert "overflow=" in repr(jobs[4]) and "overflow " + client.url in repr(pool)
            loads = {s.url: s for s in pool.stats()}
            assert loads[client.url].overflow and not loads[a.url].overflow
            assert cloud.stats.prompts_submitted == 3

            cloud.faults.release()  # the overflow drains; local stays busy, so the next job overflows again
            for job in jobs[4:7]:
                assert (await job.wait(TIMEOUT)).state is JobState.COMPLETED
            extra = await pool.submit(small_wf)
            assert extra.server == client.url and extra.overflow
            a.faults.release()
            b.faults.release()
            for job in [*jobs, extra]:
                assert (await job.wait(TIMEOUT)).state is JobState.COMPLETED
            assert cloud.stats.prompts_submitted == 4
            assert [s.completed for s in pool.stats()] == [4, 3, 4]


async def test_a_dead_overflow_server_hands_its_jobs_back(small_wf: Workflow, tmp_path: pathlib.Path) -> None:
    local = held(MockServer()).start()
    cloud = held(MockServer(cloud=True, parallel=4)).start()
    try:
        policy = OverflowPolicy(when_queued_over=1, max_in_flight=2)
        async with cloud_client(cloud) as client, \
                ServerPool([local.url], overflow=[client], overflow_policy=policy, **POOL_OPTIONS) as pool:
            filled, listener = when(lambda: pool.load()[client.url] == 2)
            run = await run_sweep(pool, Sweep(small_wf, seed=list(range(8))), concurrency=8, output_dir=tmp_path,
                                  on_update=listener)
            await asyncio.wait_for(filled.wait(), TIMEOUT)
            await asyncio.to_thread(cloud.stop)  # dies holding two unfinished jobs
            local.faults.release()
            await run.wait(TIMEOUT)
            loads = {s.url: s for s in pool.stats()}
        assert run.counts() == {"completed": 8}, [(r.error_type, r.error) for r in run if r.error]
        assert not loads[client.url].up and loads[client.url].moved == 2 and loads[client.url].completed == 0
        moved = [r for r in run if r.attempts]
        assert len(moved) == 2 and all(r.server == local.url and not r.overflow for r in moved)
        for r in moved:
            (attempt,) = r.attempts
            assert attempt["server"] == client.url and attempt["overflow"] is True
            assert client.url in attempt["reason"]  # "... went down" or "lost by ..."
        assert {r.server for r in run} == {local.url}
        assert cloud.stats.prompts_submitted == 2
        # the provenance names the server, never its key
        api_key = cloud.api_key
        assert api_key is not None
        for path in tmp_path.rglob("*.json"):
            assert api_key not in path.read_text()
        reloaded = SweepRun.load(tmp_path)
        assert [r.attempts for r in reloaded] == [r.attempts for r in run]
    finally:
        local.stop()
        cloud.stop()


async def test_overflow_is_no_fallback_when_not_allowed(small_wf: Workflow) -> None:
    with held(MockServer()) as local, MockServer(cloud=True) as cloud:
        policy = OverflowPolicy(when_queued_over=4, when_no_local=False)
        async with cloud_client(cloud) as client, ServerPool(
                [local.url], overflow=[client], overflow_policy=policy, wait_for_server=0.5, **POOL_OPTIONS) as pool:
            jobs = await submit_all(pool, small_wf, 2)
            assert {j.server for j in jobs} == {local.url}
            await asyncio.to_thread(local.stop)
            for job in jobs:  # each ends once, failed, with the reason; none went to the overflow
                status = await job.wait(TIMEOUT)
                assert status.state is JobState.FAILED and status.error is not None
                assert "went down" in status.error.message and "when_no_local=False" in status.error.message, status.error
            with pytest.raises(ComfyConnectionError, match=r"OverflowPolicy\(when_no_local=False\)"):
                await pool.submit(small_wf)
        assert cloud.stats.prompts_submitted == 0

    with held(MockServer()) as local, MockServer(cloud=True) as cloud:  # allowed (the default): the overflow takes over
        async with cloud_client(cloud) as client, ServerPool(
                [local.url], overflow=[client], overflow_policy=OverflowPolicy(), **POOL_OPTIONS) as pool:
            jobs = await submit_all(pool, small_wf, 2)
            await asyncio.to_thread(local.stop)
            for job in jobs:
                assert (await job.wait(TIMEOUT)).state is JobState.COMPLETED
                assert job.server == client.url and job.overflow and job.attempts[0]["server"] == local.url
        assert cloud.stats.prompts_submitted == 2


def pixels(run: SweepRun) -> dict[str, list[bytes]]:
    out = {}
    for r in run:
        images = []
        for path in run.output_paths(r.index):
            with Image.open(path) as im:
                images.append(im.tobytes())
        out[r.key] = images
    return out


async def test_a_sweep_with_overflow_gives_the_local_results(small_wf: Workflow, tmp_path: pathlib.Path) -> None:
    sweep = Sweep(small_wf, seed=[1, 2, 3], cfg_scale=[4.0, 7.0])
    with MockServer() as local, MockServer(cloud=True) as other:
        async with AsyncComfyClient(local.url, max_retries=0) as client:
            alone = await (await run_sweep(client, sweep, output_dir=tmp_path / "local")).wait(TIMEOUT)

        local.faults.hold()
        policy = OverflowPolicy(when_queued_over=1, max_in_flight=2)
        async with cloud_client(other) as cloud, \
                ServerPool([local.url], overflow=[cloud], overflow_policy=policy, **POOL_OPTIONS) as pool:
            overflowed, listener = when(lambda: sum(r.overflow and r.state == "completed" for r in mixed) >= 2)
            mixed = await run_sweep(pool, sweep, output_dir=tmp_path / "mixed", on_update=listener)
            await asyncio.wait_for(overflowed.wait(), TIMEOUT)  # two cells done on the overflow while local waits
            local.faults.release()
            await mixed.wait(TIMEOUT)
            assert pool.overflow == [other.url] and str(other.api_key) not in repr(pool) + repr(pool.stats())

    assert alone.counts() == mixed.counts() == {"completed": 6}
    places = {r["server"] for r in mixed.table() if r["overflow"]}
    assert places == {other.url} and not any(r["overflow"] for r in alone.table())
    assert {r["server"] for r in mixed.table() if not r["overflow"]} == {local.url}
    where = {"prompt_id", "server", "overflow", "outputs", "moves", "submitted_at", "queued_at", "started_at",
             "finished_at", "run_seconds"}

    def same_columns(table: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in row.items() if k not in where} for row in table]

    assert same_columns(mixed.table()) == same_columns(alone.table())
    assert [r.graph for r in mixed] == [r.graph for r in alone]
    assert pixels(mixed) == pixels(alone)
    saved = repr(mixed.table()) + "".join(p.read_text() for p in (tmp_path / "mixed").rglob("*.json"))
    assert str(other.api_key) not in saved
    assert other.cloud_front is not None and other.cloud_front.stats.storage_key_leaks == 0


def test_blocking_pool_with_overflow(small_wf: Workflow, tmp_path: pathlib.Path) -> None:
    from comfy_nb.experiments import BlockingServerPool

    with held(MockServer()) as local, MockServer() as other:
        on_overflow: set[str] = set()

        def release_local(result: CellResult) -> None:  # on the pool's loop: the local GPU resumes once the
            if result.overflow and result.state == "completed":  # overflow has finished two cells
                on_overflow.add(result.key)
            if len(on_overflow) >= 2:
                local.faults.release()

        policy = OverflowPolicy(when_queued_over=0, max_in_flight=2)
        with BlockingServerPool([local.url], overflow=[other.url], overflow_policy=policy, **POOL_OPTIONS) as pool:
            run = pool.run_sweep(Sweep(small_wf, seed=list(range(6))), output_dir=tmp_path, on_update=release_local)
            stats = pool.stats()
    assert run.counts() == {"completed": 6}
    assert {r.key for r in run if r.overflow} >= on_overflow and len(on_overflow) >= 2
    assert [(s.url, s.overflow) for s in stats] == [(local.url, False), (other.url, True)]
    assert sum(s.completed for s in stats) == 6


async def test_a_submit_waiting_for_a_full_overflow(small_wf: Workflow) -> None:
    """No local server can run the graph, so jobs go to the overflow, one at a time: a submit waits for a slot
    (not for ``wait_for_server``), goes on when one frees, and is released if the pool closes first."""
    with MockServer(models={"checkpoints": ["other.safetensors"]}) as local, held(MockServer(cloud=True)) as cloud:
        policy = OverflowPolicy(max_in_flight=1)
        async with cloud_client(cloud) as client:
            pool = ServerPool([local.url], overflow=[client], overflow_policy=policy, wait_for_server=0.01,
                              **POOL_OPTIONS)
            await pool.connect()
            first = await pool.submit(small_wf)
            second = asyncio.create_task(pool.submit(small_wf))
            with pytest.raises(asyncio.TimeoutError):  # still waiting at 20 x wait_for_server: no deadline for a slot
                await asyncio.wait_for(asyncio.shield(second), 20 * pool.wait_for_server)
            assert cloud.stats.prompts_submitted == 1
            cloud.faults.release()
            assert (await first.wait(TIMEOUT)).state is JobState.COMPLETED
            second_job = await asyncio.wait_for(second, TIMEOUT)
            assert (await second_job.wait(TIMEOUT)).state is JobState.COMPLETED and second_job.overflow

            cloud.faults.hold()
            third = await pool.submit(small_wf)
            fourth = asyncio.create_task(pool.submit(small_wf))
            await asyncio.sleep(0)  # one loop turn: its placement reaches the wait without any I/O
            await pool.aclose()
            with pytest.raises(ClientClosed):
                await asyncio.wait_for(fourth, TIMEOUT)
            with pytest.raises(ClientClosed):
                await third.wait(TIMEOUT)
        assert cloud.stats.prompts_submitted == 3
        assert local.stats.prompts_submitted == 0


async def test_a_moved_job_waiting_for_a_full_overflow_can_be_cancelled(small_wf: Workflow) -> None:
    with held(MockServer(cloud=True)) as cloud:
        local = held(MockServer()).start()
        try:
            policy = OverflowPolicy(when_queued_over=0, max_in_flight=1)
            async with cloud_client(cloud) as client, \
                    ServerPool([local.url], overflow=[client], overflow_policy=policy, **POOL_OPTIONS) as pool:
                first = await pool.submit(small_wf)
                second = await pool.submit(small_wf)
                assert (first.server, second.server) == (local.url, client.url)  # the overflow is full now
                await asyncio.to_thread(local.stop)
                # this submit finds the local server gone (so the pool marks it down and moves `first`),
                # and then waits with `first` for the overflow's one slot
                third = asyncio.create_task(pool.submit(small_wf))
                with pytest.raises(asyncio.TimeoutError):
                    await asyncio.wait_for(asyncio.shield(third), 0.2)
                assert not pool.stats()[0].up
                assert await asyncio.wait_for(first.cancel(), TIMEOUT) is True
                assert first.status.state is JobState.CANCELLED and first.attempts[0]["server"] == local.url
                cloud.faults.release()
                for job in (second, await asyncio.wait_for(third, TIMEOUT)):
                    assert (await job.wait(TIMEOUT)).state is JobState.COMPLETED and job.server == client.url
            assert cloud.stats.prompts_submitted == 2
        finally:
            local.stop()
