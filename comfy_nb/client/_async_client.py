"""``AsyncComfyClient``: one WebSocket and one HTTP connection pool per server.

How a job is followed (see the protocol reference, §14):

1. The socket is opened (with a stable ``clientId``) before the first submit; the prompt id is made
   here, so events can never arrive for a job the client does not know yet.
2. Outputs come from ``executed`` messages; a job ends at ``executing {node: null}`` (or at
   ``execution_error`` / ``execution_interrupted``). History is read only when the socket was lost
   while the job ran, so a normal job costs exactly one HTTP request (the submit).
3. When the socket drops, it is reopened with backoff and the same ``clientId``, and every unfinished
   job is reconciled from ``/queue`` and ``/history``. With no socket at all, or a socket that has been
   silent for a while, the same reconciliation runs as polling, so no job can hang and no completion
   is lost. A prompt gone from both queue and history ends ``failed`` (the server restarted).
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import logging
import os
import pathlib
import ssl
import time
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine, Mapping
from typing import Any, Protocol, TypeVar
from urllib.parse import quote

import httpx

from .._secrets import reveal as _secret
from ..config import check_max_retries, check_secret_header, check_timeout
from ..errors import (
    ClientClosed,
    ComfyConnectionError,
    ComfyError,
    ComfyTimeout,
    ConfigError,
    JobLost,
    ProtocolError,
    RequestInfo,
    ResponseInfo,
    ServerError,
    WorkflowError,
)
from ..protocol import (
    ExecutionStartMessage,
    HistoryEntry,
    NodeDef,
    PromptResponse,
    QueueSnapshot,
    StatusMessage,
    api_graph,
    node_errors_to_list,
    parse_node_defs,
    parse_server_url,
    prompt_validation_error,
    refuse_non_finite,
)
from ._files import Files
from ._follower import Follower, FollowSettings
from ._job import Job, JobFeed
from ._loop import register_client
from ._models import (
    DeviceInfo,
    JobState,
    JobStatus,
    Output,
    QueueEntry,
    QueueState,
    ServerCapabilities,
)
from ._retry import is_retryable_status, retry_delay
from ._socket import Socket
from ._tracker import JobTracker
from ._transport import Transport, json_body, safe_json, status_error

__all__ = ["AsyncComfyClient", "PromptBuilder"]

log = logging.getLogger("comfy_nb")

T = TypeVar("T")

DEFAULT_URL = "http://127.0.0.1:8188"
_TARGETED_INTERRUPT_SINCE = (0, 3, 60)
"""``/interrupt {prompt_id}`` landed upstream in 2025 (ComfyUI PR #9607); older servers ignore the body."""


class PromptBuilder(Protocol):
    """What ``submit_task`` needs from a task: an API graph plus the parameters to record."""

    def to_prompt(self, config: Any, node_defs: dict[str, NodeDef]) -> tuple[dict[str, Any], dict[str, Any]]: ...


def _version_tuple(version: str | None) -> tuple[int, ...]:
    out: list[int] = []
    for part in (version or "").split("."):
        digits = "".join(ch for ch in part if ch.isdigit())
        if not digits:
            break
        out.append(int(digits))
    return tuple(out)


class AsyncComfyClient:
    """An async client for one ComfyUI server.

    **Parameters**

    * ``url`` – e.g. ``http://127.0.0.1:8188`` or ``https://host/comfy/`` behind a proxy (``wss`` follows).
    * ``token`` – sent as ``Authorization: Bearer``; or ``username``/``password`` for basic auth; or
      ``headers`` for anything else. None of them is ever shown in a repr, log line or exception.
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
        if config is not None:
            url = url or getattr(config, "server_url", None)
            token = token or _secret(getattr(config, "token", None))
            username = username or getattr(config, "username", None)
            password = password or _secret(getattr(config, "password", None))
            headers = {**dict(getattr(config, "headers", None) or {}), **dict(headers or {})}
            if timeout is None:
                timeout = getattr(config, "timeout", None)
            if max_retries is None:
                max_retries = getattr(config, "max_retries", None)
        server = parse_server_url(str(url or os.environ.get("COMFY_URL") or DEFAULT_URL))
        self.url, self._ws_url, url_auth = server.http, server.ws, server.auth
        if token is None and username is None and url_auth is None:
            token = os.environ.get("COMFY_TOKEN") or None
        if headers is not None and not isinstance(headers, Mapping):
            raise ConfigError(f"headers must be a dict of header names to values, not {type(headers).__name__}")
        for name in headers or {}:
            if not isinstance(name, str) or not name or not all(33 <= ord(c) <= 126 and c != ":" for c in name):
                raise ConfigError(f"header name {name!r} is not a valid HTTP header name (printable ASCII, no ':')")
        self._headers: dict[str, str] = {
            k: check_secret_header(_secret(v) or "", f"header {k!r}") for k, v in (headers or {}).items()
        }
        for what, given in (("username", username), ("password", password)):
            if given is not None and not isinstance(given, str):
                raise ConfigError(f"{what} must be a string, not {type(given).__name__}")
        if not isinstance(verify, (bool, str, ssl.SSLContext)):
            raise ConfigError(
                f"verify must be True, False, a CA bundle path or an ssl.SSLContext, not {type(verify).__name__}"
            )
        if token:
            self._headers["Authorization"] = f"Bearer {check_secret_header(token, 'the token')}"
        elif username is not None or url_auth is not None:
            user, pw = (username or "", password or "") if username is not None else url_auth or ("", "")
            raw = base64.b64encode(f"{user}:{pw}".encode()).decode("ascii")
            self._headers["Authorization"] = f"Basic {raw}"
        timeout = 30.0 if timeout is None else check_timeout(timeout)
        max_retries = 3 if max_retries is None else check_max_retries(max_retries)
        for name, value in (("poll_interval", poll_interval), ("quiet_poll", quiet_poll),
                            ("outage_timeout", outage_timeout)):
            check_timeout(value, name)
        if isinstance(max_download_size, bool) or not isinstance(max_download_size, int) or max_download_size <= 0:
            raise ConfigError(f"max_download_size must be a positive number of bytes (got {max_download_size!r})")
        if client_id is not None and (not isinstance(client_id, str) or not client_id.isprintable()
                                      or not client_id.isascii() or "&" in client_id or " " in client_id):
            raise ConfigError("client_id must be printable ASCII without spaces or '&' (it goes in the socket URL)")
        self.client_id = client_id or uuid.uuid4().hex
        self._use_ws = websocket
        self._transport = Transport(
            self.url, self._headers, timeout=timeout, max_retries=max_retries, verify=verify,
            max_download_size=max_download_size, http_client=http_client,
        )
        self._files = Files(self._transport, lambda: self._capabilities)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._follower = Follower(
            FollowSettings(self.url, poll_interval, quiet_poll, outage_timeout, max_retries),
            read_queue=self.queue, read_history=self._history, socket_open=lambda: self._socket.open,
            reconnect_socket=lambda: self._socket.reconnect(), background=self._task, on_status=self._on_status,
        )
        self._socket = Socket(
            f"{self._ws_url}?clientId={self.client_id}", headers=self._headers, open_timeout=min(10.0, timeout),
            verify=verify, on_frame=self._follower.on_frame, on_open=self._follower.socket_opened,
            on_lost=self._follower.socket_lost,
        )
        self._supervisor: asyncio.Task[None] | None = None
        self._closing = False
        self._closed = False
        """True after ``aclose()`` until an explicit ``connect()``: nothing reopens it implicitly."""
        self._connect_lock: asyncio.Lock | None = None
        self._object_info: dict[str, Any] | None = None
        self._node_defs: dict[str, NodeDef] | None = None
        self._capabilities: ServerCapabilities | None = None
        self.queue_remaining: int | None = None
        self._queue_listeners: list[Callable[[QueueState], Any]] = []
        self._queue_refresh: asyncio.Task[None] | None = None
        self._queue_dirty = False
        self._background: set[asyncio.Task[Any]] = set()

    # ------------------------------------------------------------------ lifecycle

    def __repr__(self) -> str:
        auth = " auth=***" if "Authorization" in self._headers else ""
        return f"AsyncComfyClient(url={self.url!r}{auth})"

    async def __aenter__(self) -> AsyncComfyClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    @property
    def timeout(self) -> float:
        """Seconds for one HTTP exchange (connect is capped at 10 s)."""
        return self._transport.timeout

    @property
    def max_retries(self) -> int:
        """Retries of a read on connection errors, timeouts, 5xx and 429."""
        return self._transport.max_retries

    @property
    def max_download_size(self) -> int:
        """Bytes one response may carry (downloads included); a larger one raises ``ServerError``."""
        return self._transport.max_download_size

    @property
    def poll_interval(self) -> float:
        """Seconds between checks of whether jobs need polling (no socket, a quiet one, foreign jobs)."""
        return self._follower.settings.poll_interval

    @poll_interval.setter
    def poll_interval(self, value: float) -> None:
        self._follower.settings.poll_interval = check_timeout(value, "poll_interval")

    @property
    def quiet_poll(self) -> float:
        """Seconds of socket silence after which unfinished jobs are reconciled by polling."""
        return self._follower.settings.quiet_poll

    @quiet_poll.setter
    def quiet_poll(self, value: float) -> None:
        self._follower.settings.quiet_poll = check_timeout(value, "quiet_poll")

    @property
    def outage_timeout(self) -> float:
        """Seconds the server may stay unreachable before unfinished jobs end ``failed``."""
        return self._follower.settings.outage_timeout

    @outage_timeout.setter
    def outage_timeout(self, value: float) -> None:
        self._follower.settings.outage_timeout = check_timeout(value, "outage_timeout")

    @property
    def view_url(self) -> str:
        return f"{self.url}/view"

    @property
    def auth(self) -> str | None:
        """The kind of credentials this client sends (``"bearer"`` or ``"basic"``), never their value."""
        value = self._headers.get("Authorization", "")
        return value.split(" ", 1)[0].lower() or None if value else None

    @property
    def closing(self) -> bool:
        return self._closing

    @property
    def connected(self) -> bool:
        """True while the WebSocket is open."""
        return self._socket.open

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
            if self._socket.running or (not self._use_ws and self._supervisor is not None):
                return
            self._closing = self._follower.closing = self._transport.closed = False
            register_client(self)
            self._transport.open()
            if self._use_ws:
                self._socket.start()  # the first attempt either connects or fails; either ends the wait
                await self._socket.first_attempt(min(10.0, self.timeout) + 1)
                if not self._socket.open:
                    # No socket: find out whether the server is there at all (clear error if not).
                    try:
                        await self._transport.request("GET", "/prompt", retries=0)
                    except BaseException:
                        # Not connected: stop the socket's retry loop so a later connect() starts
                        # afresh (socket *and* supervisor) instead of returning early.
                        await self._socket.stop()
                        await self._transport.release()  # no session left open by a failed connect
                        raise
                    log.warning(
                        "comfy_nb: WebSocket to %s not available (%s); following jobs by polling",
                        self._ws_url, self._socket.failure or "timed out",
                    )
            else:
                await self._transport.request("GET", "/prompt")
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
        self._transport.closed = True  # a late background call must not open a new pool
        self._follower.close(self.url)
        tasks = [t for t in (self._supervisor, self._queue_refresh) if t is not None]
        tasks += list(self._background)
        for task in tasks:
            task.cancel()
        await self._socket.stop()
        for task in tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        self._supervisor = self._queue_refresh = None
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

    # ------------------------------------------------------------------ HTTP

    # ------------------------------------------------------------------ server info

    async def system_stats(self) -> dict[str, Any]:
        body = await self._transport.get_json("/system_stats")
        if not isinstance(body, dict):
            raise ServerError(f"GET {self.url}/system_stats did not return a JSON object")
        return body

    async def object_info(self, refresh: bool = False) -> dict[str, Any]:
        """Every node definition (cached per client; ``refresh=True`` re-reads it)."""
        if self._object_info is None or refresh:
            body = await self._transport.get_json("/object_info")
            if not isinstance(body, dict):
                raise ServerError(f"GET {self.url}/object_info did not return a JSON object")
            self._object_info = body
            self._node_defs = None
        return self._object_info

    async def node_defs(self, refresh: bool = False) -> dict[str, NodeDef]:
        info = await self.object_info(refresh)
        if self._node_defs is None or refresh:
            self._node_defs = parse_node_defs(info)
        return self._node_defs

    async def choices(self, class_type: str, input_name: str) -> list[Any]:
        """The allowed values of a combo input, e.g. ``choices("KSampler", "sampler_name")``."""
        defs = await self.node_defs()
        node = defs.get(class_type)
        if node is None:
            raise WorkflowError(f"the server has no node class {class_type!r}")
        spec = node.input(input_name)
        if spec is None:
            raise WorkflowError(
                f"node class {class_type!r} has no input {input_name!r}; it has: {', '.join(node.inputs)}"
            )
        return list(spec.options or [])

    async def models(self, folder: str) -> list[str]:
        """File names in a model folder (``checkpoints``, ``loras``, ``vae``, ``upscale_models``...)."""
        response = await self._transport.request("GET", f"/models/{folder}", ok=(200, 404))
        if response.status_code == 404:
            folders = await self._transport.get_json("/models")
            names = ", ".join(map(str, folders)) if isinstance(folders, list) else "(no list)"
            raise ComfyError(f"the server has no model folder {folder!r}; it has: {names}")
        body = json_body(response, "GET", f"{self.url}/models/{folder}")
        return [str(x) for x in body] if isinstance(body, list) else []

    async def capabilities(self, refresh: bool = False) -> ServerCapabilities:
        """Version, devices and what the server supports (previews, jobs API, targeted interrupt)."""
        if self._capabilities is not None and not refresh:
            return self._capabilities
        stats = await self.system_stats()
        features: dict[str, Any] = {}
        response = await self._transport.request("GET", "/features", ok=(200, 404), retries=1)
        if response.status_code == 200:
            body = json_body(response, "GET", f"{self.url}/features")
            features = body if isinstance(body, dict) else {}
        jobs = await self._transport.request("GET", "/api/jobs", params={"limit": 1}, ok=(200, 400, 404, 405), retries=0)
        jobs_api = jobs.status_code == 200 and "jobs" in safe_json(jobs)
        system: dict[str, Any] = stats["system"] if isinstance(stats.get("system"), dict) else {}
        version = _text_or_none(system.get("comfyui_version"))
        devices: list[Any] = stats["devices"] if isinstance(stats.get("devices"), list) else []
        upload_limit = features.get("max_upload_size")
        self._capabilities = ServerCapabilities(
            version=version,
            python_version=_text_or_none(system.get("python_version")),
            pytorch_version=_text_or_none(system.get("pytorch_version")),
            devices=tuple(
                DeviceInfo(str(d.get("name")), str(d.get("type")), _int_or_none(d.get("vram_total")),
                           _int_or_none(d.get("vram_free")))
                for d in devices
                if isinstance(d, dict)
            ),
            supports_preview_metadata=features.get("supports_preview_metadata") is True,
            max_upload_size=_int_or_none(upload_limit),
            targeted_interrupt=_version_tuple(version) >= _TARGETED_INTERRUPT_SINCE,
            jobs_api=jobs_api,
            extra={"features": features, "system": system},
        )
        return self._capabilities

    # ------------------------------------------------------------------ submitting

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
    ) -> Job:
        """Queue an API-format graph and return its ``Job`` at once.

        A graph the server refuses raises ``PromptValidationError`` listing every node, input and reason.
        A 200 that dropped invalid outputs is never silent: ``job.status.node_errors`` lists them and a
        warning is logged.
        """
        graph = api_graph(prompt)
        refuse_non_finite(graph)
        await self._ensure_open()
        if prompt_id is not None and (not isinstance(prompt_id, str) or not prompt_id.strip()):
            raise WorkflowError(f"prompt_id must be a non-empty string, not {prompt_id!r}")
        if prompt_id is not None and self._follower.get(prompt_id) is not None:
            raise WorkflowError(f"prompt {prompt_id} is already queued by this client: give a new prompt_id")
        pid = prompt_id or str(uuid.uuid4())
        body: dict[str, Any] = {"prompt": graph, "client_id": self.client_id, "prompt_id": pid}
        if extra_data:
            body["extra_data"] = dict(extra_data)
        if number is not None:
            body["number"] = number
        elif front:
            body["front"] = True
        if partial_targets:
            body["partial_execution_targets"] = list(partial_targets)
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
            accepted = await self._post_prompt(body, graph, pid)
        except BaseException:
            self._follower.submitted(pid, accepted=False)
            raise
        if accepted is not None and accepted.node_errors:
            errors = tuple(node_errors_to_list(accepted.node_errors, graph))
            feed.set_node_errors(errors)
            log.warning(
                "comfy_nb: prompt %s was queued without its invalid outputs:\n%s",
                pid, "\n".join(f"  - {e.describe()}" for e in errors),
            )
        feed.release()
        self._follower.submitted(pid, accepted=True)
        return job

    async def _post_prompt(self, body: dict[str, Any], graph: dict[str, Any], pid: str) -> PromptResponse | None:
        """POST /prompt, never queuing the same prompt twice.

        The client makes the prompt id, so the server's queue and history say whether an attempt got
        through. A connection refused or a 5xx is retried after checking that; a request that timed out
        may still be in the server's hands (a slow validation), so it is never sent again: the client
        watches for the id instead (socket events, queue, history) for up to another ``timeout``.
        """
        url = f"{self.url}/prompt"
        request = RequestInfo("POST", url)
        for attempt in range(self.max_retries + 1):
            last = attempt == self.max_retries
            failure: ComfyError
            try:
                response = await self._transport.exchange("POST", "/prompt", json_body=body)
            except ClientClosed:
                raise
            except ComfyTimeout:
                await self._await_unanswered_submit(pid, request)
                return None
            except ComfyConnectionError as exc:
                failure = exc
            else:
                if response.status_code == 200:
                    parsed = json_body(response, "POST", url)
                    if not isinstance(parsed, dict):
                        raise ServerError(
                            f"POST {url} answered 200 with an unexpected body (prompt {pid} may be queued)",
                            request=request, response=ResponseInfo.from_parts(200, response.content),
                        )
                    return PromptResponse.model_validate(parsed)
                if response.status_code == 400:
                    raise prompt_validation_error(
                        safe_json(response), prompt=graph, request=request,
                        response=ResponseInfo.from_parts(400, response.content),
                    )
                failure = status_error(response, "POST", url)
                if not is_retryable_status(response.status_code):
                    raise failure
            if last:
                raise failure
            await asyncio.sleep(retry_delay(attempt))
            if await self._server_knows(pid):
                return None  # the first attempt got through; its answer was lost
        raise failure

    async def _await_unanswered_submit(self, pid: str, request: RequestInfo) -> None:
        """A POST /prompt timed out: it may be queued yet. Look for the id, never send it again;
        ``ComfyTimeout`` if it does not appear within another ``timeout``."""
        deadline = time.monotonic() + self.timeout
        attempt = 0
        while True:
            if self._follower.heard(pid) or await self._server_knows(pid):
                log.warning("comfy_nb: POST /prompt for %s timed out, but the server has it; following it", pid)
                return
            if time.monotonic() >= deadline:
                raise ComfyTimeout(
                    f"POST {request.url} got no answer within {self.timeout} s and prompt {pid} has not appeared "
                    f"in the server's queue or history since; it was not sent again (that could queue it "
                    f"twice). Check later with client.status({pid!r}), or raise `timeout=` for a busy server",
                    request=request,
                )
            await asyncio.sleep(min(retry_delay(attempt), max(0.0, deadline - time.monotonic())))
            attempt += 1

    async def _server_knows(self, pid: str) -> bool:
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
        defs = await self.node_defs()
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
        return self._follower.jobs

    async def _history(self, pid: str) -> HistoryEntry | None:
        """The prompt's history entry, None when it has none; ``ProtocolError`` for a body of the wrong shape."""
        body = await self._transport.get_json(f"/history/{quote(pid, safe='')}")
        if not isinstance(body, dict):
            raise ProtocolError(f"GET {self.url}/history/{pid} did not return a JSON object")
        entry = body.get(pid)
        return None if entry is None else HistoryEntry.from_wire(entry, f"the history entry of {pid}")

    async def history(self, max_items: int | None = None, offset: int | None = None) -> dict[str, HistoryEntry]:
        """Finished prompts by id (entries of an unreadable shape are left out)."""
        params = {k: v for k, v in (("max_items", max_items), ("offset", offset)) if v is not None}
        body = await self._transport.get_json("/history", params)
        if not isinstance(body, dict):
            raise ProtocolError(f"GET {self.url}/history did not return a JSON object")
        entries = {}
        for pid, value in body.items():
            try:
                entries[pid] = HistoryEntry.from_wire(value)
            except ProtocolError as exc:
                log.debug("comfy_nb: skipped history entry %s: %s", pid, exc)
        return entries

    async def queue(self) -> QueueState:
        """The server's queue, pending in run order (``ProtocolError`` for a body of the wrong shape)."""
        snap = QueueSnapshot.from_wire(await self._transport.get_json("/queue"))

        def entry(item: Any) -> QueueEntry:
            return QueueEntry(item.prompt_id, item.number, item.client_id, item.client_id == self.client_id)

        return QueueState(tuple(entry(i) for i in snap.running), tuple(entry(i) for i in snap.pending))

    async def status(self, prompt_id: str) -> JobStatus:
        """The status of any prompt, including ones submitted by other clients."""
        job = self._follower.get(prompt_id)
        if job is not None:
            return job.status
        entry = await self._history(prompt_id)
        if entry is not None:
            tracker = JobTracker(prompt_id, prompt=entry.api_prompt, view_url=self.view_url)
            tracker.apply_history(entry)
            return tracker.status
        queue = await self.queue()
        tracker = JobTracker(prompt_id, view_url=self.view_url)
        if any(e.prompt_id == prompt_id for e in queue.running):
            tracker.apply(ExecutionStartMessage(prompt_id=prompt_id))
        elif prompt_id in queue:
            tracker.set_queue_position(queue.position(prompt_id))
        else:
            raise JobLost(prompt_id, f"prompt {prompt_id} is in neither the queue nor the history of {self.url}")
        return tracker.status

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

    async def cancel(self, prompt_id: str) -> bool:
        """Cancel one prompt: removed if pending, interrupted if running. Never touches another prompt.

        Returns True when this call cancelled it (False if it had already finished or is unknown).
        """
        job = self._follower.get(prompt_id)
        if job is not None and job.done:
            return False
        caps = await self.capabilities()
        if caps.jobs_api:
            response = await self._transport.request("POST", f"/api/jobs/{prompt_id}/cancel", ok=(200, 404, 409))
            if response.status_code == 200:
                return await self._confirm_cancelled(prompt_id, job)
            return False
        queue = await self.queue()
        if prompt_id in {e.prompt_id for e in queue.pending}:
            await self._transport.request("POST", "/queue", json={"delete": [prompt_id]})
            queue = await self.queue()
            if prompt_id not in queue:
                if job is not None and await self._history(prompt_id) is None and self._follower.cancelled(prompt_id):
                    return True
                return job is None
        if any(e.prompt_id == prompt_id for e in queue.running):
            # The targeted form only hits this prompt; on older servers a bare interrupt is sent only
            # after seeing that this prompt is the one running (a small window remains; see README).
            body = {"prompt_id": prompt_id} if caps.targeted_interrupt else {}
            await self._transport.request("POST", "/interrupt", json=body)
            return await self._confirm_cancelled(prompt_id, job)
        return False

    async def _confirm_cancelled(self, prompt_id: str, job: Job | None) -> bool:
        if job is None:
            return True
        try:
            status = await job.wait(timeout=max(10.0, self.timeout))
        except ComfyTimeout:
            return False
        return status.state is JobState.CANCELLED

    async def clear_queue(self, *, mine_only: bool = False) -> int:
        """Remove pending prompts (all, or only this client's); returns how many were removed."""
        queue = await self.queue()
        ids = [e.prompt_id for e in queue.pending if e.mine or not mine_only]
        if not ids:
            return 0
        await self._transport.request("POST", "/queue", json={"delete": ids})
        after = await self.queue()
        removed = [pid for pid in ids if pid not in after]
        for pid in removed:
            self._follower.cancelled(pid)
        return len(removed)

    async def interrupt(self) -> None:
        """Global interrupt of whatever runs now (any client's prompt); prefer ``cancel(prompt_id)``."""
        await self._transport.request("POST", "/interrupt", json={})

    def on_queue_change(self, callback: Callable[[QueueState], Any]) -> Callable[[], None]:
        """Call ``callback(QueueState)`` whenever the server's queue changes (pushed by the socket)."""
        self._queue_listeners.append(callback)
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._schedule_queue_refresh)

        def unsubscribe() -> None:
            try:
                self._queue_listeners.remove(callback)
            except ValueError:
                pass

        return unsubscribe

    def _queue_wanted(self) -> bool:
        """Whether anyone needs ``/queue`` read: a listener, or a job of ours that may have prompts
        ahead of it (with at most one prompt on the server, a queued job of ours has none)."""
        if self._queue_listeners:
            return True
        if self.queue_remaining is not None and self.queue_remaining <= 1:
            return False
        return self._follower.any_queued()

    def _on_status(self, msg: StatusMessage) -> None:
        self.queue_remaining = msg.queue_remaining
        self._schedule_queue_refresh()

    def _schedule_queue_refresh(self) -> None:
        if self._loop is None or self._closing or not self._queue_wanted():
            return
        self._queue_dirty = True
        if self._queue_refresh is None or self._queue_refresh.done():
            self._queue_refresh = asyncio.ensure_future(self._refresh_queue())

    async def _refresh_queue(self) -> None:
        """Re-read ``/queue`` after status messages: bursts coalesce, at most a few reads a second,
        and a change that arrives during a read is never lost (it causes one more read)."""
        while self._queue_dirty:
            self._queue_dirty = False
            await asyncio.sleep(0.05)  # coalesce a burst of status broadcasts into one read
            if not self._queue_wanted():  # the jobs started meanwhile: nothing to show
                return
            try:
                state = await self.queue()
            except ComfyError as exc:  # unreachable or malformed: the next status message retries
                log.debug("comfy_nb: queue refresh failed: %s", exc)
                return
            self._follower.queue_read(state)
            for listener in tuple(self._queue_listeners):
                try:
                    listener(state)
                except Exception:
                    log.exception("queue listener raised")
            await asyncio.sleep(0.2)  # rate limit: the next read starts no sooner

    # ------------------------------------------------------------------ files

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

        The server may rename the file (``name (1).png``) when another file has that name: always use
        the returned value. With ``mask_for`` (an uploaded image), the upload's alpha becomes its mask.
        """
        return await self._files.upload_image(
            image, name=name, subfolder=subfolder, overwrite=overwrite, type=type, mask_for=mask_for
        )

    async def download(self, output: Output, *, preview: str | None = None) -> bytes:
        """The bytes of an output file (``preview="webp;60"`` asks the server for a small re-encode)."""
        return await self._files.download(output, preview=preview)

    async def load_image(self, output: Output) -> Any:
        """An output as a ``PIL.Image`` (fully loaded)."""
        return await self._files.load_image(output)

    async def save_output(self, output: Output, directory: str | os.PathLike[str]) -> pathlib.Path:
        """Save an output under ``directory`` (its subfolder kept); never writes outside it."""
        return await self._files.save_output(output, directory)

# ---------------------------------------------------------------------- helpers


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
