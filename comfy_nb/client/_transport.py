"""One HTTP exchange with a ComfyUI server: httpx's API over the httpx-aiohttp transport, retries by
the ``_retry`` policy, and the one place where transport failures become ``comfy_nb.errors``.

Every request (JSON, uploads, downloads) goes through ``httpx.AsyncClient.send`` with httpx's own
redirect following off; an injected ``http_client=`` is used as given. Bodies are streamed and
stopped at ``max_download_size``. ``download`` is the one place that follows redirects: credentials
(the client's headers, cookies, httpx auth) go only to this server's origin, never to the host a
redirect points at (Comfy Cloud's signed storage URLs).
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
from urllib.parse import urlsplit, urlunsplit

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

__all__ = [
    "MAX_REDIRECTS",
    "Reply",
    "Transport",
    "http_stack",
    "json_body",
    "origin",
    "safe_json",
    "status_error",
    "tls_context",
    "transport_error",
]

MAX_REDIRECTS = 5
"""Redirects one download may follow (Comfy Cloud's ``/api/view`` takes one)."""
_REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
_AUTH_HINT = "check the token, user name and password (or the proxy's auth)"


@dataclass(frozen=True)
class Reply:
    """An answer read whole: status, headers and the (decoded) body."""

    status_code: int
    headers: httpx.Headers
    content: bytes
    url: str = ""
    """The URL that answered (with its query)."""

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
        self.auth_hint: str | None = None
        """What a 401/403 asks the user to check (``None``: the token, user name and password)."""

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
            self._http = http_stack(self.timeout, self._verify, headers=self.headers, base_url=self.base_url)
        return self._http

    def add_headers(self, headers: Mapping[str, str]) -> None:
        """Send ``headers`` on every later request too (a kind found at connect adds its key)."""
        self.headers.update(headers)
        if self._http is not None and self._http is not self._external:
            self._http.headers.update(headers)

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
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        """One request and its whole (bounded, decoded) body, any status; ``ComfyTimeout`` when no answer came
        in time, ``ComfyConnectionError`` when the server could not be reached."""
        http = self.open()
        url = f"{self.base_url}{path}"
        content = None
        headers = dict(headers or {})
        if json_body is not None:
            try:
                content = json.dumps(json_body, allow_nan=False).encode()
            except ValueError:  # NaN/Infinity: not JSON, and the server would read them as numbers
                raise WorkflowError(
                    f"the request to {url} holds NaN or Infinity, which JSON cannot carry: use a finite number"
                ) from None
            headers["Content-Type"] = "application/json"
        request = http.build_request(
            method, _parsed_url(url), content=content, headers=headers, params=params, files=files, data=data
        )
        return await self._send(http, request, url)

    async def _send(self, http: httpx.AsyncClient, request: httpx.Request, shown: str, *, bare: bool = False) -> Reply:
        """Send one built request (no redirect following) and read its bounded body; ``shown`` names it
        in errors. ``bare``: no client-level httpx auth either (a request to another origin)."""
        method = request.method
        try:
            if bare:
                streamed = await http.send(request, stream=True, follow_redirects=False, auth=None)
            else:
                streamed = await http.send(request, stream=True, follow_redirects=False)
            try:
                body = await read_bounded(streamed, method, shown, self.max_download_size)
            finally:
                await streamed.aclose()
        except httpx.TransportError as exc:
            raise transport_error(exc, method, shown, self.timeout) from None
        return Reply(streamed.status_code, streamed.headers, body, str(request.url))

    async def download(self, path: str, *, params: Mapping[str, Any] | None = None) -> Reply:
        """GET a file, following up to ``MAX_REDIRECTS`` redirects here (never inside httpx).

        A hop to this server's own origin carries its credentials; a hop to any other origin is a bare
        request (no headers of this client, no cookies, no auth): a signed URL needs none, and the API
        key must never reach the storage host. A loop or too many hops is a ``ServerError``.
        """
        reply = await self.request("GET", path, params=params, ok=(200, *_REDIRECT_CODES))
        home = origin(self.base_url)
        seen = {reply.url}
        while reply.status_code in _REDIRECT_CODES:
            here = _shown(reply.url, home)
            location = reply.headers.get("Location")
            if not location:
                raise ServerError(f"GET {here} answered {reply.status_code} without a Location to follow",
                                  request=RequestInfo("GET", here))
            target = str(httpx.URL(reply.url).join(location))
            shown = _shown(target, home)
            if urlsplit(target).scheme not in ("http", "https"):
                raise ServerError(f"GET {here} redirected to {shown}, which is not an http(s) URL",
                                  request=RequestInfo("GET", here))
            if target in seen:
                raise ServerError(f"GET {here} redirected back to {shown}: a redirect loop (the server is "
                                  "misconfigured)", request=RequestInfo("GET", here))
            if len(seen) > MAX_REDIRECTS:
                raise ServerError(f"GET {self.base_url}{path} redirected more than {MAX_REDIRECTS} times "
                                  f"(last to {shown}); the server is misconfigured", request=RequestInfo("GET", here))
            seen.add(target)
            http = self.open()
            if origin(target) == home:
                reply = await self._send(http, http.build_request("GET", target), shown)
            else:  # built bare, not from the client: none of its headers, cookies or auth go along
                bare = httpx.Request("GET", target, headers={"User-Agent": "comfy_nb"})
                reply = await self._send(http, bare, shown, bare=True)
        if reply.status_code != 200:
            if origin(reply.url) != home:
                raise ServerError(
                    f"the download from {self.base_url}{path} was redirected to {_shown(reply.url, home)}, which "
                    f"answered {reply.status_code} (a signed link may have expired: download again)",
                    request=RequestInfo("GET", _shown(reply.url, home)),
                    response=ResponseInfo.from_parts(reply.status_code, reply.content),
                )
            raise status_error(reply, "GET", reply.url, auth_hint=self.auth_hint)
        return reply

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
            raise status_error(response, method, f"{self.base_url}{path}", auth_hint=self.auth_hint)
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


def origin(url: str) -> tuple[str, str, int | None]:
    """Scheme, host and port of ``url``: the unit credentials are scoped to."""
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or {"http": 80, "https": 443}.get(parts.scheme)


def _shown(url: str, home: tuple[str, str, int | None]) -> str:
    """``url`` for a message: another origin's query (a signed link's signature) left out."""
    if origin(url) == home:
        return url
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))


