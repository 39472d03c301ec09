"""``comfy-api-proxy`` 0.1.6 run in-process on its own thread and loop, in front of a mock on 127.0.0.1.

Built the way its CLI's ``run`` builds it (``make_app`` with the origin guard, plus the bearer-token
middleware when a token is given), served by an ``AppRunner`` on an ephemeral port.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, final

from aiohttp import web
from comfy_api_proxy.app import make_app
from comfy_api_proxy.auth import make_bearer_auth_middleware
from comfy_api_proxy.middleware import make_origin_only_middleware

PROXY_TOKEN = "proxy-token-SECRET-42"
"""The bearer token the test proxy requires (a sentinel: tests check it never leaks)."""


@final
class ProxyThread:
    def __init__(self, comfyui_url: str, *, token: str | None = None) -> None:
        self.comfyui_url = comfyui_url
        self.token = token
        self.url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._stopped: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self.app: web.Application | None = None

    def start(self, timeout: float = 30.0) -> ProxyThread:
        ready = threading.Event()
        errors: list[BaseException] = []
        self._thread = threading.Thread(target=self._main, args=(ready, errors), name="comfy-api-proxy", daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise RuntimeError("comfy-api-proxy did not start in time")
        if errors:
            raise errors[0]
        return self

    def stop(self, timeout: float = 30.0) -> None:
        loop, stopped = self._loop, self._stopped
        if loop is not None and stopped is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stopped.set)
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def __enter__(self) -> ProxyThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _main(self, ready: threading.Event, errors: list[BaseException]) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve(ready, errors))
        finally:
            loop.close()

    async def _serve(self, ready: threading.Event, errors: list[BaseException]) -> None:
        self._stopped = asyncio.Event()
        middlewares: list[Any] = [make_origin_only_middleware([])]
        if self.token:
            middlewares.append(make_bearer_auth_middleware(self.token))
        try:
            self.app = make_app(self.comfyui_url, middlewares=middlewares)
            runner = web.AppRunner(self.app, access_log=None, handle_signals=False, shutdown_timeout=0.5)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
        except OSError as exc:  # the port or the upstream URL
            errors.append(exc)
            ready.set()
            return
        self.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        ready.set()
        try:
            await self._stopped.wait()
        finally:
            await runner.cleanup()
