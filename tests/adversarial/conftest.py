"""The adversarial suite: the public API against servers that misbehave on purpose.

Every test checks the one invariant of the client: a job reaches exactly one terminal state, once,
and its subscribers see it once; nothing waits forever (``BOUND`` is a generous upper limit on
"nothing hangs", never a timing assertion).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from comfy_nb import AsyncComfyClient, JobState, JobStatus

from ._fake import FakeComfy

BOUND = 20.0
"""Seconds within which every job must have ended (an upper bound for hangs, not a speed check)."""

FAST: dict[str, Any] = {"poll_interval": 0.05, "quiet_poll": 0.2, "timeout": 5.0, "max_retries": 2}
"""Client settings that make reconciliation quick enough for many cases per test."""


@pytest.fixture
async def fake() -> AsyncIterator[FakeComfy]:
    server = await FakeComfy().start()
    try:
        yield server
    finally:
        await server.stop()


class Ledger:
    """What a job's subscribers saw: every terminal delivery is recorded."""

    def __init__(self, job: Any) -> None:
        self.job = job
        self.terminal: list[JobStatus] = []
        self.errors: list[BaseException] = []
        if job.done:  # ended before we could subscribe: that counts as its one delivery
            self.terminal.append(job.status)
        job.subscribe(self._on_status, self.errors.append)

    def _on_status(self, status: JobStatus) -> None:
        if status.terminal:
            self.terminal.append(status)

    async def ended_once(self) -> JobStatus:
        """Wait (bounded) for the end, then check it was delivered exactly once."""
        status: JobStatus = await self.job.wait(timeout=BOUND)
        await asyncio.sleep(0)  # let any duplicate delivery already scheduled run
        assert status.terminal
        assert len(self.terminal) == 1, [s.state for s in self.terminal]
        assert self.terminal[0] == status
        return status


async def until_state(job: Any, state: JobState) -> None:
    """Wait (bounded) until the job's status reaches ``state``, following its updates."""

    async def reach() -> None:
        async for status in job.updates():
            if status.state is state:
                return

    await asyncio.wait_for(reach(), BOUND)


def make_client(fake: FakeComfy, **kwargs: Any) -> AsyncComfyClient:
    return AsyncComfyClient(fake.url, **{**FAST, **kwargs})


class BackgroundFailures(logging.Handler):
    """Collects what the client logged as a failure of one of its background tasks."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info or "Task exception was never retrieved" in record.getMessage():
            self.records.append(record)


@pytest.fixture
async def background_failures() -> AsyncIterator[BackgroundFailures]:
    """Fails the test if a background task died or logged an unexpected exception."""
    handler = BackgroundFailures()
    loggers = [logging.getLogger("comfy_nb"), logging.getLogger("asyncio")]
    for lg in loggers:
        lg.addHandler(handler)
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    seen: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: seen.append(context))
    yield handler
    loop.set_exception_handler(previous)
    for lg in loggers:
        lg.removeHandler(handler)
    assert not seen, [c.get("message") for c in seen]
    assert not handler.records, [r.getMessage() for r in handler.records]
