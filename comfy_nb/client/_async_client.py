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
import contextlib
import functools
import io
import json
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
import websockets
from websockets.asyncio.client import ClientConnection

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
    ExecutingMessage,
    ExecutionStartMessage,
    FeatureFlagsMessage,
    HistoryEntry,
    NodeDef,
    PreviewImage,
    ProgressMessage,
    ProgressStateMessage,
    ProgressText,
    PromptResponse,
    QueueSnapshot,
    StatusMessage,
    UnknownMessage,
    api_graph,
    decode_binary_frame,
    feature_flags_request,
    node_errors_to_list,
    parse_message,
    parse_node_defs,
    parse_server_url,
    prompt_validation_error,
    refuse_non_finite,
)
from ._job import Job
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
from ._tracker import JobTracker

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
        self.timeout = 30.0 if timeout is None else check_timeout(timeout)
        self.max_retries = 3 if max_retries is None else check_max_retries(max_retries)
        for name, value in (("poll_interval", poll_interval), ("quiet_poll", quiet_poll),
                            ("outage_timeout", outage_timeout)):
            check_timeout(value, name)
        if isinstance(max_download_size, bool) or not isinstance(max_download_size, int) or max_download_size <= 0:
            raise ConfigError(f"max_download_size must be a positive number of bytes (got {max_download_size!r})")
        self.max_download_size = max_download_size
        """Bytes one response may carry (downloads included); a larger one raises ``ServerError``."""
        if client_id is not None and (not isinstance(client_id, str) or not client_id.isprintable()
                                      or not client_id.isascii() or "&" in client_id or " " in client_id):
            raise ConfigError("client_id must be printable ASCII without spaces or '&' (it goes in the socket URL)")
        self.client_id = client_id or uuid.uuid4().hex
        self._use_ws = websocket
        self._verify = verify
        self.poll_interval = poll_interval
        self.quiet_poll = quiet_poll
        self.outage_timeout = outage_timeout
        self._unreachable_since: float | None = None
        self._external_http = http_client
        self._http: httpx.AsyncClient | None = http_client
        self._aio_transport: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ws: ClientConnection | None = None
        self._ws_task: asyncio.Task[None] | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._ws_connected: asyncio.Event | None = None
        self._ws_attempted: asyncio.Event | None = None
        self._ws_failed: str | None = None
        self._ws_opening = False
        """True while a socket connection attempt is in flight."""
        self._closing = False
        self._closed = False
        """True after ``aclose()`` until an explicit ``connect()``: nothing reopens it implicitly."""
        self._connect_lock: asyncio.Lock | None = None
        self._active: dict[str, Job] = {}
        self._submitting: set[str] = set()
        self._running_pid: str | None = None
        self._last_event = 0.0
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
        return self._ws is not None

    def _closed_error(self) -> ClientClosed:
        return ClientClosed(f"the client for {self.url} is closed; call `await client.connect()` to reopen it")

    def _http_client(self) -> httpx.AsyncClient:
        if self._closing:  # a late background call after aclose() must not open a new pool
            raise self._closed_error()
        if self._http is None:
            from httpx_aiohttp import AiohttpTransport

            limits = httpx.Limits(max_connections=64, max_keepalive_connections=32)
            # One shared TLS context per setting: loading the CA bundle costs ~0.1 s of event-loop time,
            # which every client paid at connect (even for http://), stalling every other job's events.
            self._aio_transport = AiohttpTransport(verify=_tls_context(self._verify), limits=limits)
            self._http = httpx.AsyncClient(
                base_url=self.url,
                headers=self._headers,
                timeout=httpx.Timeout(self.timeout, connect=min(10.0, self.timeout)),
                transport=self._aio_transport,
            )
        return self._http

    async def _send(
        self,
        method: str,
        url: str,
        *,
        json_body: Any = None,
        params: Mapping[str, Any] | None = None,
        files: Any = None,
        data: Any = None,
    ) -> httpx.Response:
        """One HTTP exchange. Plain and JSON requests go straight to the aiohttp session under the
        httpx transport, which skips httpx's request layer (measured here: ~0.3 ms a request on
        loopback, and every job makes at least one); uploads and injected clients use httpx itself.
        Failures are raised as the httpx errors the transport would raise, so handling stays in one place."""
        http = self._http_client()
        transport = self._aio_transport
        if transport is None or files is not None or data is not None:
            request = http.build_request(method, url, json=json_body, params=params, files=files, data=data)
            streamed = await http.send(request, stream=True)
            try:
                content = b"".join([chunk async for chunk in self._bounded(streamed.aiter_raw(), streamed, method, url)])
            finally:
                await streamed.aclose()
            return httpx.Response(streamed.status_code, headers=streamed.headers, content=content)
        import aiohttp

        session = transport.client if isinstance(transport.client, aiohttp.ClientSession) else None
        if session is None:
            session = transport.client = transport.get_client()
        headers = {**self._headers, "User-Agent": "comfy_nb"}
        body = None
        if json_body is not None:
            headers["Content-Type"] = "application/json"
            try:
                body = json.dumps(json_body, allow_nan=False).encode()
            except ValueError:  # NaN/Infinity: not JSON, and the server would read them as numbers
                raise WorkflowError(
                    f"the request to {url} holds NaN or Infinity, which JSON cannot carry: use a finite number"
                ) from None
        timeout = aiohttp.ClientTimeout(total=self.timeout, sock_connect=min(10.0, self.timeout))
        query = {k: str(v) for k, v in params.items()} if params else None
        try:
            async with session.request(method, url, data=body, params=query, headers=headers, timeout=timeout) as r:
                chunks = [chunk async for chunk in self._bounded(r.content.iter_chunked(1 << 16), r, method, url)]
                return httpx.Response(r.status, headers=list(r.headers.items()), content=b"".join(chunks))
        except asyncio.TimeoutError as exc:
            raise httpx.ReadTimeout(f"no answer within {self.timeout} s") from exc
        except aiohttp.ClientError as exc:
            raise httpx.ConnectError(str(exc) or type(exc).__name__) from exc

    async def _bounded(self, chunks: Any, response: Any, method: str, url: str) -> AsyncGenerator[bytes, None]:
        """The body's chunks, stopping with ``ServerError`` once it passes ``max_download_size``: a
        response is never read whole into memory beyond that (a declared length is checked first)."""
        limit = self.max_download_size
        declared = response.headers.get("Content-Length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise _too_large(method, url, f"declares {int(declared)} bytes", limit)
        total = 0
        async for chunk in chunks:
            total += len(chunk)
            if total > limit:
                raise _too_large(method, url, f"sent more than {limit} bytes", limit)
            yield chunk

    async def connect(self) -> None:
        """Check the server answers and open the WebSocket (idempotent)."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
            self._ws_connected = asyncio.Event()
            self._ws_attempted = asyncio.Event()
            self._connect_lock = asyncio.Lock()
        assert self._connect_lock is not None and self._ws_attempted is not None
        self._closed = False  # an explicit connect() reopens a closed client
        async with self._connect_lock:
            if self._ws_task is not None or (not self._use_ws and self._supervisor is not None):
                return
            self._closing = False
            register_client(self)
            self._http_client()
            if self._use_ws:
                self._ws_task = asyncio.create_task(self._ws_main(), name="comfy_nb-ws")
                try:  # the first attempt either connects or fails; either ends the wait
                    await asyncio.wait_for(self._ws_attempted.wait(), min(10.0, self.timeout) + 1)
                except asyncio.TimeoutError:
                    pass
                if self._ws is None:
                    # No socket: find out whether the server is there at all (clear error if not).
                    try:
                        await self._request("GET", "/prompt", retries=0)
                    except BaseException:
                        # Not connected: stop the socket's retry loop so a later connect() starts
                        # afresh (socket *and* supervisor) instead of returning early.
                        task, self._ws_task = self._ws_task, None
                        task.cancel()
                        try:
                            await task
                        except (asyncio.CancelledError, Exception):
                            pass
                        if self._http is not None and self._external_http is None:
                            await self._http.aclose()  # no session left open by a failed connect
                            self._http = self._aio_transport = None
                        raise
                    log.warning(
                        "comfy_nb: WebSocket to %s not available (%s); following jobs by polling",
                        self._ws_url, self._ws_failed or "timed out",
                    )
            else:
                await self._request("GET", "/prompt")
            self._supervisor = asyncio.create_task(self._supervise(), name="comfy_nb-supervisor")

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
        for job in list(self._active.values()):
            job._close(self.url)
        self._active.clear()
        tasks = [t for t in (self._ws_task, self._supervisor, self._queue_refresh) if t is not None]
        tasks += list(self._background)
        for task in tasks:
            task.cancel()
        if self._ws is not None:
            await self._ws.close()
        for task in tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        self._ws_task = self._supervisor = self._queue_refresh = None
        self._ws = None
        if self._http is not None and self._external_http is None:
            await self._http.aclose()
            self._http = self._aio_transport = None

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

    async def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        files: Any = None,
        data: Any = None,
        retries: int | None = None,
        ok: tuple[int, ...] = (200,),
    ) -> httpx.Response:
        """One exchange with retries for connection errors, 5xx and 429; errors name the URL."""
        attempts = (self.max_retries if retries is None else retries) + 1
        url = f"{self.url}{path}"
        request = RequestInfo(method, url)
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                response = await self._send(method, url, json_body=json, params=params, files=files, data=data)
            except httpx.TimeoutException as exc:
                if _refused(exc):  # httpx-aiohttp reports a refused connection as a connect timeout
                    if last:
                        raise _connection_error(exc, method, url, request) from None
                    await asyncio.sleep(retry_delay(attempt))
                    continue
                if last:
                    raise ComfyTimeout(
                        f"{method} {url} timed out after {self.timeout} s ({type(exc).__name__}); the server "
                        "may be overloaded or a proxy is holding the request: raise `timeout=` or check the server",
                        request=request,
                    ) from None
                await asyncio.sleep(retry_delay(attempt))
                continue
            except httpx.TransportError as exc:
                if last:
                    raise _connection_error(exc, method, url, request) from None
                await asyncio.sleep(retry_delay(attempt))
                continue
            if response.status_code in ok:
                return response
            if is_retryable_status(response.status_code) and not last:
                await response.aread()
                await asyncio.sleep(retry_delay(attempt, response.headers))
                continue
            await response.aread()
            raise _status_error(response, method, url, request)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        response = await self._request("GET", path, params=params)
        return _json_body(response, "GET", f"{self.url}{path}")

    # ------------------------------------------------------------------ server info

    async def system_stats(self) -> dict[str, Any]:
        body = await self._get_json("/system_stats")
        if not isinstance(body, dict):
            raise ServerError(f"GET {self.url}/system_stats did not return a JSON object")
        return body

    async def object_info(self, refresh: bool = False) -> dict[str, Any]:
        """Every node definition (cached per client; ``refresh=True`` re-reads it)."""
        if self._object_info is None or refresh:
            body = await self._get_json("/object_info")
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
        response = await self._request("GET", f"/models/{folder}", ok=(200, 404))
        if response.status_code == 404:
            folders = await self._get_json("/models")
            names = ", ".join(map(str, folders)) if isinstance(folders, list) else "(no list)"
            raise ComfyError(f"the server has no model folder {folder!r}; it has: {names}")
        body = _json_body(response, "GET", f"{self.url}/models/{folder}")
        return [str(x) for x in body] if isinstance(body, list) else []

    async def capabilities(self, refresh: bool = False) -> ServerCapabilities:
        """Version, devices and what the server supports (previews, jobs API, targeted interrupt)."""
        if self._capabilities is not None and not refresh:
            return self._capabilities
        stats = await self.system_stats()
        features: dict[str, Any] = {}
        response = await self._request("GET", "/features", ok=(200, 404), retries=1)
        if response.status_code == 200:
            body = _json_body(response, "GET", f"{self.url}/features")
            features = body if isinstance(body, dict) else {}
        jobs = await self._request("GET", "/api/jobs", params={"limit": 1}, ok=(200, 400, 404, 405), retries=0)
        jobs_api = jobs.status_code == 200 and "jobs" in _safe_json(jobs)
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
        if prompt_id is not None and prompt_id in self._active:
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
        tracker = JobTracker(pid, prompt=graph, outputs_to_execute=partial_targets, view_url=self.view_url)
        job = Job(self, tracker, meta)
        if self._ws is None and self._ws_opening and self._ws_connected is not None:
            # A reconnect is under way: wait for it (briefly) rather than follow this job blind.
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._ws_connected.wait(), _WS_REOPEN_WAIT)
        if self._ws is None:  # no socket now: events may be missed, so the end is read from history
            tracker.gap = True
        self._active[pid] = job  # before the POST: its events may arrive before the response
        self._submitting.add(pid)  # not "vanished" while the POST (and its retries) is in flight
        # Deliveries wait for the POST's answer: a job that ends on the socket first must still carry
        # the answer's node_errors in its one terminal status.
        job._hold()
        try:
            accepted = await self._post_prompt(body, graph, pid, job)
        except BaseException:
            if self._active.get(pid) is job:
                del self._active[pid]
            raise
        finally:
            self._submitting.discard(pid)
        if accepted is not None and accepted.node_errors:
            errors = tuple(node_errors_to_list(accepted.node_errors, graph))
            tracker.set_node_errors(errors)
            log.warning(
                "comfy_nb: prompt %s was queued without its invalid outputs:\n%s",
                pid, "\n".join(f"  - {e.describe()}" for e in errors),
            )
        job._release()
        if job.done:
            self._forget(job)
        return job

    async def _post_prompt(
        self, body: dict[str, Any], graph: dict[str, Any], pid: str, job: Job
    ) -> PromptResponse | None:
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
                response = await self._send("POST", url, json_body=body)
            except httpx.TransportError as exc:
                failure = _connection_error(exc, "POST", url, request)
                if isinstance(exc, httpx.TimeoutException) and not _refused(exc):
                    await self._await_unanswered_submit(pid, job, request)
                    return None
            else:
                if response.status_code == 200:
                    parsed = _json_body(response, "POST", url)
                    if not isinstance(parsed, dict):
                        raise ServerError(
                            f"POST {url} answered 200 with an unexpected body (prompt {pid} may be queued)",
                            request=request, response=ResponseInfo.from_parts(200, response.content),
                        )
                    return PromptResponse.model_validate(parsed)
                if response.status_code == 400:
                    raise prompt_validation_error(
                        _safe_json(response), prompt=graph, request=request,
                        response=ResponseInfo.from_parts(400, response.content),
                    )
                failure = _status_error(response, "POST", url, request)
                if not is_retryable_status(response.status_code):
                    raise failure
            if last:
                raise failure
            await asyncio.sleep(retry_delay(attempt))
            if await self._server_knows(pid):
                return None  # the first attempt got through; its answer was lost
        raise failure

    async def _await_unanswered_submit(self, pid: str, job: Job, request: RequestInfo) -> None:
        """A POST /prompt timed out: it may be queued yet. Look for the id, never send it again;
        ``ComfyTimeout`` if it does not appear within another ``timeout``."""
        deadline = time.monotonic() + self.timeout
        attempt = 0
        while True:
            if job.heard or await self._server_knows(pid):
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
        return dict(self._active)

    async def _history(self, pid: str) -> HistoryEntry | None:
        """The prompt's history entry, None when it has none; ``ProtocolError`` for a body of the wrong shape."""
        body = await self._get_json(f"/history/{quote(pid, safe='')}")
        if not isinstance(body, dict):
            raise ProtocolError(f"GET {self.url}/history/{pid} did not return a JSON object")
        entry = body.get(pid)
        return None if entry is None else HistoryEntry.from_wire(entry, f"the history entry of {pid}")

    async def history(self, max_items: int | None = None, offset: int | None = None) -> dict[str, HistoryEntry]:
        """Finished prompts by id (entries of an unreadable shape are left out)."""
        params = {k: v for k, v in (("max_items", max_items), ("offset", offset)) if v is not None}
        body = await self._get_json("/history", params)
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
        snap = QueueSnapshot.from_wire(await self._get_json("/queue"))

        def entry(item: Any) -> QueueEntry:
            return QueueEntry(item.prompt_id, item.number, item.client_id, item.client_id == self.client_id)

        return QueueState(tuple(entry(i) for i in snap.running), tuple(entry(i) for i in snap.pending))

    async def status(self, prompt_id: str) -> JobStatus:
        """The status of any prompt, including ones submitted by other clients."""
        job = self._active.get(prompt_id)
        if job is not None:
            return job.status
        entry = await self._history(prompt_id)
        if entry is not None:
            tracker = JobTracker(prompt_id, prompt=entry.api_prompt, view_url=self.view_url)
            tracker.gap = True
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
        job = self._active.get(prompt_id)
        if job is not None:
            return job
        status = await self.status(prompt_id)
        tracker = JobTracker(prompt_id, view_url=self.view_url)
        tracker.status = status
        job = Job(self, tracker)
        job.foreign = True
        if not status.terminal:
            self._active[prompt_id] = job
        else:
            job._done.set()
        return job

    async def watch(self, prompt_id: str) -> AsyncGenerator[JobStatus, None]:
        """Each new status of a prompt until it ends."""
        job = self._active.get(prompt_id) or await self.track(prompt_id)
        async for status in job.updates():
            yield status

    # ------------------------------------------------------------------ cancelling and the queue

    async def cancel(self, prompt_id: str) -> bool:
        """Cancel one prompt: removed if pending, interrupted if running. Never touches another prompt.

        Returns True when this call cancelled it (False if it had already finished or is unknown).
        """
        job = self._active.get(prompt_id)
        if job is not None and job.done:
            return False
        caps = await self.capabilities()
        if caps.jobs_api:
            response = await self._request("POST", f"/api/jobs/{prompt_id}/cancel", ok=(200, 404, 409))
            if response.status_code == 200:
                return await self._confirm_cancelled(prompt_id, job)
            return False
        queue = await self.queue()
        if prompt_id in {e.prompt_id for e in queue.pending}:
            await self._request("POST", "/queue", json={"delete": [prompt_id]})
            queue = await self.queue()
            if prompt_id not in queue:
                if job is not None and await self._history(prompt_id) is None and job._tracker.cancel():
                    job._notify()
                    self._forget(job)
                    return True
                return job is None
        if any(e.prompt_id == prompt_id for e in queue.running):
            # The targeted form only hits this prompt; on older servers a bare interrupt is sent only
            # after seeing that this prompt is the one running (a small window remains; see README).
            body = {"prompt_id": prompt_id} if caps.targeted_interrupt else {}
            await self._request("POST", "/interrupt", json=body)
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
        await self._request("POST", "/queue", json={"delete": ids})
        after = await self.queue()
        removed = [pid for pid in ids if pid not in after]
        for pid in removed:
            job = self._active.get(pid)
            if job is not None and job._tracker.cancel():
                job._notify()
                self._forget(job)
        return len(removed)

    async def interrupt(self) -> None:
        """Global interrupt of whatever runs now (any client's prompt); prefer ``cancel(prompt_id)``."""
        await self._request("POST", "/interrupt", json={})

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
        return any(j.status.state is JobState.QUEUED for j in self._active.values())

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
            for job in list(self._active.values()):
                if job._tracker.set_queue_position(state.position(job.prompt_id)):
                    job._notify()
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
        data, filename, mime = _image_bytes(image, name)
        caps = self._capabilities
        if caps is not None and caps.max_upload_size and len(data) > caps.max_upload_size:
            raise ComfyError(
                f"{filename} is {len(data)} bytes, over the server's upload limit of {caps.max_upload_size} bytes "
                "(ComfyUI's --max-upload-size, in MB): send a smaller file or raise the limit"
            )
        form: dict[str, str] = {"type": type, "subfolder": subfolder, "overwrite": "true" if overwrite else "false"}
        path = "/upload/image"
        if mask_for is not None:
            ref = mask_for.view_params() if isinstance(mask_for, Output) else _ref_from_name(mask_for)
            form["original_ref"] = json.dumps(ref)
            path = "/upload/mask"
        response = await self._request(
            "POST", path, files={"image": (filename, data, mime)}, data=form, ok=(200,), retries=1
        )
        body = _json_body(response, "POST", f"{self.url}{path}")
        if not isinstance(body, dict) or "name" not in body:
            raise ServerError(f"POST {self.url}{path} did not return the stored name")
        sub = str(body.get("subfolder") or "")
        return f"{sub}/{body['name']}" if sub else str(body["name"])

    async def download(self, output: Output, *, preview: str | None = None) -> bytes:
        """The bytes of an output file (``preview="webp;60"`` asks the server for a small re-encode)."""
        if not output.is_file:
            return (output.text or "").encode("utf-8")
        params = output.view_params()
        if preview:
            params["preview"] = preview
        response = await self._request("GET", "/view", params=params)
        return response.content

    async def load_image(self, output: Output) -> Any:
        """An output as a ``PIL.Image`` (fully loaded)."""
        from PIL import Image, UnidentifiedImageError

        data = await self.download(output)
        try:
            image = Image.open(io.BytesIO(data))
            image.load()
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
            raise ServerError(
                f"{output.path!r} from {self.url} is not an image PIL can read ({type(exc).__name__}: {exc}); "
                "use client.download(output) for its bytes"
            ) from None
        return image

    async def save_output(self, output: Output, directory: str | os.PathLike[str]) -> pathlib.Path:
        """Save an output under ``directory`` (its subfolder kept); never writes outside it."""
        root = await asyncio.to_thread(pathlib.Path(directory).resolve)  # resolve reads the disk
        target = _safe_target(root, output)
        data = await self.download(output)

        def write() -> None:  # off the event loop: a large file must not stall every job's events
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)

        await asyncio.to_thread(write)
        return target

    # ------------------------------------------------------------------ the socket

    async def _ws_main(self) -> None:
        assert self._ws_connected is not None and self._ws_attempted is not None
        attempt = 0
        url = f"{self._ws_url}?clientId={self.client_id}"
        while not self._closing:
            self._ws_opening = True
            try:
                async with websockets.connect(
                    url,
                    additional_headers=self._headers or None,
                    max_size=None,
                    open_timeout=min(10.0, self.timeout),
                    close_timeout=_WS_CLOSE_TIMEOUT,
                    compression=None,
                    ping_interval=20,
                    ping_timeout=20,
                    ssl=self._ssl_context(),
                    user_agent_header="comfy_nb",
                    logger=_RedactingLogger(_WS_LOG, tuple(v for v in self._headers.values() if v)),
                ) as ws:
                    await ws.send(feature_flags_request())
                    self._ws = ws
                    self._ws_opening = False
                    self._ws_failed = None
                    reconnected = attempt > 0 or any(j._tracker.gap for j in self._active.values())
                    attempt = 0
                    self._ws_connected.set()
                    self._ws_attempted.set()
                    if reconnected:
                        self._task(self._reconcile("socket reconnected"))
                    async for frame in ws:
                        try:
                            self._on_frame(frame)
                        except Exception:  # nothing a server sends may stop the reader
                            log.warning("comfy_nb: could not apply a message from %s", self._ws_url, exc_info=True)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any socket failure: note it, back off, reconnect
                self._ws_failed = _describe_ws_failure(exc)
                log.debug("comfy_nb: WebSocket %s: %s", self._ws_url, self._ws_failed)
            finally:
                self._ws = None
                self._ws_opening = False
                self._ws_connected.clear()
                self._ws_attempted.set()
            if self.closing:
                return
            for job in self._active.values():
                job._tracker.gap = True
            if attempt:  # the first reconnect is immediate; then back off
                await asyncio.sleep(retry_delay(min(attempt - 1, 5), base=0.2, cap=5.0))
            attempt += 1

    def _ssl_context(self) -> ssl.SSLContext | None:
        return _tls_context(self._verify) if self._ws_url.startswith("wss://") else None

    def _on_frame(self, frame: str | bytes) -> None:
        if isinstance(frame, bytes):
            self._on_binary(frame)
            return
        try:
            msg = parse_message(frame)
        except ProtocolError as exc:
            log.debug("comfy_nb: ignored a malformed message: %s", exc)
            return
        if isinstance(msg, StatusMessage):
            self.queue_remaining = msg.queue_remaining
            self._schedule_queue_refresh()
            return
        if isinstance(msg, (UnknownMessage, FeatureFlagsMessage)):  # the server's flags change nothing we do
            return
        pid = msg.prompt_id
        if isinstance(msg, (ExecutionStartMessage, ProgressMessage, ProgressStateMessage)):
            self._running_pid = pid  # unlabelled previews (binary event 1) belong to this prompt
        elif isinstance(msg, ExecutingMessage):
            if pid is None:  # the replay a reconnect gets: it is about the running prompt
                if msg.node is None:
                    return  # an end marker must name its prompt: this one cannot be attributed
                pid = self._running_pid
            elif msg.node is None and pid == self._running_pid:
                self._running_pid = None
        job = self._active.get(pid) if pid is not None else None
        if job is None:
            return
        job.heard = True
        self._last_event = time.monotonic()
        finished = isinstance(msg, ExecutingMessage) and msg.node is None
        if finished and (job._tracker.gap or job._tracker.outputs_missing()):
            # Messages may have been missed (a lost socket), or the end marker came before any
            # `executed` (reordered): the outputs come from history, read once.
            self._task(self._finish_from_history(job))
            return
        if job._tracker.apply(msg):
            job._notify()
        if job.done:
            self._forget(job)

    def _on_binary(self, frame: bytes) -> None:
        try:
            decoded = decode_binary_frame(frame)
        except ProtocolError as exc:
            log.debug("comfy_nb: ignored a malformed binary frame: %s", exc)
            return
        if isinstance(decoded, PreviewImage):
            job = self._active.get(decoded.prompt_id or self._running_pid or "")
            if job is not None and job._tracker.apply_preview(decoded):
                self._last_event = time.monotonic()
                job._notify()
        elif isinstance(decoded, ProgressText):
            job = self._active.get(self._running_pid or "")
            if job is not None and job._tracker.apply_text(decoded):
                job._notify()

    def _forget(self, job: Job) -> None:
        self._active.pop(job.prompt_id, None)

    def _apply_history(self, job: Job, entry: HistoryEntry) -> bool:
        """Bring a job up to date from its history entry (the record of last resort); True if it ended."""
        if job._tracker.apply_history(entry):
            job._notify()
        if job.done:
            self._forget(job)
        return job.done

    async def _finish_from_history(self, job: Job) -> None:
        """A job ended while messages may have been missed: its outputs come from history."""
        for attempt in range(self.max_retries + 3):
            if job.done or self._closing:
                return
            try:
                entry = await self._history(job.prompt_id)
            except ComfyError as exc:  # a transient fault (unreachable, malformed): try again
                log.debug("comfy_nb: history of %s: %s", job.prompt_id, exc)
                entry = None
            if entry is not None and self._apply_history(job, entry):
                return
            await asyncio.sleep(retry_delay(attempt))
        # Still nothing after retries: the supervisor's reconciliation takes over.

    # ------------------------------------------------------------------ reconciliation

    async def _supervise(self) -> None:
        """Poll ``/queue`` and ``/history`` when the socket cannot be trusted to tell us everything."""
        while not self._closing:
            await asyncio.sleep(self.poll_interval)
            unfinished = [j for j in self._active.values() if not j.done]
            if not unfinished:
                continue
            quiet = time.monotonic() - self._last_event
            try:
                if self._ws is None:
                    await self._reconcile("no socket")
                elif any(j.foreign for j in unfinished) or quiet >= self.quiet_poll:
                    await self._reconcile("socket quiet")
            except Exception:  # a bug must not end the one loop that makes sure jobs end
                log.warning("comfy_nb: reconciliation with %s failed; retrying", self.url, exc_info=True)

    async def _reconcile(self, reason: str) -> None:
        # Jobs whose submit is still in flight are skipped: the server may not have them yet.
        unfinished = [j for j in self._active.values() if not j.done and j.prompt_id not in self._submitting]
        if not unfinished:
            return
        try:
            queue = await self.queue()
        except ComfyError as exc:
            log.debug("comfy_nb: reconcile (%s) could not read the queue: %s", reason, exc)
            now = time.monotonic()
            self._unreachable_since = self._unreachable_since or now
            if now - self._unreachable_since >= self.outage_timeout:
                for job in unfinished:  # nothing hangs forever: a server gone this long lost them
                    if job._tracker.fail(
                        f"lost contact with {self.url} for {now - self._unreachable_since:.0f} s while prompt "
                        f"{job.prompt_id} was unfinished ({exc.message.split('. ')[0]}); submit it again once "
                        "the server is back"
                    ):
                        job._notify()
                    self._forget(job)
            return
        self._unreachable_since = None
        running = {e.prompt_id for e in queue.running}
        pending = {e.prompt_id for e in queue.pending}
        missed = False
        for job in unfinished:
            pid = job.prompt_id
            if pid in running:
                job.vanished = 0
                if job.status.state is JobState.QUEUED and job._tracker.apply(ExecutionStartMessage(prompt_id=pid)):
                    job._notify()
                continue
            if pid in pending:
                job.vanished = 0
                if job._tracker.set_queue_position(queue.position(pid)):
                    job._notify()
                continue
            unreadable = False
            try:
                entry = await self._history(pid)
            except ProtocolError:  # the server answered, but nothing usable
                entry, unreadable = None, True
            except ComfyError:
                continue
            if job.done:  # it ended on the socket while we read: nothing to do
                continue
            if entry is not None or unreadable:
                missed = missed or (
                    entry is not None and self._ws is not None and not job._tracker.gap and not job.foreign
                )
                if entry is not None and self._apply_history(job, entry):
                    continue
                # An entry is written when a prompt ends; one we cannot read an outcome from, seen
                # three times, is not a write in flight: the job must still end.
                reason = (
                    f"prompt {pid} is in the history of {self.url}, but its entry has no outcome this client "
                    "can read (a proxy or a custom server changed it?); check the server's UI"
                )
                limit = 3
            else:
                reason = (
                    f"prompt {pid} vanished from the queue and history of {self.url}: the server was probably "
                    "restarted (it keeps both in memory), or another client deleted it. Submit it again."
                )
                limit = 2  # seen missing twice: not a history write in flight
            job.vanished += 1
            if job.vanished >= limit:
                if job._tracker.fail(reason):
                    job._notify()
                self._forget(job)
        if missed and self._ws is not None:
            # An open socket missed a whole prompt: it has gone deaf (e.g. a second connection with our
            # clientId came and went, which deregisters us server-side). A new connection fixes it.
            log.info("comfy_nb: the WebSocket to %s missed a whole prompt; reconnecting", self._ws_url)
            await self._ws.close()


