"""The WebSocket to one server: connect, hand every frame on, reconnect with backoff.

It knows nothing of jobs: whoever owns it is told when a connection opens (and whether it is a
reconnect), gets every frame, and is told when the connection is lost. Its URL may carry a token
(Comfy Cloud's ``?token=<API key>``): ``url`` and everything logged or kept show it as ``***``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import SecurityError
from websockets.uri import parse_uri

from ..protocol import feature_flags_request
from ._retry import retry_delay
from ._transport import tls_context

__all__ = ["Socket", "redact_token"]

log = logging.getLogger("comfy_nb")

_WS_LOG = logging.getLogger("websockets.client")
REOPEN_WAIT = 1.0
"""Seconds a submit waits for a socket that is being (re)opened before following its job without one."""
_CLOSE_TIMEOUT = 1.0
"""Seconds a close waits for the server to finish the socket's closing handshake (a server that
never closes its end would otherwise hold every close, and interpreter exit, for 10 s)."""


class Socket:
    """One WebSocket connection at a time to ``url``, reopened (same URL, so the same ``clientId``)
    until ``stop()``. ``url`` can be replaced between connections (a kind found at connect)."""

    def __init__(
        self,
        url: str,
        *,
        headers: dict[str, str],
        open_timeout: float,
        verify: bool | str | ssl.SSLContext,
        on_frame: Callable[[str | bytes], None],
        on_open: Callable[[bool], None],
        on_lost: Callable[[], None],
    ) -> None:
        self._url = url
        self._headers = headers
        self._open_timeout = open_timeout
        self._verify = verify
        self._on_frame = on_frame
        self._on_open = on_open
        self._on_lost = on_lost
        self._ws: ClientConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self._attempted = asyncio.Event()
        self.opening = False
        """True while a connection attempt is in flight."""
        self.failure: str | None = None
        """Why the last attempt failed (no secrets: a status or an exception's text)."""

    @property
    def url(self) -> str:
        """The socket URL, any ``token`` in it shown as ``***``."""
        return redact_token(self._url)

    @url.setter
    def url(self, value: str) -> None:
        self._url = value

    def _secrets(self) -> tuple[str, ...]:
        """Every credential this socket sends (header values, the URL's token): never logged."""
        token = dict(parse_qsl(urlsplit(self._url).query)).get("token")
        return tuple(v for v in (*self._headers.values(), token, quote(token or "", safe="")) if v)

    @property
    def open(self) -> bool:
        return self._ws is not None

    @property
    def running(self) -> bool:
        """True between ``start()`` and ``stop()``."""
        return self._task is not None

    def start(self) -> None:
        self._attempted.clear()
        self._task = asyncio.create_task(self._main(), name="comfy_nb-ws")

    async def first_attempt(self, timeout: float) -> None:
        """Wait until the first attempt has connected or failed (at most ``timeout``)."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._attempted.wait(), timeout)

    async def reopened(self) -> None:
        """If a reconnect is under way, wait for it (briefly) rather than follow a new job blind."""
        if self._ws is None and self.opening:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._connected.wait(), REOPEN_WAIT)

    async def reconnect(self) -> None:
        """Close the current connection; a new one follows (a socket that has gone deaf)."""
        if self._ws is not None:
            await self._ws.close()

    async def stop(self) -> None:
        """Close the connection and stop reconnecting."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
        if self._ws is not None:
            await self._ws.close()
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._ws = None

    async def _main(self) -> None:
        attempt = 0
        while True:
            self.opening = True
            secrets = self._secrets()
            try:
                async with _SameOriginConnect(
                    self._url,
                    additional_headers=self._headers or None,
                    max_size=None,
                    open_timeout=self._open_timeout,
                    close_timeout=_CLOSE_TIMEOUT,
                    compression=None,
                    # Frames buffered before reading pauses. Our reader drains them every loop turn, but at
                    # websockets' default (16) a burst from a busy server paused and resumed reading ~300
                    # times per 1,000 jobs: two epoll_ctl calls each, each a GIL hand-off that a worker
                    # thread (sidecars, thumbnails) could hold for a switch interval.
                    max_queue=256,
                    ping_interval=20,
                    ping_timeout=20,
                    ssl=tls_context(self._verify) if self.url.startswith("wss://") else None,
                    user_agent_header="comfy_nb",
                    logger=_RedactingLogger(_WS_LOG, secrets),
                ) as ws:
                    await ws.send(feature_flags_request())
                    self._ws = ws
                    self.opening = False
                    self.failure = None
                    reconnected = attempt > 0
                    attempt = 0
                    self._connected.set()
                    self._attempted.set()
                    self._on_open(reconnected)
                    async for frame in ws:
                        try:
                            self._on_frame(frame)
                        except Exception:  # nothing a server sends may stop the reader
                            log.warning("comfy_nb: could not apply a message from %s", self.url, exc_info=True)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any socket failure: note it, back off, reconnect
                self.failure = _describe_failure(exc, secrets)
                log.debug("comfy_nb: WebSocket %s: %s", self.url, self.failure)
            finally:
                self._ws = None
                self.opening = False
                self._connected.clear()
                self._attempted.set()
            self._on_lost()
            if attempt:  # the first reconnect is immediate; then back off
                await asyncio.sleep(retry_delay(min(attempt - 1, 5), base=0.2, cap=5.0))
            attempt += 1


class _SameOriginConnect(connect):
    """``websockets.connect`` that follows an upgrade's redirect only within the server's origin: on a
    cross-origin one it strips only ``Authorization``/``Cookie``, so ``X-API-Key`` and extra headers
    would reach the other host. Refused instead (the socket then fails and jobs are polled)."""

    def process_redirect(self, exc: Exception) -> Exception | str:
        old = self.ws_uri
        target = super().process_redirect(exc)
        if isinstance(target, str):
            new = parse_uri(target)
            if (new.secure, new.host, new.port) != (old.secure, old.host, old.port):
                parts = urlsplit(target)
                shown = urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))
                return SecurityError(f"the WebSocket upgrade redirected to another origin ({shown}); not followed, "
                                     "so no credential reaches it")
        return target


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


def _describe_failure(exc: BaseException, secrets: tuple[str, ...]) -> str:
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if status == 403:
        return "403 Forbidden on the WebSocket upgrade (an Origin or auth check refused it)"
    if status in (401, 407):
        return f"{status} on the WebSocket upgrade: check the token, password or API key"
    if status is not None:
        return f"HTTP {status} on the WebSocket upgrade"
    text = f"{type(exc).__name__}: {exc}"  # e.g. InvalidURI quotes the whole URL, token included
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def redact_token(url: str) -> str:
    """``url`` with the value of a ``token`` query parameter shown as ``***`` (socket URLs in logs and errors)."""
    parts = urlsplit(url)
    if "token=" not in parts.query:
        return url
    query = [(k, "***" if k == "token" else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query, safe="*"), parts.fragment))
