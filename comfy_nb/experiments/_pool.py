"""``ServerPool``: the client's submit surface over several ComfyUI servers.

Placement: each prompt goes to the up server with the shortest queue (this pool's unfinished jobs
there, or the server's own ``queue_remaining`` when other clients keep it busier) among those whose
``/object_info`` has every node class of the graph and offers every combo value it uses (so model
files and uploaded images are where the prompt needs them).

Failure: a server is marked down when a submit cannot reach it, or when its socket is gone and
health probes fail ``down_after`` times in a row. Its unfinished jobs are then submitted again
elsewhere (a ``PoolJob`` keeps one identity across moves), and so are jobs a restarted server
forgot. The abandoned prompts are cancelled if that server comes back, so each job's result is
taken from exactly one execution.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import logging
import time
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

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
from ..errors import (
    ClientClosed,
    ComfyConnectionError,
    ComfyError,
    ComfyTimeout,
    PromptValidationError,
    WorkflowError,
)
from ..protocol import NodeDef, api_graph

__all__ = ["BlockingServerPool", "PoolJob", "ServerLoad", "ServerPool"]

log = logging.getLogger("comfy_nb")


@dataclass(frozen=True)
class ServerLoad:
    """One server as the pool sees it."""

    url: str
    up: bool
    queued: int
    """This pool's jobs waiting in the server's queue."""
    running: int
    completed: int
    failed: int
    moved: int
    """Jobs taken away from this server (it went down or forgot them) and submitted elsewhere."""
    server_queue: int | None
    """``queue_remaining`` as the server last reported it (all clients), when known."""


class _Server:
    def __init__(self, client: AsyncComfyClient, owned: bool) -> None:
        self.client = client
        self.owned = owned
        self.url = client.url
        self.up = False
        self.generation = 0
        """Bumped each time the server goes down: jobs placed in an older generation must move."""
        self.failures = 0
        self.defs: dict[str, NodeDef] = {}
        self.jobs: set[PoolJob] = set()
        self.assigned = 0
        self.submitting = 0
        """Submits in flight: counted as queued so concurrent placements spread out."""
        self.completed = 0
        self.failed = 0
        self.moved = 0
        self.abandoned: list[str] = []
        self.last_error = ""

    def queue_length(self) -> int:
        return max(len(self.jobs) + self.submitting, self.client.queue_remaining or 0)


def missing_on(graph: Mapping[str, Any], defs: Mapping[str, NodeDef]) -> list[str]:
    """What a server lacks to run ``graph``: node classes, and combo values (model files, images)."""
    missing: list[str] = []
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
    """A job the pool follows across servers; the ``Job`` surface, plus ``server`` and ``attempts``."""

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
        self._cancel_requested = False
        self._subscribers: Observers[JobStatus] = Observers("subscriber of a pool job")
        self._closed: ClientClosed | None = None
        self._task: asyncio.Task[None] | None = None
        self.attempts: list[dict[str, Any]] = []
        """Earlier submissions: ``{"server", "prompt_id", "reason"}``."""
        self._loop = asyncio.get_running_loop()  # made by ServerPool.submit, on the pool's loop

    # ------------------------------------------------------------------ the Job surface

    @property
    def prompt_id(self) -> str:
        return self._job.prompt_id if self._job is not None else ""

    @property
    def server(self) -> str:
        return self._server.url if self._server is not None else ""

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
        self._cancel_requested = True
        self._wake.set()
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
        return f"PoolJob(server={self.server!r}, state={self.status.state.value!r}, moves={len(self.attempts)})"

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
            self.attempts.append({"server": server.url, "prompt_id": job.prompt_id, "reason": reason})

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
                if not lost or self._cancel_requested:
                    self._finish(status)
                    return
                reason = f"lost by {server.url}: {status.error.message if status.error else ''}"
            elif server.generation != self._generation:
                server.abandoned.append(job.prompt_id)
                reason = f"{server.url} went down"
            else:
                continue  # a cancel request: the job's own end wakes us again
            self._detach(reason)
            if self._cancel_requested:
                self._finish(dataclasses.replace(job.status, state=JobState.CANCELLED, error=None))
                return
            log.info("comfy_nb: moving prompt %s (%s)", job.prompt_id, reason)
            try:
                new_server, new_job = await self._pool._place(self)
            except ComfyError as exc:
                self._finish(self._failed(f"{reason}, and it could not be submitted again: {exc}"))
                return
            self._attach(new_server, new_job)


class ServerPool:
    """Several ComfyUI servers behind one submit / run_sweep surface.

    ``ServerPool(["http://gpu1:8188", "http://gpu2:8188"], token=...)``: the keyword arguments the
    pool does not know are passed to each ``AsyncComfyClient``. Existing clients may be given instead
    of URLs (they are not closed with the pool).

    * ``health_interval`` – seconds between health checks of servers whose socket is gone.
    * ``down_after`` – failed probes in a row before a server counts as down.
    * ``probe_timeout`` – seconds one probe may take.
    * ``wait_for_server`` – how long a job waits for a server able to run it to be up.
    """

    def __init__(
        self,
        servers: Sequence[str | AsyncComfyClient],
        *,
        health_interval: float = 1.0,
        down_after: int = 2,
        probe_timeout: float = 5.0,
        wait_for_server: float = 300.0,
        **client_kwargs: Any,
    ) -> None:
        if not servers:
            raise ComfyError("a ServerPool needs at least one server URL")
        self._servers = [
            _Server(s, False) if isinstance(s, AsyncComfyClient) else _Server(AsyncComfyClient(s, **client_kwargs), True)
            for s in servers
        ]
        self.health_interval = health_interval
        self.down_after = max(1, down_after)
        self.probe_timeout = probe_timeout
        self.wait_for_server = wait_for_server
        self._changed = asyncio.Event()
        self._monitor: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._followers: set[asyncio.Task[None]] = set()
        self._open: set[PoolJob] = set()
        """Jobs not finished yet: released with ``ClientClosed`` when the pool closes."""

    def __repr__(self) -> str:
        shown = ", ".join(f"{s.url} {'up' if s.up else 'down'}" for s in self._servers)
        return f"ServerPool({shown})"

    @property
    def servers(self) -> list[str]:
        return [s.url for s in self._servers]

    @property
    def clients(self) -> list[AsyncComfyClient]:
        return [s.client for s in self._servers]

    @property
    def config(self) -> Any:
        return self._servers[0].client.config

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> ServerPool:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def connect(self) -> None:
        """Connect to every server; at least one must answer (the others are retried in the background)."""
        if self._monitor is not None:
            return
        results = await asyncio.gather(*(self._bring_up(s) for s in self._servers), return_exceptions=True)
        if not any(s.up for s in self._servers):
            details = "; ".join(f"{s.url}: {r}" for s, r in zip(self._servers, results, strict=True))
            raise ComfyConnectionError(f"no server of the pool answered ({details})")
        self._monitor = asyncio.create_task(self._watch(), name="comfy_nb-pool-monitor")

    async def aclose(self) -> None:
        """Stop watching and close the clients the pool made; unfinished jobs stay on their servers."""
        for job in list(self._open):
            job._close()
        self._open.clear()
        tasks = [t for t in (self._monitor, *self._background, *self._followers) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._monitor = None
        for server in self._servers:
            if server.owned:
                await server.client.aclose()

    # ------------------------------------------------------------------ submitting

    async def submit(self, prompt: Mapping[str, Any] | Any, *, meta: Mapping[str, Any] | None = None,
                     **kwargs: Any) -> PoolJob:
        """Queue a graph on the best server and return its ``PoolJob`` at once."""
        graph = api_graph(prompt)  # the client's checks: a UI workflow or a bad node is a WorkflowError
        job = PoolJob(self, graph, meta, kwargs)
        self._open.add(job)
        try:
            server, first = await self._place(job)
        except BaseException:
            self._open.discard(job)
            raise
        job._attach(server, first)
        task = asyncio.create_task(job._follow(), name="comfy_nb-pool-job")
        self._followers.add(task)
        task.add_done_callback(self._followers.discard)
        return job

    async def submit_task(self, task: Any, **kwargs: Any) -> PoolJob:
        """Build the task's graph with a server's node definitions, then submit it like ``submit``."""
        config, defs = await self.build_context()
        graph, meta = task.to_prompt(config, defs)
        return await self.submit(graph, meta=meta, **kwargs)

    async def run_sweep(self, sweep: Any, **kwargs: Any) -> Any:
        """Start a sweep over the pool; see ``comfy_nb.experiments.run_sweep``."""
        from ._runner import run_sweep

        return await run_sweep(self, sweep, **kwargs)

    async def build_context(self) -> tuple[Any, dict[str, NodeDef]]:
        """The config and node definitions graphs are built with (the first up server's)."""
        up = [s for s in self._servers if s.up]
        if not up:
            raise ComfyConnectionError("no server of the pool is up")
        config = up[0].client.config
        if config is None:
            from ..config import ComfyConfig

            config = ComfyConfig(server_url=up[0].url)
        return config, up[0].defs

    async def _place(self, job: PoolJob) -> tuple[_Server, Job]:
        """Submit to the best server that can run the graph, waiting (bounded) for one to be up."""
        deadline = time.monotonic() + self.wait_for_server
        able = {s.url: missing_on(job.prompt, s.defs) for s in self._servers if s.up or s.defs}
        if able and all(able.values()):
            reasons = "; ".join(f"{url} lacks {', '.join(m[:5])}" for url, m in able.items())
            raise WorkflowError(f"no server of the pool can run this prompt: {reasons}")
        while True:
            candidates = [s for s in self._servers if s.up and not missing_on(job.prompt, s.defs)]
            if job._cancel_requested:
                raise ComfyError("cancelled before it could be submitted")
            if not candidates:
                changed = self._changed
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ComfyConnectionError(
                        f"no server able to run this prompt was up for {self.wait_for_server:.0f} s: "
                        + "; ".join(f"{s.url}: {s.last_error or 'down'}" for s in self._servers)
                    )
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(changed.wait(), remaining)
                continue
            server = min(candidates, key=lambda s: (s.queue_length(), s.assigned))
            server.submitting += 1
            try:
                submitted = await server.client.submit(job.prompt, meta=job.meta, **job._kwargs)
            except PromptValidationError:
                raise
            except ComfyConnectionError as exc:
                self._mark_down(server, str(exc))
                continue
            finally:
                server.submitting -= 1
            return server, submitted

    # ------------------------------------------------------------------ load

    def stats(self) -> list[ServerLoad]:
        """Per-server load and counts, in the pool's server order."""
        out = []
        for s in self._servers:
            states = [j.status.state for j in s.jobs]
            out.append(ServerLoad(
                url=s.url, up=s.up, queued=states.count(JobState.QUEUED), running=states.count(JobState.RUNNING),
                completed=s.completed, failed=s.failed, moved=s.moved, server_queue=s.client.queue_remaining,
            ))
        return out

    def load(self) -> dict[str, int]:
        """Unfinished jobs of this pool per server URL."""
        return {s.url: len(s.jobs) for s in self._servers}

    # ------------------------------------------------------------------ health

    def _signal(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _bring_up(self, server: _Server) -> None:
        await server.client.connect()
        server.defs = await server.client.node_defs(refresh=True)
        server.up = True
        server.failures = 0
        abandoned, server.abandoned = server.abandoned, []
        for pid in abandoned:  # it came back: make sure what moved away does not run twice
            task = asyncio.create_task(self._cancel_quietly(server, pid))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        self._signal()

    async def _cancel_quietly(self, server: _Server, prompt_id: str) -> None:
        with contextlib.suppress(ComfyError, asyncio.TimeoutError):
            await asyncio.wait_for(server.client.cancel(prompt_id), self.probe_timeout)

    def _mark_down(self, server: _Server, reason: str) -> None:
        server.last_error = reason
        if not server.up:
            return
        log.warning("comfy_nb: %s is down (%s); moving its jobs", server.url, reason)
        server.up = False
        server.generation += 1
        for job in tuple(server.jobs):
            job._wake.set()
        self._signal()

    async def _probe(self, server: _Server) -> None:
        try:
            if server.up:
                await asyncio.wait_for(server.client.system_stats(), self.probe_timeout)
            else:
                await asyncio.wait_for(self._bring_up(server), self.probe_timeout)
        except (ComfyError, asyncio.TimeoutError, OSError) as exc:
            server.failures += 1
            if server.failures >= self.down_after:
                self._mark_down(server, f"{type(exc).__name__}: {exc}")
        else:
            server.failures = 0

    async def _watch(self) -> None:
        """Probe servers that may be down: no socket while they hold our jobs, or already marked down."""
        while True:
            await asyncio.sleep(self.health_interval)
            suspects = [s for s in self._servers if not s.up or (s.jobs and not s.client.connected)]
            if suspects:
                await asyncio.gather(*(self._probe(s) for s in suspects))


class BlockingServerPool:
    """``ServerPool`` for code without ``await``: it lives on the library's loop thread, like ``ComfyClient``."""

    def __init__(self, servers: Sequence[str | AsyncComfyClient], **kwargs: Any) -> None:
        from ..client._loop import run_sync

        self._run_sync = run_sync

        async def start() -> ServerPool:
            pool = ServerPool(servers, **kwargs)
            await pool.connect()
            return pool

        self.pool = run_sync(start())

    def __enter__(self) -> BlockingServerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return repr(self.pool)

    def close(self) -> None:
        self._run_sync(self.pool.aclose())

    def submit(self, prompt: Mapping[str, Any] | Any, **kwargs: Any) -> list[Output]:
        """Run one graph on the best server and return its outputs."""
        async def go() -> list[Output]:
            return await (await self.pool.submit(prompt, **kwargs)).result()

        return self._run_sync(go())

    def run_sweep(self, sweep: Any, **kwargs: Any) -> Any:
        """Run a sweep to the end and return the finished ``SweepRun`` (the same as ``sweep.run(pool)``)."""
        from ._runner import run_sweep_blocking

        return run_sweep_blocking(self, sweep, **kwargs)

    def stats(self) -> list[ServerLoad]:
        return self.pool.stats()

    def load(self) -> dict[str, int]:
        return self.pool.load()
