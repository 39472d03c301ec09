"""A pass-through HTTP relay in front of comfy-api-proxy that can misbehave on purpose (on the test's loop).

``corrupt_jobs``: ``GET /api/v2/jobs/{id}`` answers 200 with a body that does not fit the contract.
``events``: ``"pass"`` streams the proxy's SSE through; ``"mute"`` answers 200 ``text/event-stream``
and then sends nothing until the client goes (a stream that stops); ``"end"`` ends it at once.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from typing import Literal

import aiohttp
from aiohttp import web

_JOB = re.compile(r"/api/v2/jobs/[^/]+")


class Relay:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.url = ""
        self.corrupt_jobs = False
        self.events: Literal["pass", "mute", "end"] = "pass"
        self.seen: Counter[str] = Counter()
        self.muted = asyncio.Event()  # set once a muted stream is open
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None

    async def start(self) -> Relay:
        self._http = aiohttp.ClientSession(auto_decompress=False)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._http is not None:
            await self._http.close()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        assert self._http is not None
        path = request.path
        kind = "events" if path.endswith("/events") else "job" if request.method == "GET" and _JOB.fullmatch(path) else path
        self.seen[kind] += 1
        if kind == "job" and self.corrupt_jobs:
            return web.json_response({"id": path.rsplit("/", 1)[1], "status": "bogus-state"})
        if kind == "events" and self.events != "pass":
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            if self.events == "mute":
                self.muted.set()
                await asyncio.Event().wait()  # never a byte: the client must not depend on the stream
            return response
        body = await request.read()
        # the Host header goes through: the proxy builds its links from it, so they point at the relay
        headers = {k: v for k, v in request.headers.items() if k.lower() != "content-length"}
        async with self._http.request(
            request.method, self.upstream + request.rel_url.path_qs, data=body or None, headers=headers,
            allow_redirects=False,
        ) as upstream:
            out = web.StreamResponse(status=upstream.status)
            for name, value in upstream.headers.items():
                if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                    out.headers[name] = value
            await out.prepare(request)
            async for chunk in upstream.content.iter_any():
                await out.write(chunk)
            await out.write_eof()
            return out
