"""``PoolJob``: one job the pool follows across servers, and the pool's view of one server (``_Server``)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import logging
import time
from collections.abc import AsyncGenerator, Callable, Mapping
from typing import TYPE_CHECKING, Any

from .._observers import Observers
from ..client import (
    AsyncComfyClient,
    ErrorCallback,
    ErrorInfo,
    Job,
    JobState,
    JobStatus,
    Output,
    UpdateCallback,
)
from ..client._job import raise_for_status, status_updates
from ..errors import ClientClosed, ComfyError, ComfyTimeout
from ..protocol import NodeDef

if TYPE_CHECKING:
    from ._pool import ServerPool

__all__ = ["PoolJob", "missing_on"]

log = logging.getLogger("comfy_nb")


class _Server:
    def __init__(self, client: AsyncComfyClient, owned: bool, overflow: bool) -> None:
        self.client = client
        self.owned = owned
        self.overflow = overflow
        """An overflow endpoint: used only as the pool's ``OverflowPolicy`` says."""
        self.url = client.url
        self.up = False
        self.generation = 0
        """Bumped each time the server goes down: jobs placed in an older generation must move."""
        self.failures = 0
        self.defs: dict[str, NodeDef] | None = {}
        """Its node definitions; ``None`` when the server cannot list them (a Comfy API v2 endpoint: it
        validates a graph when it is submitted)."""
        self.jobs: set[PoolJob] = set()
        self.assigned = 0
        self.submitting = 0
        """Submits in flight: counted as queued so concurrent placements spread out."""
        self.completed = 0
        self.failed = 0
        self.moved = 0
        self.abandoned: list[str] = []
        self.last_error = ""

    def in_flight(self) -> int:
        """This pool's unfinished jobs here, submits under way included."""
        return len(self.jobs) + self.submitting

    def queue_length(self) -> int:
        """``in_flight``, or the server's own queue when other clients keep it busier."""
        return max(self.in_flight(), self.client.queue_remaining or 0)


def missing_on(graph: Mapping[str, Any], defs: Mapping[str, NodeDef] | None) -> list[str]:
    """What a server lacks to run ``graph``: node classes, and combo values (model files, images).
    Nothing is known missing on a server that cannot list its nodes (``defs`` None)."""
    missing: list[str] = []
    if defs is None:
        return missing
    for node in graph.values():
        class_type = node.get("class_type")
        node_def = defs.get(class_type)
        if node_def is None:
            missing.append(f"node class {class_type}")
            continue
        for name, value in (node.get("inputs") or {}).items():
            spec = node_def.input(name)
            if spec is not None and spec.options and isinstance(value, str) and value not in spec.options:
                missing.append(f"{class_type}.{name} = {value!r}")
    return missing


