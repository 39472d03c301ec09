"""A session with a Comfy API v2 endpoint (``comfy-api-proxy``, Comfy Cloud's v2): jobs, SSE, assets.

Poll-first: ``GET /api/v2/jobs/{id}`` is the truth and the event stream only makes waiting live.
A terminal state is believed only once it fits what this session has seen: ``comfy-api-proxy``
0.1.6 reports a job that finishes between its ``/history`` and ``/queue`` reads as ``expired``
and the next poll says ``succeeded`` (issue 16), so a doubtful terminal state is read again
until it settles. Submits carry an ``Idempotency-Key`` (the client-made id) and the same id in
``metadata``, so a retried submit whose first answer was lost finds its job instead of running
it twice. The API key is sent only to the endpoint's own origin, never to a redirect or a
storage host, and never appears in reprs, logs or errors.
"""

from __future__ import annotations

import asyncio
import mimetypes
import time
import uuid
from collections.abc import AsyncGenerator, Callable, Mapping
from typing import Any, Literal, final
from urllib.parse import urljoin, urlsplit

import blake3
import httpx

from ..errors import (
    ComfyConnectionError,
    ComfyTimeout,
    ExecutionError,
    JobCancelled,
    JobLost,
    PromptValidationError,
    ProtocolError,
    RequestInfo,
    ResponseInfo,
    ServerError,
)
from ..protocol import (
    SSEParser,
    V2Asset,
    V2Event,
    V2Job,
    V2Output,
    V2StatusEvent,
    node_errors_to_list,
    parse_v2_error,
    parse_v2_event,
    parse_v2_job,
)
from ._retry import is_retryable_status, retry_delay
from ._transport import http_stack, read_bounded, transport_error
from ._v2_belief import Seen

__all__ = ["V2Session", "blake3_hash"]

_METADATA_PREFIX = "comfy_nb:"
_MAX_REDIRECTS = 5
_VALIDATION_CODES = frozenset({"invalid_workflow", "workflow_format_ui", "missing_asset"})


def blake3_hash(data: bytes) -> str:
    """The v2 content hash, ``blake3:<hex>`` (what ``from-hash`` and ``by-hash`` look up)."""
    return "blake3:" + blake3.blake3(data).hexdigest()


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