# ---------------------------------------------------------------------- helpers


def _tls_context(verify: bool | str | ssl.SSLContext) -> ssl.SSLContext:
    """The TLS context for a ``verify`` setting, built once per process and shared by every client."""
    if isinstance(verify, ssl.SSLContext):
        return verify
    if isinstance(verify, str):
        if not os.path.isfile(verify):
            raise ConfigError(f"verify={verify!r}: no such CA bundle file (give a .pem path, True or False)")
        return _cached_tls_context(verify)
    return _cached_tls_context(bool(verify))


@functools.lru_cache(maxsize=8)
def _cached_tls_context(verify: bool | str) -> ssl.SSLContext:
    if verify is False:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    return ssl.create_default_context(cafile=verify if isinstance(verify, str) else None)


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


_WS_LOG = logging.getLogger("websockets.client")
_WS_REOPEN_WAIT = 1.0
"""Seconds a submit waits for a socket that is being (re)opened before following its job without one."""
_WS_CLOSE_TIMEOUT = 1.0
"""Seconds ``aclose()`` waits for the server to finish the socket's closing handshake (a server that
never closes its end would otherwise hold every close, and interpreter exit, for 10 s)."""


class _RedactingLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """The socket library's logger, minus our header values: at DEBUG, websockets logs every handshake
    header (``> Authorization: Bearer ...``), which would put the token in the user's logs."""

    def __init__(self, logger: logging.Logger, secrets: tuple[str, ...]) -> None:
        super().__init__(logger, None)
        self._secrets = secrets

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if self._secrets and args and self.isEnabledFor(level):
            args = tuple(
                "***" if isinstance(a, str) and any(s in a for s in self._secrets) else a for a in args
            )
        super().log(level, msg, *args, **kwargs)