class PoolJob:
    """A job the pool follows across servers; the ``Job`` surface, plus ``server``, ``overflow`` and ``attempts``."""

    def __init__(self, pool: ServerPool, graph: dict[str, Any], meta: Mapping[str, Any] | None,
                 submit_kwargs: dict[str, Any]) -> None:
        self._pool = pool
        self.prompt = graph
        self.meta: dict[str, Any] = dict(meta or {})
        self._kwargs = submit_kwargs
        self._job: Job | None = None
        self._server: _Server | None = None
        self._generation = 0
        self._unsubscribe: Callable[[], None] | None = None
        self._final: JobStatus | None = None
        self._done = asyncio.Event()
        self._wake = asyncio.Event()
        self._cancel_requested = asyncio.Event()  # not a bool: it changes across the follower's awaits
        self._subscribers: Observers[JobStatus] = Observers("subscriber of a pool job")
        self._closed: ClientClosed | None = None
        self.attempts: list[dict[str, Any]] = []
        """Earlier submissions: ``{"server", "overflow", "prompt_id", "reason"}``."""
        self._loop = asyncio.get_running_loop()  # made by ServerPool.submit, on the pool's loop

    # ------------------------------------------------------------------ the Job surface

    @property
    def prompt_id(self) -> str:
        return self._job.prompt_id if self._job is not None else ""

    @property
    def server(self) -> str:
        return self._server.url if self._server is not None else ""

    @property
    def overflow(self) -> bool:
        """True while the job is (or ended) on an overflow server."""
        return self._server is not None and self._server.overflow

    @property
    def client(self) -> AsyncComfyClient:
        """The client of the server this job is (or was last) on: outputs are downloaded from it."""
        assert self._server is not None
        return self._server.client

    @property
    def status(self) -> JobStatus:
        if self._final is not None:
            return self._final
        if self._job is None:
            return JobStatus(prompt_id="")
        status = self._job.status
        return status if not status.terminal else dataclasses.replace(status, state=JobState.QUEUED)

    @property
    def done(self) -> bool:
        return self._final is not None

    @property
    def foreign(self) -> bool:
        return False

    async def wait(self, timeout: float | None = None) -> JobStatus:
        """Wait for the final state (after any moves); ``ComfyTimeout``, or ``ClientClosed`` if the pool closes."""
        try:
            await asyncio.wait_for(self._done.wait(), timeout)
        except asyncio.TimeoutError:
            raise ComfyTimeout(f"pool job {self.prompt_id} did not finish within {timeout} s") from None
        if self._final is None and self._closed is not None:
            raise ClientClosed(self._closed.message)
        return self.status

    async def result(self, timeout: float | None = None) -> list[Output]:
        return raise_for_status(await self.wait(timeout))

    async def cancel(self) -> bool:
        """Cancel wherever it is now; True when it ends cancelled."""
        if self.done:
            return False
        self._cancel_requested.set()
        self._wake.set()
        self._pool._signal()  # a placement waiting for a server gives up
        job, server = self._job, self._server
        if job is not None and server is not None and server.up:
            with contextlib.suppress(ComfyError):
                await job.cancel()
        await self._done.wait()
        return self.status.state is JobState.CANCELLED

    def cancel_nowait(self) -> concurrent.futures.Future[bool]:
        """Ask for cancellation from any thread (a button handler) without waiting."""
        return asyncio.run_coroutine_threadsafe(self.cancel(), self._loop)

    def subscribe(self, on_update: UpdateCallback, on_error: ErrorCallback | None = None) -> Callable[[], None]:
        """``on_update(status)`` on each change (a move to another server restarts at ``queued``);
        ``on_error`` gets what a callback raised, and ``ClientClosed`` if the pool closes first."""
        return self._subscribers.add(on_update, on_error)

    def updates(self) -> AsyncGenerator[JobStatus, None]:
        """Each new status until (and including) the final one; ``ClientClosed`` if the pool closes."""
        return status_updates(self.subscribe, lambda: self.status, lambda: self._closed)

    def __repr__(self) -> str:
        where = f"overflow={self.server!r}" if self.overflow else f"server={self.server!r}"
        return f"PoolJob({where}, state={self.status.state.value!r}, moves={len(self.attempts)})"

    # ------------------------------------------------------------------ following

    def _notify(self, status: JobStatus) -> None:
        self._subscribers.notify(status)

    def _close(self) -> None:
        """The pool was closed first: release every waiter with ``ClientClosed`` (once)."""
        if self._final is not None or self._closed is not None:
            return
        self._closed = ClientClosed(
            f"the server pool was closed while prompt {self.prompt_id or '(not yet placed)'} was unfinished; "
            "it may still run on its server"
        )
        self._subscribers.fail(self._closed)
        self._done.set()

    def _attach(self, server: _Server, job: Job) -> None:
        self._server, self._job, self._generation = server, job, server.generation
        server.jobs.add(self)
        server.assigned += 1

        def on_status(status: JobStatus) -> None:
            if status.terminal:
                self._wake.set()
            else:
                self._notify(status)

        def on_error(exc: BaseException) -> None:
            if isinstance(exc, ClientClosed):  # its client was closed under the pool: release our waiters too
                self._close()

        self._unsubscribe = job.subscribe(on_status, on_error)
        if job.done:
            self._wake.set()
        else:
            self._notify(job.status)

    def _detach(self, reason: str) -> None:
        server, job = self._server, self._job
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if server is not None and job is not None:
            server.jobs.discard(self)
            server.moved += 1
            self.attempts.append(self._attempt(reason))
            self._pool._signal()  # a slot is free there

    def _attempt(self, reason: str) -> dict[str, Any]:
        """The record of the current submission, kept in ``attempts`` when the job leaves it."""
        return {"server": self.server, "overflow": self.overflow, "prompt_id": self.prompt_id, "reason": reason}

    def _finish(self, status: JobStatus) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        server = self._server
        if server is not None:
            server.jobs.discard(self)
            if status.state is JobState.COMPLETED:
                server.completed += 1
            elif status.state is JobState.FAILED:
                server.failed += 1
        self._final = status
        self._pool._open.discard(self)
        self._pool._signal()  # a slot is free: a job waiting for a full overflow may go
        self._done.set()
        self._notify(status)

    def _failed(self, message: str) -> JobStatus:
        return JobStatus(prompt_id=self.prompt_id, state=JobState.FAILED, error=ErrorInfo(message=message),
                         finished_at=time.time())

    async def _follow(self) -> None:
        """Wait for the end; move the job when its server goes down or forgets it."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            job, server = self._job, self._server
            assert job is not None and server is not None
            if job.done:
                status = job.status
                lost = status.state is JobState.FAILED and status.error is not None and \
                    status.error.exception_type is None
                if not lost or self._cancel_requested.is_set():
                    self._finish(status)
                    return
                reason = f"lost by {server.url}: {status.error.message if status.error else ''}"
            elif server.generation != self._generation:
                server.abandoned.append(job.prompt_id)
                reason = f"{server.url} went down"
            else:
                continue  # a cancel request: the job's own end wakes us again
            self._detach(reason)
            if self._cancel_requested.is_set():
                self._finish(dataclasses.replace(job.status, state=JobState.CANCELLED, error=None))
                return
            log.info("comfy_nb: moving prompt %s (%s)", job.prompt_id, reason)
            try:
                new_server, new_job = await self._pool._place(self)
            except ComfyError as exc:
                if self._cancel_requested.is_set():
                    self._finish(dataclasses.replace(job.status, state=JobState.CANCELLED, error=None))
                else:
                    self._finish(self._failed(f"{reason}, and it could not be submitted again: {exc}"))
                return
            self._attach(new_server, new_job)
            if self._cancel_requested.is_set():  # asked while it was being submitted there
                with contextlib.suppress(ComfyError):
                    await new_job.cancel()
