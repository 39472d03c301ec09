"""Cancel races on a real mock server: queued, starting, running, finished; never another job.

The real server's ``POST /interrupt`` without a body stops *whatever* runs, so a cancel that sends it
at a prompt boundary hits the next prompt. These tests check that ``cancel(job)`` only ever ends
that job, and that the answer (True/False) always agrees with the job's final state.
"""

from __future__ import annotations

# mypy: disable-error-code="unreachable, comparison-overlap"
# (mypy keeps a property narrowed across calls that change it: job.status after an await, th.pending after a push)
import asyncio
import json
from typing import Any

import httpx
from httpx_aiohttp import HttpxAiohttpClient

from comfy_nb import AsyncComfyClient, JobState
from comfy_nb.errors import JobCancelled
from comfy_nb.mock import MockServer

from .conftest import report, wait_until


def quick(i: int, prefix: str = "race") -> dict[str, Any]:
    return {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 4, "height": 4, "batch_size": 1, "color": i}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": f"{prefix}/q{i}"}},
    }


def slow(i: int, steps: int = 400, per_step: float = 0.01) -> dict[str, Any]:
    return {
        "1": {"class_type": "SlowProgressImage", "inputs": {
            "steps": steps, "seconds_per_step": per_step, "width": 4, "height": 4, "send_preview": False,
            "send_text": False, "seed": i}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": f"race/s{i}"}},
    }


class InterruptLog:
    """Every ``POST /interrupt`` body the client sends."""

    def __init__(self) -> None:
        self.bodies: list[Any] = []

    async def hook(self, request: httpx.Request) -> None:
        if request.url.path.endswith("/interrupt"):
            await request.aread()
            self.bodies.append(json.loads(request.content or b"{}"))

    def client(self, url: str) -> httpx.AsyncClient:
        return HttpxAiohttpClient(base_url=url, event_hooks={"request": [self.hook]})


async def test_cancel_queued_job_leaves_the_running_one_alone(fresh_mock: MockServer) -> None:
    async with AsyncComfyClient(fresh_mock.url) as client:
        runner = await client.submit(slow(1, steps=30, per_step=0.01))
        await wait_until(lambda: runner.status.state is JobState.RUNNING, what="slow job running")
        queued = await client.submit(quick(1))
        assert queued.status.state is JobState.QUEUED
        assert await queued.cancel() is True
        assert queued.status.state is JobState.CANCELLED
        outputs = await runner.result(timeout=20)
        assert len(outputs) == 1, "the running job finished with its output"
        assert await client._history(queued.prompt_id) is None, "a deleted prompt never ran"


async def test_cancel_running_job_leaves_the_queued_ones_alone(fresh_mock: MockServer) -> None:
    log = InterruptLog()
    http = log.client(fresh_mock.url)
    try:
        async with AsyncComfyClient(fresh_mock.url, http_client=http) as client:
            runner = await client.submit(slow(2))
            behind = [await client.submit(quick(10 + k)) for k in range(3)]
            await wait_until(lambda: runner.status.state is JobState.RUNNING and runner.status.step, what="running")
            assert await runner.cancel() is True
            assert runner.status.state is JobState.CANCELLED
            try:
                await runner.result()
                raise AssertionError("a cancelled job must raise JobCancelled")
            except JobCancelled as exc:
                assert runner.prompt_id in str(exc)
            for job in behind:
                assert len(await job.result(timeout=20)) == 1, "a job behind the cancelled one completes"
            assert log.bodies == [{"prompt_id": runner.prompt_id}], "only a targeted interrupt may be sent"
    finally:
        await http.aclose()


async def test_cancel_after_finishing_is_false_and_keeps_outputs(mock_server: MockServer) -> None:
    async with AsyncComfyClient(mock_server.url) as client:
        job = await client.submit(quick(3, prefix="race-done"))
        outputs = await job.result(timeout=20)
        assert await job.cancel() is False
        assert await client.cancel(job.prompt_id) is False
        assert job.status.state is JobState.COMPLETED and list(job.status.outputs) == outputs
        assert (await client.status(job.prompt_id)).state is JobState.COMPLETED


async def test_cancel_while_starting_agrees_with_final_state(fresh_mock: MockServer) -> None:
    """Cancel right after submit, when the job may be queued, starting, running or already done."""
    log = InterruptLog()
    http = log.client(fresh_mock.url)
    outcomes: dict[str, int] = {}
    try:
        async with AsyncComfyClient(fresh_mock.url, http_client=http) as client:
            for i in range(60):
                ahead = await client.submit(quick(5000 + i)) if i % 3 == 1 else None
                target = await client.submit(slow(100 + i, steps=i % 4, per_step=0.004) if i % 4 else quick(100 + i))
                bystander = await client.submit(quick(1000 + i))
                for _ in range(i % 5):  # let the race land at different points of the target's life
                    await asyncio.sleep(0)
                seen = target.status.state.value
                cancelled = await target.cancel()
                status = await target.wait(timeout=20)
                if cancelled:
                    assert status.state is JobState.CANCELLED, f"cancel said True but the job {status.state}"
                else:
                    assert status.state is JobState.COMPLETED, f"cancel said False but the job {status.state}"
                key = f"{seen}->{status.state.value}"
                outcomes[key] = outcomes.get(key, 0) + 1
                assert len(await bystander.result(timeout=20)) == 1, "the next job must never be hit"
                if ahead is not None:
                    assert len(await ahead.result(timeout=20)) == 1, "the job ahead must never be hit"
            assert all(body.get("prompt_id") for body in log.bodies), f"untargeted interrupt sent: {log.bodies}"
    finally:
        await http.aclose()
    report(f"cancel-while-starting: 60 races, outcomes {outcomes}, interrupts sent={len(log.bodies)} (all targeted)")
    assert any(k.endswith("cancelled") for k in outcomes) and any(k.endswith("completed") for k in outcomes), outcomes


async def test_cancel_from_one_client_never_stops_another_clients_job(fresh_mock: MockServer) -> None:
    async with AsyncComfyClient(fresh_mock.url) as alice, AsyncComfyClient(fresh_mock.url) as bob:
        theirs = await alice.submit(slow(5, steps=40, per_step=0.01))
        await wait_until(lambda: theirs.status.state is JobState.RUNNING, what="alice's job running")
        mine = await bob.submit(quick(5))
        assert await mine.cancel() is True
        # Bob cancelling Alice's running prompt by id is allowed (the server has no owners), but only it:
        other = await alice.submit(quick(6))
        assert len(await theirs.result(timeout=20)) == 1
        assert len(await other.result(timeout=20)) == 1
        assert mine.status.state is JobState.CANCELLED


async def test_many_concurrent_cancels_hit_exactly_their_targets(fresh_mock: MockServer) -> None:
    async with AsyncComfyClient(fresh_mock.url) as client:
        runner = await client.submit(slow(7, steps=200, per_step=0.01))
        await wait_until(lambda: runner.status.state is JobState.RUNNING, what="running")
        jobs = [await client.submit(quick(200 + k)) for k in range(20)]
        targets = jobs[::2]
        results = await asyncio.gather(*(j.cancel() for j in targets), runner.cancel())
        assert all(results)
        for job in jobs[1::2]:
            assert len(await job.result(timeout=20)) == 1
        assert all(j.status.state is JobState.CANCELLED for j in [*targets, runner])