def _refused(exc: BaseException) -> bool:
    """True when a 'timeout' was really a refused or reset connection (no server there) or a failed
    TLS handshake (reported by ``_connection_error`` as a TLS error, not as a slow server)."""
    cause = exc.__cause__ or exc.__context__
    while cause is not None:
        if isinstance(cause, (ConnectionRefusedError, ConnectionResetError, ssl.SSLError)):
            return True
        if type(cause).__name__ in ("ClientConnectorError", "ServerDisconnectedError", "ClientOSError"):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


def _describe_ws_failure(exc: BaseException) -> str:
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if status == 403:
        return "403 Forbidden on the WebSocket upgrade (an Origin or auth check refused it)"
    if status in (401, 407):
        return f"{status} on the WebSocket upgrade: check the token or password"
    if status is not None:
        return f"HTTP {status} on the WebSocket upgrade"
    return f"{type(exc).__name__}: {exc}"


def _connection_error(exc: BaseException, method: str, url: str, request: RequestInfo) -> ComfyConnectionError:
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLError):
            return ComfyConnectionError(
                f"TLS handshake with {url} failed ({cause.__class__.__name__}: {cause}). For a self-signed "
                "certificate pass verify='path/to/ca.pem' (or verify=False on a trusted network)",
                request=request,
            )
        cause = cause.__cause__ or cause.__context__
    what = "connection refused" if _refused(exc) else f"{type(exc).__name__}: {exc or 'connection failed'}"
    return ComfyConnectionError(
        f"cannot reach ComfyUI at {url} ({what}). Check that the "
        "server is running, that the host and port are right (ComfyUI listens on 8188 by default) and that "
        "no proxy or firewall is in the way",
        request=request,
    )


