"""``ServerPool``: the client's submit surface over several ComfyUI servers, with optional overflow.

Placement: each prompt goes to an up server whose ``/object_info`` has every node class of the graph
and offers every combo value it uses (so model files and uploaded images are where the prompt needs
them). Among those, ``OverflowPolicy.choose`` picks from the counts: the local server with the
shortest queue (this pool's unfinished jobs there, or the server's own ``queue_remaining`` when other
clients keep it busier), and an overflow server (Comfy Cloud, a fleet) only when the user gave one
and every local queue is longer than the policy allows. A server in the main list is local whatever
its kind: nothing leaves the local servers unless ``overflow=`` names where it may go.

Failure: a server is marked down when a submit cannot reach it, or when its socket is gone and
health probes fail ``down_after`` times in a row. Its unfinished jobs are then placed again by the
same rule (a ``PoolJob`` keeps one identity across moves; ``attempts`` says where it was and why),
and so are jobs a restarted server forgot. The abandoned prompts are cancelled if that server comes
back, so each job's result is taken from exactly one execution.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..client import AsyncComfyClient, ComfyClient, Job, JobState, Output
from ..errors import (
    ClientClosed,
    ComfyConnectionError,
    ComfyError,
    NotAvailable,
    PromptValidationError,
    WorkflowError,
)
from ..protocol import NodeDef, api_graph
from ._overflow import OverflowPolicy
from ._pool_job import PoolJob, _Server, missing_on

__all__ = ["BlockingServerPool", "ServerLoad", "ServerPool"]

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
    overflow: bool = False
    """An overflow server (``ServerPool(..., overflow=[...])``)."""


class ServerPool:
    """Several ComfyUI servers behind one submit / run_sweep surface.

    ``ServerPool(["http://gpu1:8188", "http://gpu2:8188"], token=...)``: the keyword arguments the
    pool does not know are passed to each ``AsyncComfyClient``. Existing clients may be given instead
    of URLs (they are not closed with the pool).

    * ``overflow`` – servers (or clients, e.g. one for Comfy Cloud) used only when the local ones are
      busy, as ``overflow_policy`` (default ``OverflowPolicy()``) says. Without it nothing is sent
      anywhere but ``servers``.
    * ``health_interval`` – seconds between health checks of servers whose socket is gone.
    * ``down_after`` – failed probes in a row before a server counts as down.
    * ``probe_timeout`` – seconds one probe may take.
    * ``wait_for_server`` – how long a job waits for a server able to run it to be up.
    """

    def __init__(
        self,
        servers: Sequence[str | AsyncComfyClient],
        *,
        overflow: Sequence[str | AsyncComfyClient] = (),
        overflow_policy: OverflowPolicy | None = None,
        health_interval: float = 1.0,
        down_after: int = 2,
        probe_timeout: float = 5.0,
        wait_for_server: float = 300.0,
        **client_kwargs: Any,
    ) -> None:
        if isinstance(servers, str) or isinstance(overflow, str):
            raise ComfyError("give the pool's servers (and its overflow) as a list of URLs or clients, not one string")
        if not servers:
            raise ComfyError("a ServerPool needs at least one server URL")
        if overflow_policy is not None and not isinstance(overflow_policy, OverflowPolicy):
            raise ComfyError(f"overflow_policy must be an OverflowPolicy, not {type(overflow_policy).__name__}")
        if overflow_policy is not None and not overflow:
            raise ComfyError("overflow_policy is set but no overflow server is given: pass overflow=[url or client]")
        self._overflow_policy = overflow_policy or OverflowPolicy()
        self._servers = [self._make_server(s, False, client_kwargs) for s in servers] + [
            self._make_server(s, True, client_kwargs) for s in overflow
        ]
        seen: set[str] = set()
        for server in self._servers:
            if server.url in seen:
                raise ComfyError(f"{server.url} is given twice to the pool (a server is either local or overflow)")
            seen.add(server.url)
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

    @staticmethod
    def _make_server(server: str | AsyncComfyClient, overflow: bool, client_kwargs: dict[str, Any]) -> _Server:
        if isinstance(server, AsyncComfyClient):
            return _Server(server, owned=False, overflow=overflow)
        return _Server(AsyncComfyClient(server, **client_kwargs), owned=True, overflow=overflow)

    def __repr__(self) -> str:
        shown = ", ".join(f"{'overflow ' if s.overflow else ''}{s.url} {'up' if s.up else 'down'}"
                          for s in self._servers)
        return f"ServerPool({shown})"

    @property
    def servers(self) -> list[str]:
        """Every server's URL: the local ones, then the overflow ones."""
        return [s.url for s in self._servers]

    @property
    def overflow(self) -> list[str]:
        """The overflow servers' URLs (empty unless the pool was given ``overflow=``)."""
        return [s.url for s in self._servers if s.overflow]

    @property
    def overflow_policy(self) -> OverflowPolicy | None:
        """When jobs go to the overflow servers; ``None`` without any."""
        return self._overflow_policy if self.overflow else None

    @property
    def capacity(self) -> int:
        """Jobs that keep every server busy: 4 per local server (more when the policy lets local queues
        grow before overflowing), plus ``max_in_flight`` per overflow server. ``run_sweep``'s default."""
        policy = self.overflow_policy
        if policy is None:
            return 4 * len(self._servers)
        local = sum(not s.overflow for s in self._servers) * max(4, policy.when_queued_over + 1)
        return local + len(self.overflow) * policy.max_in_flight

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
        if self.overflow and not self._overflow_policy.when_no_local and not any(
                s.up for s in self._servers if not s.overflow):
            log.warning("comfy_nb: no local server of the pool answered; with OverflowPolicy(when_no_local=False) "
                        "jobs wait for one")
        self._monitor = asyncio.create_task(self._watch(), name="comfy_nb-pool-monitor")

    async def aclose(self) -> None:
        """Stop watching and close the clients the pool made; unfinished jobs stay on their servers."""
        for job in list(self._open):
            job._close()
        self._open.clear()
        self._signal()  # a submit waiting for a server sees its job closed
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

    async def build_context(self) -> tuple[Any, dict[str, NodeDef] | None]:
        """The config and node definitions graphs are built with (the first up server's; None from a
        server that cannot list them, such as a Comfy API v2 endpoint)."""
        up = [s for s in self._servers if s.up]
        if not up:
            raise ComfyConnectionError("no server of the pool is up")
        config = up[0].client.config
        if config is None:
            from ..config import ComfyConfig

            config = ComfyConfig(server_url=up[0].url)
        return config, up[0].defs

    async def _place(self, job: PoolJob) -> tuple[_Server, Job]:
        """Submit where the policy says among the servers that can run the graph, waiting (bounded) for one.

        The wait is bounded by ``wait_for_server`` while no usable server is up; a full overflow only
        delays the job until one of its jobs ends.
        """
        policy = self._overflow_policy
        known: dict[str, tuple[Any, list[str]]] = {}

        def lacks(s: _Server) -> list[str]:
            """``missing_on`` once per server and node list (a graph is walked once, not on every try)."""
            hit = known.get(s.url)
            if hit is None or hit[0] is not s.defs:
                hit = known[s.url] = (s.defs, missing_on(job.prompt, s.defs))
            return hit[1]

        usable = [s for s in self._servers if not s.overflow or policy.when_no_local]
        able = {s.url: lacks(s) for s in usable if s.up or s.defs or s.defs is None}
        if able and all(able.values()):
            reasons = "; ".join(f"{url} lacks {', '.join(m[:5])}" for url, m in able.items())
            raise WorkflowError(f"no server of the pool can run this prompt: {reasons}")
        deadline = time.monotonic() + self.wait_for_server
        while True:
            if job._cancel_requested.is_set():
                raise ComfyError("cancelled before it could be submitted")
            if job._closed is not None:
                raise ClientClosed(job._closed.message)
            candidates = [s for s in self._servers if s.up and not lacks(s)]
            # ties go to the server given the fewest jobs so far
            local = sorted((s for s in candidates if not s.overflow), key=lambda s: s.assigned)
            overflow = [s for s in candidates if s.overflow]
            choice = policy.choose([s.queue_length() for s in local], [s.in_flight() for s in overflow])
            if choice is None:
                changed = self._changed
                if overflow and policy.when_no_local:  # up, but full: waiting for a slot, which every end frees
                    deadline = time.monotonic() + self.wait_for_server
                    await changed.wait()
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ComfyConnectionError(self._nothing_up(job, policy))
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(changed.wait(), remaining)
                continue
            server = (overflow if choice.overflow else local)[choice.index]
            if server.overflow:
                log.info("comfy_nb: prompt to overflow server %s (local queues: %s)", server.url,
                         [s.queue_length() for s in local] or "none up")
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

    def _nothing_up(self, job: PoolJob, policy: OverflowPolicy) -> str:
        """Why no server took the job, server by server."""
        reasons = []
        for s in self._servers:
            missing = missing_on(job.prompt, s.defs)
            if not s.up:
                why = s.last_error or "down"
            elif missing:
                why = "lacks " + ", ".join(missing[:5])
            else:  # only an overflow server can be up, able and unused here
                why = "not used while no local server is up (OverflowPolicy(when_no_local=False))"
            reasons.append(f"{'overflow ' if s.overflow else ''}{s.url}: {why}")
        return f"no server of the pool could take this prompt within {self.wait_for_server:g} s: {'; '.join(reasons)}"

    # ------------------------------------------------------------------ load

    def stats(self) -> list[ServerLoad]:
        """Per-server load and counts, in the pool's server order."""
        out = []
        for s in self._servers:
            states = [j.status.state for j in s.jobs]
            out.append(ServerLoad(
                url=s.url, up=s.up, queued=states.count(JobState.QUEUED), running=states.count(JobState.RUNNING),
                completed=s.completed, failed=s.failed, moved=s.moved, server_queue=s.client.queue_remaining,
                overflow=s.overflow,
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
        try:
            server.defs = await server.client.node_defs(refresh=True)
        except NotAvailable:  # a Comfy API v2 endpoint: it validates graphs at submit
            server.defs = None
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
            if server.up:  # the cheapest read every kind of server answers
                check = server.client.queue() if server.defs is None else server.client.system_stats()
                await asyncio.wait_for(check, self.probe_timeout)
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
    """``ServerPool`` for code without ``await``: it lives on the library's loop thread, like ``ComfyClient``.

    Servers are URLs, or clients: a ``ComfyClient`` (whose async client lives on that same thread) or an
    ``AsyncComfyClient`` made there.
    """

    def __init__(
        self,
        servers: Sequence[str | AsyncComfyClient | ComfyClient],
        *,
        overflow: Sequence[str | AsyncComfyClient | ComfyClient] = (),
        **kwargs: Any,
    ) -> None:
        from ..client._loop import run_sync

        self._run_sync = run_sync

        def unwrap(given: Sequence[str | AsyncComfyClient | ComfyClient]) -> Sequence[str | AsyncComfyClient]:
            if isinstance(given, str):
                return given  # ServerPool refuses a lone string, saying why
            return [s.aclient if isinstance(s, ComfyClient) else s for s in given]

        async def start() -> ServerPool:
            pool = ServerPool(unwrap(servers), overflow=unwrap(overflow), **kwargs)
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
