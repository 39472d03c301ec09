"""Lifecycle abuse: close while jobs are in flight, use after close, many clients made and closed."""

from __future__ import annotations

import asyncio
import gc
import os
import pathlib
import threading
from typing import Any

import pytest

import comfy_nb
from comfy_nb import AsyncComfyClient, ComfyClient, JobState
from comfy_nb.errors import ClientClosed, ComfyConnectionError

from ._fake import GRAPH, FakeComfy, never_ends
from .conftest import BOUND, Ledger, make_client, until_state


async def test_close_releases_every_waiter(fake: FakeComfy) -> None:
    """Item 5 (async): wait(), result() and updates() without a timeout all return on close."""
    fake.script = never_ends
    client = make_client(fake)
    await client.connect()
    job = await client.submit(GRAPH)
    errors: list[BaseException] = []
    job.subscribe(lambda status: None, errors.append)

    async def consume() -> None:
        async for _status in job.updates():
            pass

    waiters = [asyncio.ensure_future(c) for c in (job.wait(), job.result(), consume())]
    await until_state(job, JobState.RUNNING)
    await client.aclose()
    done, pending = await asyncio.wait(waiters, timeout=BOUND)
    assert not pending
    for waiter in done:
        assert isinstance(waiter.exception(), ClientClosed), waiter.exception()
    assert "closed" in str(done.pop().exception())
    assert len(errors) == 1 and isinstance(errors[0], ClientClosed)  # subscribers hear it once
    assert job.status.state is JobState.RUNNING  # the job is not made up as ended: it may still run
    with pytest.raises(ClientClosed):
        await job.wait()


async def test_blocking_result_in_a_thread_returns_on_close(fake: FakeComfy) -> None:
    """Item 5 (blocking): a thread blocked in BlockingJob.result() gets ClientClosed when the client closes."""
    fake.script = never_ends
    client = await asyncio.to_thread(ComfyClient, fake.url, poll_interval=0.05)
    job = await asyncio.to_thread(client.submit, GRAPH)
    outcome: list[BaseException] = []
    started = threading.Event()

    def block() -> None:
        started.set()
        try:
            job.result()
        except ClientClosed as exc:
            outcome.append(exc)

    thread = threading.Thread(target=block, daemon=True)
    thread.start()
    started.wait(BOUND)
    await asyncio.to_thread(client.close)
    await asyncio.to_thread(thread.join, BOUND)
    assert not thread.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], ClientClosed)


def client_tasks() -> list[str]:
    """The tasks of this event loop that run comfy_nb code (a reconnect loop, a poller, a background read)."""
    package = pathlib.Path(comfy_nb.__file__).parent
    found = []
    for task in asyncio.all_tasks():
        code = getattr(task.get_coro(), "cr_code", None)
        if code is not None and package in pathlib.Path(code.co_filename).parents:
            found.append(f"{task.get_name()}: {code.co_name}")
    return found


async def test_use_after_close_never_reopens(fake: FakeComfy) -> None:
    """Item 6: after close(), submit/track/queries raise ClientClosed and nothing reaches the server."""
    client = make_client(fake)
    await client.connect()
    assert client_tasks(), "a connected client runs tasks (its socket, its poller)"
    await client.aclose()
    connects, posts = fake.ws_connects, len(fake.posts)
    for call in (lambda: client.submit(GRAPH), lambda: client.track("x"), client.system_stats, client.queue,
                 lambda: client.status("x")):
        with pytest.raises(ClientClosed, match="closed"):
            await call()
    # Every comfy_nb coroutine runs in a task on this loop; with none left, nothing of the client can
    # reconnect or post later, so the counts below are final.
    assert client_tasks() == []
    assert fake.ws_connects == connects and len(fake.posts) == posts
    await client.connect()  # an explicit connect() reopens it
    assert (await (await client.submit(GRAPH)).wait(timeout=BOUND)).state is JobState.COMPLETED
    await client.aclose()
    await client.aclose()  # twice is fine


async def test_close_before_connect_and_blocking_use_after_close(fake: FakeComfy) -> None:
    client = AsyncComfyClient(fake.url)
    await client.aclose()
    with pytest.raises(ClientClosed):
        await client.submit(GRAPH)
    blocking = await asyncio.to_thread(ComfyClient, fake.url)
    await asyncio.to_thread(blocking.close)
    with pytest.raises(ClientClosed):
        await asyncio.to_thread(blocking.submit, GRAPH)


async def test_close_while_submitting(fake: FakeComfy) -> None:
    """Closing while POST /prompt is in flight: submit fails with a ComfyConnectionError; nothing hangs."""
    fake.slow_submit = True  # the POST waits for a queue/history read that never comes
    client = make_client(fake, timeout=BOUND)
    await client.connect()
    submit = asyncio.ensure_future(client.submit(GRAPH))
    await fake.until(lambda: bool(fake.posts), BOUND)
    await client.aclose()
    done, _ = await asyncio.wait([submit], timeout=BOUND)
    assert done and isinstance(submit.exception(), ComfyConnectionError)


async def test_close_during_many_jobs_each_released_once(fake: FakeComfy) -> None:
    fake.script = never_ends
    client = make_client(fake)
    await client.connect()
    ledgers = [Ledger(await client.submit(GRAPH)) for _ in range(20)]
    await client.aclose()
    for ledger in ledgers:
        with pytest.raises(ClientClosed):
            await ledger.job.wait(timeout=BOUND)
        assert ledger.terminal == [] and len(ledger.errors) == 1


def _fds() -> int:
    return len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else 0


async def test_hundreds_of_clients_leak_nothing(fake: FakeComfy) -> None:
    """200 clients opened (socket + pool), used and closed: file descriptors and threads come back."""

    async def one() -> None:
        client = make_client(fake)
        await client.connect()
        await client.system_stats()
        await client.aclose()

    await one()  # warm up lazy imports and pools that live for the process
    gc.collect()
    fds, threads = _fds(), threading.active_count()
    for _ in range(10):
        await asyncio.gather(*(one() for _ in range(20)))
    for _ in range(50):  # the server side closes its half a moment later
        gc.collect()
        if _fds() <= fds + 2:
            break
        await asyncio.sleep(0.02)
    assert _fds() <= fds + 2, (fds, _fds())
    assert threading.active_count() <= threads


async def test_jobs_finished_before_close_keep_their_state(fake: FakeComfy) -> None:
    async with make_client(fake) as client:
        job = await client.submit(GRAPH)
        await job.wait(timeout=BOUND)
    assert job.status.state is JobState.COMPLETED
    assert (await job.wait()).state is JobState.COMPLETED  # no ClientClosed for a finished job
    assert len(await job.result()) == 1


async def test_server_gone_for_good_ends_jobs(fake: FakeComfy, background_failures: Any) -> None:
    """The server dies mid-run and never returns: the job still ends, once (outage_timeout)."""
    fake.script = never_ends
    client = make_client(fake, outage_timeout=0.5, max_retries=0)
    await client.connect()
    ledger = Ledger(await client.submit(GRAPH))
    await until_state(ledger.job, JobState.RUNNING)
    await fake.stop()
    status = await ledger.ended_once()
    assert status.state is JobState.FAILED and status.error is not None and "lost contact" in status.error.message
    await client.aclose()