def _status_error(response: httpx.Response, method: str, url: str, request: RequestInfo) -> ServerError:
    info = ResponseInfo.from_parts(response.status_code, response.content)
    hint = ""
    if response.status_code == 401 or (response.status_code == 403 and "/view" not in url):
        hint = ": check the token, user name and password (or the proxy's auth)"
    elif response.status_code == 403:
        hint = ": the server refused the file's folder (a subfolder outside its input/output/temp folders)"
    elif response.status_code == 404:
        hint = ": is the URL's base path right? (a proxy may serve ComfyUI under a prefix)"
    elif response.status_code == 413:
        hint = f": the body is over the server's upload limit ({info.body.strip()})"
    return ServerError(f"{method} {url} answered {response.status_code}{hint}", request=request, response=info)


def _too_large(method: str, url: str, what: str, limit: int) -> ServerError:
    return ServerError(
        f"the answer to {method} {url} {what}, over this client's limit of {limit} bytes: raise it with "
        "AsyncComfyClient(..., max_download_size=...) if the file is expected to be that large",
        request=RequestInfo(method, url),
    )


def _json_body(response: httpx.Response, method: str, url: str) -> Any:
    try:
        return response.json()
    except ValueError:
        raise ServerError(
            f"{method} {url} did not answer JSON (is this a ComfyUI server?)",
            request=RequestInfo(method, url),
            response=ResponseInfo.from_parts(response.status_code, response.content),
        ) from None