def status_error(response: Reply, method: str, url: str, *, auth_hint: str | None = None) -> ServerError:
    info = ResponseInfo.from_parts(response.status_code, response.content)
    hint = ""
    if response.status_code == 401 or (response.status_code == 403 and "/view" not in url):
        hint = f": {auth_hint or _AUTH_HINT}"
    elif response.status_code == 403:
        hint = ": the server refused the file's folder (a subfolder outside its input/output/temp folders)"
    elif response.status_code == 404:
        hint = ": is the URL's base path right? (a proxy may serve ComfyUI under a prefix)"
    elif response.status_code == 413:
        hint = f": the body is over the server's upload limit ({info.body.strip()})"
    return ServerError(
        f"{method} {url} answered {response.status_code}{hint}", request=RequestInfo(method, url), response=info
    )


async def read_bounded(response: httpx.Response, method: str, url: str, limit: int) -> bytes:
    """The (decoded) body, stopping with ``ServerError`` once it passes ``limit`` (``max_download_size``):
    a response is never read whole into memory beyond that (a declared length is checked first)."""
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


def http_stack(
    timeout: float, verify: bool | str | ssl.SSLContext, *, headers: Mapping[str, str] | None = None,
    base_url: str = "",
) -> httpx.AsyncClient:
    """The one HTTP stack every comfy_nb request goes through: ``httpx.AsyncClient`` over the
    httpx-aiohttp transport (its public constructor), connect capped at 10 s, no redirect following."""
    from httpx_aiohttp import AiohttpTransport

    limits = httpx.Limits(max_connections=64, max_keepalive_connections=32)
    # One shared TLS context per setting: loading the CA bundle costs ~0.1 s of event-loop time,
    # which every client paid at connect (even for http://), stalling every other job's events.
    return httpx.AsyncClient(
        base_url=base_url,
        headers={**(headers or {}), "User-Agent": "comfy_nb"},
        timeout=httpx.Timeout(timeout, connect=min(10.0, timeout)),
        follow_redirects=False,
        transport=AiohttpTransport(verify=tls_context(verify), limits=limits),
    )


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

