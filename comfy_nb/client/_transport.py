"""One HTTP exchange with a ComfyUI server: httpx's API over the httpx-aiohttp transport, retries by
the ``_retry`` policy, and the one place where transport failures become ``comfy_nb.errors``.

Every request (JSON, uploads, downloads) goes through ``httpx.AsyncClient.send``; an injected
``http_client=`` is used as given. Bodies are streamed and stopped at ``max_download_size``.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import ssl
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from ..errors import (
    ClientClosed,
    ComfyConnectionError,
    ComfyTimeout,
    ConfigError,
    RequestInfo,
    ResponseInfo,
    ServerError,
    WorkflowError,
)
from ._retry import is_retryable_status, retry_delay

__all__ = ["Reply", "Transport", "json_body", "safe_json", "status_error", "tls_context", "transport_error"]


@dataclass(frozen=True)
class Reply:
    """An answer read whole: status, headers and the (decoded) body."""

    status_code: int
    headers: httpx.Headers
    content: bytes

    def json(self) -> Any:
        """The body as JSON (``ValueError`` when it is not)."""
        return json.loads(self.content)


class Transport:
    """The connection pool to one server and the rules for a single request to it."""

    def __init__(
        self,
        base_url: str,
        headers: dict[str, str],
        *,
        timeout: float,
        max_retries: int,
        verify: bool | str | ssl.SSLContext,
        max_download_size: int,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self.base_url = base_url
        self.headers = headers
        self.timeout = timeout
        self.max_retries = max_retries
        self.max_download_size = max_download_size
        self._verify = verify
        self._external = http_client
        self._http: httpx.AsyncClient | None = http_client
        self.closed = False
        """Set by ``aclose()``: a late background request must not open a new pool."""

    @property
    def pool_open(self) -> bool:
        """True while this transport holds a connection pool it opened itself (or was given one)."""
        return self._http is not None

    def closed_error(self) -> ClientClosed:
        return ClientClosed(f"the client for {self.base_url} is closed; call `await client.connect()` to reopen it")

    def open(self) -> httpx.AsyncClient:
        """The ``httpx.AsyncClient`` (made on first use over the aiohttp transport, its public constructor)."""
        if self.closed:
            raise self.closed_error()
        if self._http is None:
            from httpx_aiohttp import AiohttpTransport

            limits = httpx.Limits(max_connections=64, max_keepalive_connections=32)
            # One shared TLS context per setting: loading the CA bundle costs ~0.1 s of event-loop time,
            # which every client paid at connect (even for http://), stalling every other job's events.
            self._http = httpx.AsyncClient(
                base_url=self.base_url,
                headers={**self.headers, "User-Agent": "comfy_nb"},
                timeout=httpx.Timeout(self.timeout, connect=min(10.0, self.timeout)),
                transport=AiohttpTransport(verify=tls_context(self._verify), limits=limits),
            )
        return self._http

    async def aclose(self) -> None:
        """Close the pool this transport opened (an injected client is its owner's to close)."""
        self.closed = True
        await self.release()

    async def release(self) -> None:
        """Drop the pool without marking the transport closed (a failed connect leaves nothing open)."""
        http, self._http = self._http, self._external
        if http is not None and http is not self._external:
            await http.aclose()

    async def exchange(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: Mapping[str, Any] | None = None,
        files: Any = None,
        data: Any = None,
    ) -> Reply:
        """One request and its whole (bounded, decoded) body, any status; ``ComfyTimeout`` when no answer came
        in time, ``ComfyConnectionError`` when the server could not be reached."""
        http = self.open()
        url = f"{self.base_url}{path}"
        content = None
        headers = None
        if json_body is not None:
            try:
                content = json.dumps(json_body, allow_nan=False).encode()
            except ValueError:  # NaN/Infinity: not JSON, and the server would read them as numbers
                raise WorkflowError(
                    f"the request to {url} holds NaN or Infinity, which JSON cannot carry: use a finite number"
                ) from None
            headers = {"Content-Type": "application/json"}
        request = http.build_request(
            method, _parsed_url(url), content=content, headers=headers, params=params, files=files, data=data
        )
        try:
            streamed = await http.send(request, stream=True)
            try:
                body = await self._read_bounded(streamed, method, url)
            finally:
                await streamed.aclose()
        except httpx.TransportError as exc:
            raise transport_error(exc, method, url, self.timeout) from None
        return Reply(streamed.status_code, streamed.headers, body)

    async def _read_bounded(self, response: httpx.Response, method: str, url: str) -> bytes:
        """The (decoded) body, stopping with ``ServerError`` once it passes ``max_download_size``: a
        response is never read whole into memory beyond that (a declared length is checked first)."""
        limit = self.max_download_size
        declared = response.headers.get("Content-Length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise _too_large(method, url, f"declares {int(declared)} bytes", limit)
        chunks: list[bytes] = []
        total = 0
        async for chunk in response.aiter_bytes():  # decoded: the limit holds for what is kept
            total += len(chunk)
            if total > limit:
                raise _too_large(method, url, f"sent more than {limit} bytes", limit)
            chunks.append(chunk)
        return b"".join(chunks)

    async def request(
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
    ) -> Reply:
        """One exchange with retries for connection errors, timeouts, 5xx and 429; errors name the URL."""
        attempts = (self.max_retries if retries is None else retries) + 1
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                response = await self.exchange(method, path, json_body=json, params=params, files=files, data=data)
            except ClientClosed:
                raise
            except ComfyConnectionError:
                if last:
                    raise
                await asyncio.sleep(retry_delay(attempt))
                continue
            if response.status_code in ok:
                return response
            if is_retryable_status(response.status_code) and not last:
                await asyncio.sleep(retry_delay(attempt, response.headers))
                continue
            raise status_error(response, method, f"{self.base_url}{path}")
        raise AssertionError("unreachable")  # pragma: no cover

    async def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        response = await self.request("GET", path, params=params)
        return json_body(response, "GET", f"{self.base_url}{path}")


# ---------------------------------------------------------------------- the one error mapping


def transport_error(exc: httpx.TransportError, method: str, url: str, timeout: float) -> ComfyConnectionError:
    """What an httpx transport failure means for the user.

    httpx-aiohttp maps every ``aiohttp.ClientConnectionError`` it does not know more precisely (a
    refused or reset connection, a closed keep-alive socket, a TLS failure) to ``httpx.ConnectTimeout``;
    the aiohttp exception stays as ``__cause__``. A "timeout" whose cause is such a connection error
    is therefore reported as what it is, and only a real timeout becomes ``ComfyTimeout``.
    """
    request = RequestInfo(method, url)
    tls = _cause_of_type(exc, ssl.SSLError)
    if tls is not None:
        return ComfyConnectionError(
            f"TLS handshake with {url} failed ({type(tls).__name__}: {tls}). For a self-signed "
            "certificate pass verify='path/to/ca.pem' (or verify=False on a trusted network)",
            request=request,
        )
    refused = _connection_failed(exc)
    if isinstance(exc, httpx.TimeoutException) and not refused:
        return ComfyTimeout(
            f"{method} {url} timed out after {timeout} s ({type(exc).__name__}); the server "
            "may be overloaded or a proxy is holding the request: raise `timeout=` or check the server",
            request=request,
        )
    what = "connection refused" if refused else f"{type(exc).__name__}: {exc or 'connection failed'}"
    return ComfyConnectionError(
        f"cannot reach ComfyUI at {url} ({what}). Check that the "
        "server is running, that the host and port are right (ComfyUI listens on 8188 by default) and that "
        "no proxy or firewall is in the way",
        request=request,
    )


@functools.lru_cache(maxsize=256)
def _parsed_url(url: str) -> httpx.URL:
    """``httpx.URL(url)``, parsed once per URL: parsing costs ~10 µs, and the same few URLs (``/prompt``,
    ``/view``) are requested for every job. Bounded, since some paths carry a prompt id."""
    return httpx.URL(url)


def _causes(exc: BaseException) -> Iterator[BaseException]:
    cause = exc.__cause__ or exc.__context__
    while cause is not None:
        yield cause
        cause = cause.__cause__ or cause.__context__


def _cause_of_type(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    return next((c for c in _causes(exc) if isinstance(c, kind)), None)


def _connection_failed(exc: BaseException) -> bool:
    """True when the chain holds a failed connection (refused, reset, closed) rather than a slow one:
    an ``OSError`` that is not a timeout, or an aiohttp connection error that is not its timeout."""
    import aiohttp

    for cause in _causes(exc):
        if isinstance(cause, (TimeoutError, asyncio.TimeoutError, aiohttp.ServerTimeoutError)):
            return False
        if isinstance(cause, (OSError, aiohttp.ClientConnectionError)):
            return True
    return False


def status_error(response: Reply, method: str, url: str) -> ServerError:
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
    return ServerError(
        f"{method} {url} answered {response.status_code}{hint}", request=RequestInfo(method, url), response=info
    )


def _too_large(method: str, url: str, what: str, limit: int) -> ServerError:
    return ServerError(
        f"the answer to {method} {url} {what}, over this client's limit of {limit} bytes: raise it with "
        "AsyncComfyClient(..., max_download_size=...) if the file is expected to be that large",
        request=RequestInfo(method, url),
    )


def json_body(response: Reply, method: str, url: str) -> Any:
    try:
        return response.json()
    except ValueError:
        raise ServerError(
            f"{method} {url} did not answer JSON (is this a ComfyUI server?)",
            request=RequestInfo(method, url),
            response=ResponseInfo.from_parts(response.status_code, response.content),
        ) from None


def safe_json(response: Reply) -> Any:
    try:
        return response.json()
    except ValueError:
        return {}


def tls_context(verify: bool | str | ssl.SSLContext) -> ssl.SSLContext:
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