def _safe_json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return {}


def _ref_from_name(name: str) -> dict[str, str]:
    sub, _, base = name.rpartition("/")
    return {"filename": base, "subfolder": sub, "type": "input"}


def _safe_target(root: pathlib.Path, output: Output) -> pathlib.Path:
    parts = [p for p in output.subfolder.replace("\\", "/").split("/") if p not in ("", ".")]
    name = os.path.basename(output.filename.replace("\\", "/"))
    if not name or name in (".", "..") or ".." in parts:
        raise ComfyError(f"refusing to save {output.path!r}: its name would leave {root}")
    target = root.joinpath(*parts, name).resolve()
    if root != target and root not in target.parents:
        raise ComfyError(f"refusing to save {output.path!r}: its name would leave {root}")
    return target


def _image_bytes(image: Any, name: str | None) -> tuple[bytes, str, str]:
    """Bytes, a file name and a MIME type for anything that can be uploaded."""
    if isinstance(image, (str, os.PathLike)):
        path = pathlib.Path(image)
        if not path.is_file():
            raise ComfyError(f"cannot upload {str(path)!r}: no such file")
        return path.read_bytes(), name or path.name, _mime_for(path.name)
    if isinstance(image, (bytes, bytearray, memoryview)):
        return bytes(image), name or "upload.png", _mime_for(name or "upload.png")
    if type(image).__module__.startswith("numpy"):
        import numpy as np
        from PIL import Image

        array = np.asarray(image)
        if array.dtype != np.uint8:
            scale = 255.0 if array.size and float(array.max()) <= 1.0 else 1.0
            array = np.clip(array * scale, 0, 255).astype(np.uint8)
        image = Image.fromarray(array)
    if hasattr(image, "save") and hasattr(image, "mode"):
        buf = io.BytesIO()
        image.save(buf, format="PNG")
        return buf.getvalue(), name or "upload.png", "image/png"
    raise ComfyError(f"cannot upload a {type(image).__name__}: give a path, bytes, a PIL image or a NumPy array")


def _mime_for(filename: str) -> str:
    import mimetypes

    return mimetypes.guess_type(filename)[0] or "application/octet-stream"
