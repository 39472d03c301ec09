"""``AsyncComfyClient``: the coordinator of one server's transport, socket, follower and files.

Its public methods are the client contract (docs/DESIGN.md); the mechanism lives beside it:
``_transport`` (one HTTP exchange), ``_socket`` (frames in, reconnect), ``_follower`` (all
follow-state and reconciliation), ``_submit`` (POST /prompt never twice), ``_cancel``, ``_files``,
``_queue_watch``, ``_server_info``, ``_options`` (the constructor's arguments resolved) and ``_kinds``
(native ComfyUI, Comfy Cloud or a v2 endpoint: detection and what each changes).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import pathlib
import ssl
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine, Mapping
from typing import Any, TypeVar

import httpx

from ..config import KindSetting
from ..errors import ClientClosed, ComfyError
from ..protocol import (
    HistoryEntry,
    NodeDef,
    api_graph,
    refuse_non_finite,
)
from ._cancel import Canceller
from ._contracts import PromptBuilder
from ._files import Files
from ._follower import Follower, FollowSettings
from ._job import Job, JobFeed
from ._kinds import API_KEY_HEADER, ServerKind, connect_native, detect_kind, wiring
from ._loop import register_client
from ._models import JobStatus, Output, QueueState, ServerCapabilities
from ._options import resolve_options
from ._queue_watch import QueueWatch
from ._server_info import ServerInfo, read_history, read_history_entry, read_queue, read_status
from ._settings import ClientSettings
from ._socket import Socket
from ._submit import dropped_outputs, new_prompt_id, post_prompt, prompt_body
from ._tracker import JobTracker
from ._transport import Transport
from ._v2_backend import V2Backend, by_kind

__all__ = ["AsyncComfyClient", "PromptBuilder"]

log = logging.getLogger("comfy_nb")

T = TypeVar("T")


class AsyncComfyClient(ClientSettings):
    """An async client for one ComfyUI server (native, Comfy Cloud or a Comfy API v2 endpoint).

    **Parameters**

    * ``url`` – e.g. ``http://127.0.0.1:8188``, ``https://host/comfy/`` behind a proxy, ``https://cloud.comfy.org``.
    * ``token`` – sent as ``Authorization: Bearer``; or ``username``/``password`` for basic auth; or
      ``headers`` for anything else; ``api_key`` – a Comfy API key (Comfy Cloud, v2). Never shown in a
      repr, log line or exception, never sent to another host (a download's redirect gets none).
    * ``kind`` – ``"comfyui"``, ``"cloud"``, ``"v2"`` (a Comfy API v2 endpoint, e.g. ``comfy-api-proxy``;
      its key goes as ``Authorization: Bearer``, ``token`` works too) or ``"auto"`` (detected at the first
      ``connect()``). Every kind gives the same ``Job`` / ``JobStatus`` / ``Output``.
    * ``config`` – a ``ComfyConfig``; explicit arguments win over it.
    * ``timeout`` – seconds for one HTTP exchange (connect is capped at 10 s); ``max_retries`` for
      reads on connection errors, 5xx and 429.
    * ``websocket`` – False to follow jobs by polling only.
    * ``outage_timeout`` – seconds the server may stay unreachable before unfinished jobs end ``failed``.

    Use ``async with AsyncComfyClient(...) as client`` (or ``await client.connect()`` /
    ``await client.aclose()``).
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        token: str | None = None,
        username: str | None = None,
        password: str | None = None,
        headers: Mapping[str, str] | None = None,
        api_key: str | None = None,
        kind: KindSetting = "auto",
        config: Any = None,
        timeout: float | None = None,
        max_retries: int | None = None,
        client_id: str | None = None,
        websocket: bool = True,
        verify: bool | str | ssl.SSLContext = True,
        poll_interval: float = 1.0,
        quiet_poll: float = 5.0,
        outage_timeout: float = 120.0,
        http_client: httpx.AsyncClient | None = None,
        max_download_size: int = 1 << 30,
    ) -> None:
        self.config = config
        options = resolve_options(
            url, token=token, username=username, password=password, headers=headers, config=config,
            api_key=api_key, kind=kind,
            timeout=timeout, max_retries=max_retries, client_id=client_id, verify=verify,
            polling=(("poll_interval", poll_interval), ("quiet_poll", quiet_poll), ("outage_timeout", outage_timeout)),
            max_download_size=max_download_size,
        )
        self.url, self._ws_url, self.client_id = options.url, options.ws_url, options.client_id
        self._headers = options.headers
        self._api_key = options.api_key
        self._v2_key = options.api_key or token
        self._kind: ServerKind | None = None
        timeout, max_retries = options.timeout, options.max_retries
        self._use_ws = websocket
        self._transport = Transport(
            self.url, self._headers, timeout=timeout, max_retries=max_retries, verify=verify,
            max_download_size=max_download_size, http_client=http_client,
        )
        self._server = ServerInfo(self._transport)
        self._files = Files(self._transport, lambda: self._server.known_capabilities)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._follower = Follower(
            FollowSettings(self.url, poll_interval, quiet_poll, outage_timeout, max_retries),
            read_queue=self.queue, read_history=self._history, socket_open=lambda: self._socket.open,
            reconnect_socket=lambda: self._socket.reconnect(), background=self._task,
            on_status=lambda msg: self._queue_watch.on_status(msg),
        )
        self._canceller = Canceller(
            self._transport, self._follower, self._server, read_queue=self.queue, read_history=self._history
        )
        self._queue_watch = QueueWatch(
            self.queue, self._follower, live=lambda: self._loop is not None and not self._closing
        )
        self._socket = Socket(
            f"{self._ws_url}?clientId={self.client_id}", headers=self._headers, open_timeout=min(10.0, timeout),
            verify=verify, on_frame=self._follower.on_frame, on_open=self._follower.socket_opened,
            on_lost=self._follower.socket_lost,
        )
        self._supervisor: asyncio.Task[None] | None = None
        self._closing = False
        self._closed = False  # after aclose() until an explicit connect(): nothing reopens it implicitly
        self._connect_lock: asyncio.Lock | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._verify, self._http_client = verify, http_client
        self._v2: V2Backend | None = None
        """The Comfy API v2 path (``kind="v2"``, given or detected): jobs, SSE and assets instead of native routes."""
        if options.kind is not None:
            self._use_kind(options.kind)

    def _use_kind(self, kind: ServerKind) -> None:
        """Wire the transport, socket and files for ``kind`` (the REST base, key header, socket token)."""
        wired = wiring(kind, url=self.url, ws_url=self._ws_url, client_id=self.client_id, api_key=self._api_key)
        self._transport.base_url, self._transport.auth_hint = wired.rest_base, wired.auth_hint
        self._transport.add_headers(wired.headers)
        self._socket.url = wired.socket_url
        self._files.flat = kind is ServerKind.CLOUD
        self._kind = kind
        if kind is ServerKind.V2:
            self._v2 = V2Backend(
                self, self.url, self._follower.settings, self._transport, api_key=self._v2_key,
                verify=self._verify, http_client=self._http_client,
            )

    # ------------------------------------------------------------------ lifecycle

    def __repr__(self) -> str:
        kind = f" kind={self._kind.value}" if self._kind not in (None, ServerKind.COMFYUI) else ""
        return f"AsyncComfyClient(url={self.url!r}{kind}{' auth=***' if self.auth else ''})"

    async def __aenter__(self) -> AsyncComfyClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    @property
    def view_url(self) -> str:
        return f"{self._transport.base_url}/view"

    @property
    def ws_url(self) -> str:
        """The WebSocket this client listens on, as shown (a token in it reads ``token=***``)."""
        return self._socket.url

    @property
    def kind(self) -> ServerKind | None:
        """The server's kind (``"comfyui"``, ``"cloud"``, ``"v2"``): given, or detected at the first
        ``connect()`` (``None`` until then when ``kind="auto"``)."""
        return self._kind

    @property
    def auth(self) -> str | None:
        """The kind of credentials this client sends (``"bearer"``, ``"basic"``, ``"api_key"``), never their value."""
        if API_KEY_HEADER in self._headers or (self._v2 is not None and self._v2.keyed):
            return "api_key"
        value = self._headers.get("Authorization", "")
        return value.split(" ", 1)[0].lower() or None if value else None

    @property
    def closing(self) -> bool:
        return self._closing

    @property
    def connected(self) -> bool:
        """True while the WebSocket is open (on a v2 endpoint: while the client is connected)."""
        return self._v2.connected if self._v2 is not None else self._socket.open

    def _closed_error(self) -> ClientClosed:
        return self._transport.closed_error()

    async def connect(self) -> None:
        """Check the server answers and open the WebSocket (idempotent)."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
            self._connect_lock = asyncio.Lock()
        assert self._connect_lock is not None
        self._closed = False  # an explicit connect() reopens a closed client
        async with self._connect_lock:
            if self._v2 is None:
                if self._socket.running or (not self._use_ws and self._supervisor is not None):
                    return
                self._closing = self._follower.closing = self._transport.closed = False
                register_client(self)
                self._transport.open()
                if self._kind is None:  # kind="auto": one probe, at the first connect only
                    self._use_kind(await detect_kind(self._transport, self._api_key))
            if self._v2 is not None:  # the one branch point: a v2 endpoint has no socket and no native routes
                await self._transport.release()
                self._closing = False
                register_client(self)
                await self._v2.connect()
                return
            await connect_native(self._socket, self._transport, websocket=self._use_ws)
            self._supervisor = asyncio.create_task(self._follower.supervise(), name="comfy_nb-supervisor")

    async def _ensure_open(self) -> None:
        """Connect on first use, but never reopen a client its owner closed."""
        if self._closed:
            raise self._closed_error()
        await self.connect()

    async def aclose(self) -> None:
        """Close the socket and the connection pool; unfinished jobs stay on the server.

        Whoever waits on an unfinished job (``wait``, ``result``, ``updates``) gets ``ClientClosed``.
        """
        self._closing = True
        self._closed = True
        if self._v2 is not None:
            await self._v2.aclose()
        self._transport.closed = True  # a late background call must not open a new pool
        self._follower.close(self.url)
        await self._queue_watch.stop()
        tasks = [t for t in (self._supervisor,) if t is not None]
        tasks += list(self._background)
        for task in tasks:
            task.cancel()
        await self._socket.stop()
        for task in tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        self._supervisor = None
        await self._transport.aclose()

    def spawn(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Run ``coro`` on this client's event loop from any thread (button handlers, callbacks)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            coro.close()
            raise ComfyError("the client is not connected: call `await client.connect()` first")
        return asyncio.run_coroutine_threadsafe(coro, loop)

    def _task(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # ------------------------------------------------------------------ server info

    @by_kind
    async def system_stats(self) -> dict[str, Any]:
        return await self._server.system_stats()

    @by_kind
    async def object_info(self, refresh: bool = False) -> dict[str, Any]:
        """Every node definition (cached per client; ``refresh=True`` re-reads it)."""
        return await self._server.object_info(refresh)

    @by_kind
    async def node_defs(self, refresh: bool = False) -> dict[str, NodeDef]:
        return await self._server.node_defs(refresh)

    @by_kind
    async def choices(self, class_type: str, input_name: str) -> list[Any]:
        """The allowed values of a combo input, e.g. ``choices("KSampler", "sampler_name")``."""
        return await self._server.choices(class_type, input_name)

    @by_kind
    async def models(self, folder: str) -> list[str]:
        """File names in a model folder (``checkpoints``, ``loras``, ``vae``, ``upscale_models``...)."""
        return await self._server.models(folder)

    @by_kind
    async def capabilities(self, refresh: bool = False) -> ServerCapabilities:
        """Version, devices and what the server supports (previews, jobs API, targeted interrupt)."""
        return await self._server.capabilities(refresh)

    # ------------------------------------------------------------------ submitting

    @by_kind
    async def submit(
        self,
        prompt: Mapping[str, Any] | Any,
        *,
        extra_data: Mapping[str, Any] | None = None,
        front: bool = False,
        number: float | None = None,
        partial_targets: list[str] | None = None,
        meta: Mapping[str, Any] | None = None,
        prompt_id: str | None = None,
        partner_nodes: bool = False,
    ) -> Job:
        """Queue an API-format graph and return its ``Job`` at once.

        A graph the server refuses raises ``PromptValidationError`` listing every node, input and reason.
        A 200 that dropped invalid outputs is never silent: ``job.status.node_errors`` lists them and a
        warning is logged. ``partner_nodes=True`` sends the API key as ``extra_data.api_key_comfy_org``
        so paid partner (API) nodes can run, billed to that key; never sent without it.
        """
        graph = api_graph(prompt)
        refuse_non_finite(graph)
        await self._ensure_open()
        pid = new_prompt_id(prompt_id, taken=prompt_id is not None and self._follower.get(prompt_id) is not None)
        body = prompt_body(
            graph, self.client_id, pid, extra_data=extra_data, front=front, number=number,
            partial_targets=partial_targets, partner_nodes=partner_nodes, api_key=self._api_key,
        )
        feed = JobFeed(JobTracker(pid, prompt=graph, outputs_to_execute=partial_targets, view_url=self.view_url))
        job = Job(self, feed, meta)
        await self._socket.reopened()  # a reconnect under way: wait for it (briefly) rather than follow blind
        # Followed before the POST (its events may arrive before the response), but never "vanished"
        # while the POST and its retries are in flight.
        self._follower.follow(job, feed, submitting=True)
        # Deliveries wait for the POST's answer: a job that ends on the socket first must still carry
        # the answer's node_errors in its one terminal status.
        feed.hold()
        try:
            accepted = await post_prompt(
                self._transport, body, graph, pid, server_knows=self._server_knows, heard=self._follower.heard
            )
        except BaseException:
            self._follower.submitted(pid, accepted=False)
            raise
        if accepted is not None and accepted.node_errors:
            feed.set_node_errors(dropped_outputs(accepted.node_errors, graph, pid))
        feed.release()
        self._follower.submitted(pid, accepted=True)
        return job

    async def _server_knows(self, pid: str) -> bool:
        """True when the server's queue or history has the prompt (False when it cannot be asked)."""
        try:
            if pid in await self.queue():
                return True
            return await self._history(pid) is not None
        except ComfyError:
            return False

    async def submit_task(self, task: PromptBuilder, **kwargs: Any) -> Job:
        """Build the task's graph (config's workflow for its type, preferred models) and submit it."""
        if self.config is None:
            from ..config import ComfyConfig

            self.config = ComfyConfig(server_url=self.url)  # the built-in templates, no preferred models
        defs = None if self._v2 is not None else await self.node_defs()  # v2: the endpoint validates
        prompt, meta = task.to_prompt(self.config, defs)
        return await self.submit(prompt, meta=meta, **kwargs)

    async def run(self, prompt: Mapping[str, Any] | Any, *, timeout: float | None = None, **kwargs: Any) -> list[Output]:
        """Submit and wait for the outputs in one call."""
        job = await self.submit(prompt, **kwargs)
        return await job.result(timeout)

    # ------------------------------------------------------------------ following jobs

    @property
    def jobs(self) -> dict[str, Job]:
        """The unfinished jobs this client is following."""
        return self._v2.jobs if self._v2 is not None else self._follower.jobs

    async def _history(self, pid: str) -> HistoryEntry | None:
        """The prompt's history entry, None when it has none; ``ProtocolError`` for a body of the wrong shape."""
        return await read_history_entry(self._transport, pid)

    @by_kind
    async def history(self, max_items: int | None = None, offset: int | None = None) -> dict[str, HistoryEntry]:
        """Finished prompts by id (entries of an unreadable shape are left out)."""
        return await read_history(self._transport, max_items, offset)

    @by_kind
    async def queue(self) -> QueueState:
        """The server's queue, pending in run order (``ProtocolError`` for a body of the wrong shape)."""
        return await read_queue(self._transport, self.client_id)

    @by_kind
    async def status(self, prompt_id: str) -> JobStatus:
        """The status of any prompt, including ones submitted by other clients."""
        job = self._follower.get(prompt_id)
        if job is not None:
            return job.status
        return await read_status(self._transport, prompt_id, self.client_id, self.view_url)

    @by_kind
    async def track(self, prompt_id: str) -> Job:
        """A ``Job`` for a prompt submitted elsewhere, kept up to date by polling."""
        await self._ensure_open()
        job = self._follower.get(prompt_id)
        if job is not None:
            return job
        status = await self.status(prompt_id)
        tracker = JobTracker(prompt_id, view_url=self.view_url)
        tracker.status = status
        feed = JobFeed(tracker)
        job = Job(self, feed)
        if not status.terminal:
            self._follower.follow(job, feed, foreign=True)
        return job

    async def watch(self, prompt_id: str) -> AsyncGenerator[JobStatus, None]:
        """Each new status of a prompt until it ends."""
        job = self._follower.get(prompt_id) or await self.track(prompt_id)
        async for status in job.updates():
            yield status

    # ------------------------------------------------------------------ cancelling and the queue

    @by_kind
    async def cancel(self, prompt_id: str) -> bool:
        """Cancel one prompt: removed if pending, interrupted if running. Never touches another prompt.

        Returns True when this call cancelled it (False if it had already finished or is unknown).
        """
        return await self._canceller.cancel(prompt_id)

    @by_kind
    async def clear_queue(self, *, mine_only: bool = False) -> int:
        """Remove pending prompts (all, or only this client's); returns how many were removed."""
        return await self._canceller.clear_queue(mine_only=mine_only)

    @by_kind
    async def interrupt(self) -> None:
        """Global interrupt of whatever runs now (any client's prompt); prefer ``cancel(prompt_id)``."""
        await self._transport.request("POST", "/interrupt", json={})

    def on_queue_change(self, callback: Callable[[QueueState], Any]) -> Callable[[], None]:
        """Call ``callback(QueueState)`` whenever the server's queue changes (pushed by the socket)."""
        if self._v2 is not None:
            return self._v2.on_queue_change(callback)
        unsubscribe = self._queue_watch.add(callback)
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._queue_watch.schedule)
        return unsubscribe

    @property
    def queue_remaining(self) -> int | None:
        """Prompts on the server (running and pending) as of its last status message."""
        return self._queue_watch.remaining

    # ------------------------------------------------------------------ files

    @by_kind
    async def upload_image(
        self,
        image: Any,
        *,
        name: str | None = None,
        subfolder: str = "",
        overwrite: bool = False,
        type: str = "input",
        mask_for: Output | str | None = None,
    ) -> str:
        """Upload a path, bytes, PIL image or NumPy array; returns the name ``LoadImage`` takes.

        The server may rename the file (``name (1).png``) when another file has that name, and Comfy
        Cloud names it by its content and ignores ``subfolder``: always use the returned value. With ``mask_for`` (an uploaded image), the upload's alpha becomes its mask.
        """
        return await self._files.upload_image(
            image, name=name, subfolder=subfolder, overwrite=overwrite, type=type, mask_for=mask_for
        )

    @by_kind
    async def download(self, output: Output, *, preview: str | None = None) -> bytes:
        """The bytes of an output file (``preview="webp;60"`` asks the server for a small re-encode)."""
        return await self._files.download(output, preview=preview)

    @by_kind
    async def load_image(self, output: Output) -> Any:
        """An output as a ``PIL.Image`` (fully loaded)."""
        return await self._files.load_image(output)

    @by_kind
    async def save_output(self, output: Output, directory: str | os.PathLike[str]) -> pathlib.Path:
        """Save an output under ``directory`` (its subfolder kept); never writes outside it."""
        return await self._files.save_output(output, directory)