@final
class V2Session:
    """A Comfy API v2 endpoint, over httpx's public API.

    ``V2Session(url, *, api_key=None, key_header="authorization", timeout=30.0, max_retries=3,
    poll_interval=0.5, settle_time=10.0, http_client=None, verify=True)``

    * ``api_key`` goes as ``Authorization: Bearer`` (``key_header="authorization"``, the v2 and
      ``comfy-api-proxy --token`` form) or ``X-API-Key`` (``key_header="x-api-key"``), only to ``url``'s
      origin.
    * ``settle_time``: how long a doubtful terminal state (``expired`` for a job seen alive, a state
      right after the last progress, one that contradicts the outputs or the absence of a cancel) is
      re-read before it is believed.
    """

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        key_header: Literal["authorization", "x-api-key"] = "authorization",
        timeout: float = 30.0,
        max_retries: int = 3,
        poll_interval: float = 0.5,
        settle_time: float = 10.0,
        http_client: httpx.AsyncClient | None = None,
        verify: Any = True,
    ) -> None:
        self.url = url.rstrip("/")
        self._origin = _origin(self.url)
        self._key_headers: dict[str, str] = {}
        if api_key:
            if key_header == "x-api-key":
                self._key_headers["X-API-Key"] = api_key
            else:
                self._key_headers["Authorization"] = f"Bearer {api_key}"
        self.timeout = float(timeout)
        self.max_retries = int(max_retries)
        self.poll_interval = float(poll_interval)
        self.settle_time = float(settle_time)
        self._own_http = http_client is None
        self._http = http_client or http_stack(self.timeout, verify)
        self._seen: dict[str, Seen] = {}
        self._labels = True  # label jobs with the client-made id (off once the endpoint refuses labels)

    def __repr__(self) -> str:
        auth = " auth=***" if self._key_headers else ""
        return f"V2Session(url={self.url!r}{auth})"

    async def __aenter__(self) -> V2Session:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._own_http:
            await self._http.aclose()

    # ------------------------------------------------------------------ HTTP

    def _headers(self, url: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        headers = dict(extra or {})
        if _origin(url) == self._origin:  # the key never leaves the endpoint's origin
            headers.update(self._key_headers)
        return headers

    def _abs(self, path_or_url: str) -> str:
        return path_or_url if "://" in path_or_url else f"{self.url}{path_or_url}"

    async def _request(
        self,
        method: str,
        path_or_url: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        files: Any = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        ok: tuple[int, ...] = (200,),
        retries: int | None = None,
        max_bytes: int | None = None,
    ) -> httpx.Response:
        """One exchange, retried on connection errors, 5xx and 429; errors name the URL, never a header.
        With ``max_bytes``, a longer body raises ``ServerError`` before it is read whole."""
        url = self._abs(path_or_url)
        request = RequestInfo(method, url)
        attempts = (self.max_retries if retries is None else retries) + 1
        for attempt in range(attempts):
            last = attempt == attempts - 1
            answer: Mapping[str, str] | None = None  # its Retry-After paces the next attempt
            try:
                response = await self._send(
                    method, url, max_bytes, json=json, params=params, files=files, data=data,
                    headers=self._headers(url, headers),
                )
            except httpx.TransportError as exc:
                if last:  # the client's one mapping: a refused connection reported as a timeout is refused
                    raise transport_error(exc, method, url, self.timeout) from None
            else:
                if response.status_code in ok:
                    return response
                if not (is_retryable_status(response.status_code) and not last):
                    raise self._status_error(response, request)
                answer = response.headers
            await asyncio.sleep(retry_delay(attempt, answer))
        raise AssertionError("unreachable")  # pragma: no cover

    async def _send(self, method: str, url: str, max_bytes: int | None, **kwargs: Any) -> httpx.Response:
        if max_bytes is None:
            return await self._http.request(method, url, **kwargs)
        streamed = await self._http.send(self._http.build_request(method, url, **kwargs), stream=True)
        try:
            body = await read_bounded(streamed, method, url, max_bytes)
        finally:
            await streamed.aclose()
        kept = [(k, v) for k, v in streamed.headers.items() if k.lower() not in ("content-encoding", "content-length")]
        return httpx.Response(streamed.status_code, headers=kept, content=body, request=streamed.request)

    def _status_error(self, response: httpx.Response, request: RequestInfo) -> ServerError:
        info = ResponseInfo.from_parts(response.status_code, response.content)
        err = parse_v2_error(_json_or_none(response))
        what = f"{err.code}: {err.message}" if err else (info.body[:200] or "no body")
        hint = ""
        if response.status_code in (401, 403) and err is not None and err.code in ("unauthorized", "forbidden"):
            hint = " (check the API key for this endpoint)"
        return ServerError(f"{request} answered {response.status_code} ({what}){hint}", request=request, response=info)

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self._request(method, path, **kwargs)
        body = _json_or_none(response)
        if body is None:
            raise ServerError(
                f"{method} {self._abs(path)} did not answer JSON",
                request=RequestInfo(method, self._abs(path)),
                response=ResponseInfo.from_parts(response.status_code, response.content),
            )
        return body

    # ------------------------------------------------------------------ jobs

    async def submit(
        self,
        workflow: Mapping[str, Any],
        *,
        client_id: str | None = None,
        extra_data: Mapping[str, Any] | None = None,
        priority: int | None = None,
    ) -> V2Job:
        """``POST /api/v2/jobs`` (201). Retries reuse the ``Idempotency-Key``; a reuse refusal adopts the job."""
        key = client_id or str(uuid.uuid4())
        body: dict[str, Any] = {"workflow": dict(workflow)}
        if self._labels:
            body["metadata"] = _METADATA_PREFIX + key
        if extra_data:
            body["extra_data"] = dict(extra_data)
        if priority is not None:
            body["priority"] = priority
        url = f"{self.url}/api/v2/jobs"
        request = RequestInfo("POST", url)
        response = await self._request(
            "POST", url, json=body, headers={"Idempotency-Key": key}, ok=(200, 201, 422, 400)
        )
        payload = _json_or_none(response)
        if response.status_code in (200, 201):
            job = parse_v2_job(payload)
            self._seen.setdefault(job.id, Seen()).statuses.add(job.status)
            return job
        err = parse_v2_error(payload)
        info = ResponseInfo.from_parts(response.status_code, response.content)
        if self._labels and err is not None and _refuses_label(err.code, err.message):
            # Comfy Cloud refuses labels, later v2 wants a map: submit unlabelled (no lost-answer recovery)
            self._labels = False
            return await self.submit(workflow, client_id=key, extra_data=extra_data, priority=priority)
        if err is not None and err.code == "idempotency_key_reuse":
            found = await self.find(key)
            if found is not None:
                return found
            raise ServerError(
                f"{request}: the endpoint had already taken Idempotency-Key {key} but lists no job with it; the "
                "first attempt's outcome is unknown (it may still run). List jobs before submitting again.",
                request=request,
                response=info,
            )
        if err is not None and err.code in _VALIDATION_CODES:
            node_errors = (err.details or {}).get("node_errors") or {}
            errors = node_errors_to_list(node_errors, dict(workflow)) if isinstance(node_errors, dict) else []
            raise PromptValidationError(
                f"the v2 endpoint refused the workflow ({err.code}): {err.message}",
                error_type=err.code,
                errors=errors,
                request=request,
                response=info,
            )
        raise self._status_error(response, request)

    async def find(self, client_id: str) -> V2Job | None:
        """The job submitted with ``client_id`` (matched on its ``metadata``), from the newest 100."""
        return next((job for job in await self.jobs() if job.metadata == _METADATA_PREFIX + client_id), None)

    async def jobs(self, statuses: tuple[str, ...] = (), *, limit: int = 100) -> list[V2Job]:
        """``GET /api/v2/jobs``: the newest jobs (only those in ``statuses`` when given)."""
        params: dict[str, Any] = {"limit": limit}
        if statuses:
            params["status"] = ",".join(statuses)
        body = await self._json("GET", "/api/v2/jobs", params=params)
        items = body.get("jobs") if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise ProtocolError(f"GET {self.url}/api/v2/jobs did not answer a job list")
        return [parse_v2_job(item) for item in items]

    async def asset(self, asset_id: str) -> V2Asset:
        """``GET /api/v2/assets/{id}``: the asset with a fresh link to its bytes."""
        return _asset(await self._request("GET", f"/api/v2/assets/{asset_id}"))

    async def get(self, job_id: str) -> V2Job:
        """One authoritative read of the job (``GET /api/v2/jobs/{id}``)."""
        job = parse_v2_job(await self._json("GET", f"/api/v2/jobs/{job_id}"))
        self._seen.setdefault(job_id, Seen()).note_job(job)
        return job

    async def cancel(self, job_id: str) -> V2Job:
        """``POST /api/v2/jobs/{id}/cancel``: a running job answers ``canceling`` until the interrupt lands."""
        self._seen.setdefault(job_id, Seen()).cancel_requested = True
        return parse_v2_job(await self._json("POST", f"/api/v2/jobs/{job_id}/cancel"))

    async def events(self, job_id: str) -> AsyncGenerator[V2Event, None]:
        """The job's live event stream, typed; ends when the server closes it (live only, no resume)."""
        url = f"{self.url}/api/v2/jobs/{job_id}/events"
        request = RequestInfo("GET", url)
        timeout = httpx.Timeout(self.timeout, read=None)
        headers = self._headers(url, {"Accept": "text/event-stream"})
        try:
            async with self._http.stream("GET", url, headers=headers, timeout=timeout) as response:
                if response.status_code != 200:
                    await response.aread()
                    raise self._status_error(response, request)
                parser = SSEParser()
                async for chunk in response.aiter_raw():
                    for message in parser.feed(chunk):
                        event = parse_v2_event(message)
                        if event is not None:
                            self._seen.setdefault(job_id, Seen()).note_event(event)
                            yield event
        except httpx.TransportError as exc:
            raise ComfyConnectionError(f"the event stream {url} broke ({type(exc).__name__})", request=request) from None

    # ------------------------------------------------------------------ waiting

    async def settle(self, job: V2Job, deadline: float | None = None) -> V2Job:
        """Re-read a doubtful terminal state until it fits, turns live again, or ``settle_time`` passes;
        a state that needs only one agreeing re-read is believed after it."""
        started = time.monotonic()
        reads = 0
        while True:
            doubt = (self._seen.get(job.id) or Seen()).doubt(job, self.settle_time)
            if doubt is None or (doubt[1] and reads > 0):
                break
            now = time.monotonic()
            if now - started >= self.settle_time or (deadline is not None and now >= deadline):
                break
            if reads:  # the first re-read goes at once: it is a fresh pair of reads behind the proxy
                await asyncio.sleep(min(0.05 * 2 ** (reads - 1), 1.0))
            reads += 1
            job = await self.get(job.id)
            if not job.terminal:
                return job
        if job.status == "expired" and self._seen.get(job.id, Seen()).cancel_requested:
            return job.model_copy(update={"status": "canceled"})
        return job

    async def wait(
        self,
        job_id: str,
        *,
        timeout: float | None = None,
        stream: bool | None = None,
        on_event: Callable[[V2Event], Any] | None = None,
        on_job: Callable[[V2Job], Any] | None = None,
    ) -> V2Job:
        """Wait for the job's believed terminal state. Polls as the truth (at once, then after 0.05 s,
        doubling up to ``poll_interval``); ``stream`` (default: when ``on_event`` is given) follows the
        event stream of a job still under way too, for live progress and a prompt wake-up. ``on_job``
        sees every polled state that is not terminal (a job that turned live again included).

        Raises ``ComfyTimeout`` when ``timeout`` passes first.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        wake = asyncio.Event()
        streamer: asyncio.Task[None] | None = None
        polls = 0
        try:
            while True:
                wake.clear()  # a wake-up that comes during the read below still cuts the wait after it
                job = await self.get(job_id)
                if job.terminal:
                    job = await self.settle(job, deadline)
                    if job.terminal:
                        self._seen.pop(job_id, None)  # believed: what was seen is no longer needed
                        return job
                if on_job is not None:
                    on_job(job)
                if streamer is None and (stream or (stream is None and on_event is not None)):
                    streamer = asyncio.ensure_future(self._pump(job_id, wake, on_event))  # only for a live job
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise ComfyTimeout(
                        f"job {job_id} at {self.url} did not finish within {timeout} s (last status {job.status})"
                    )
                interval = min(self.poll_interval, 0.05 * 2**polls)  # quick re-reads first, then poll_interval
                polls += 1
                try:
                    await asyncio.wait_for(wake.wait(), min(interval, remaining) if remaining else interval)
                except asyncio.TimeoutError:
                    pass
        finally:
            if streamer is not None:
                streamer.cancel()
                await asyncio.gather(streamer, return_exceptions=True)

    async def _pump(self, job_id: str, wake: asyncio.Event, on_event: Callable[[V2Event], Any] | None) -> None:
        """Feed live events to ``on_event``; a terminal ``status`` only wakes the poller (which decides)."""
        try:
            async for event in self.events(job_id):
                if on_event is not None:
                    on_event(event)
                if isinstance(event, V2StatusEvent) and event.terminal:
                    wake.set()
        except (ComfyConnectionError, ServerError, ProtocolError):
            pass  # the stream is an enhancement: polling carries on
        wake.set()

    async def result(self, job_id: str, *, timeout: float | None = None) -> tuple[V2Output, ...]:
        """Wait and return the outputs; ``ExecutionError`` / ``JobCancelled`` / ``JobLost`` otherwise."""
        job = await self.wait(job_id, timeout=timeout)
        if job.status == "succeeded":
            return job.outputs
        if job.status == "canceled":
            raise JobCancelled(job_id)
        if job.status == "failed":
            err = job.error
            raise ExecutionError(
                job_id,
                node_id=err.node_id if err else None,
                node_type=err.class_type if err else None,
                exception_type=err.code if err else "unknown",
                exception_message=err.message if err else "the job failed without an error message",
            )
        raise JobLost(
            job_id, f"job {job_id} stayed expired at {self.url} for {self.settle_time} s of re-reads; submit it again"
        )

    # ------------------------------------------------------------------ assets

    async def upload(self, data: bytes, name: str, *, content_type: str | None = None) -> V2Asset:
        """An input asset by content hash: ``from-hash`` first, the bytes only on a miss."""
        digest = blake3_hash(data)
        response = await self._request(
            "POST", "/api/v2/assets/from-hash", json={"hash": digest}, ok=(200, 201, 404)
        )
        if response.status_code in (200, 201):
            return _asset(response)
        ctype = content_type or mimetypes.guess_type(name)[0] or "application/octet-stream"
        response = await self._request(
            "POST",
            "/api/v2/assets",
            files={"file": (name, data, ctype)},
            data={"file_path": name, "expected_hash": digest, "content_type": ctype},
            ok=(200, 201),
        )
        return _asset(response)

    async def has_hash(self, digest: str) -> bool:
        """``HEAD /api/v2/assets/by-hash/{hash}``: does the endpoint hold these bytes already?"""
        response = await self._request("HEAD", f"/api/v2/assets/by-hash/{digest}", ok=(200, 404))
        return response.status_code == 200

    async def download(self, output: V2Output | V2Asset | str, *, max_bytes: int | None = None) -> bytes:
        """An output's bytes. Follows the link it carries, and redirects without the key off-origin;
        a body over ``max_bytes`` raises ``ServerError``."""
        url = self._abs(output if isinstance(output, str) else output.url)
        for _ in range(_MAX_REDIRECTS + 1):
            response = await self._request("GET", url, ok=(200, 206, 301, 302, 303, 307, 308), max_bytes=max_bytes)
            if response.status_code in (200, 206):
                return response.content
            location = response.headers.get("location")
            if not location:
                raise ServerError(f"GET {url} redirected without a Location", request=RequestInfo("GET", url))
            url = urljoin(url, location)
        raise ServerError(f"GET {url}: more than {_MAX_REDIRECTS} redirects", request=RequestInfo("GET", url))


def _refuses_label(code: str, message: str) -> bool:
    return code in ("metadata_invalid", "metadata_not_supported") or (
        code == "invalid_request" and "metadata" in message.lower()
    )


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _asset(response: httpx.Response) -> V2Asset:
    try:
        return V2Asset.model_validate(response.json())
    except ValueError as exc:
        raise ProtocolError(f"the asset body from {response.request.url} does not fit the v2 contract") from exc
