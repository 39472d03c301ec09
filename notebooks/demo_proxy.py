"""A stand-in for a reverse proxy (nginx, Caddy, a hub service...), used by 06_real_server.ipynb.

It serves a ComfyUI server under a base path and lets requests through only with
``Authorization: Bearer <token>``, forwarding HTTP and the WebSocket. It exists so that the notebook can
show a client behind a proxy on a machine without one; with a real server you do not need it.
"""

from __future__ import annotations

import asyncio
import threading

import aiohttp
from aiohttp import web

__all__ = ["start_proxy"]


def start_proxy(upstream: str, prefix: str = "/comfy", token: str = "s3cret") -> str:
    """Serve ``upstream`` under ``prefix`` on 127.0.0.1 (a background thread); return the proxy's URL."""

    async def handle(request: web.Request) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Bearer {token}":
            return web.Response(status=401, text="missing or wrong token")
        path = request.rel_url.path_qs[len(prefix):] or "/"
        async with aiohttp.ClientSession() as session:
            if request.headers.get("Upgrade", "").lower() == "websocket":
                return await _websocket(request, session, upstream.replace("http", "ws", 1) + path)
            async with session.request(
                request.method, upstream + path, data=await request.read(),
                headers={k: v for k, v in request.headers.items() if k.lower() == "content-type"},
            ) as resp:
                return web.Response(
                    status=resp.status, body=await resp.read(),
                    headers={"Content-Type": resp.headers.get("Content-Type", "application/octet-stream")},
                )

    ready = threading.Event()
    found: dict[str, int] = {}

    async def main() -> None:
        app = web.Application(client_max_size=200 * 1024**2)
        app.router.add_route("*", prefix + "/{tail:.*}", handle)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        found["port"] = runner.addresses[0][1]
        ready.set()
        await asyncio.Event().wait()  # serve until the process ends

    threading.Thread(target=asyncio.run, args=(main(),), name="demo-proxy", daemon=True).start()
    if not ready.wait(10):
        raise RuntimeError("the demo proxy did not start")
    return f"http://127.0.0.1:{found['port']}{prefix}/"


async def _websocket(request: web.Request, session: aiohttp.ClientSession, url: str) -> web.WebSocketResponse:
    browser_side = web.WebSocketResponse()
    await browser_side.prepare(request)
    async with session.ws_connect(url) as server_side:

        async def pump(src, dst) -> None:  # type: ignore[no-untyped-def]
            async for msg in src:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    await dst.send_str(msg.data)
                elif msg.type == aiohttp.WSMsgType.BINARY:
                    await dst.send_bytes(msg.data)

        tasks = [asyncio.ensure_future(pump(server_side, browser_side)),
                 asyncio.ensure_future(pump(browser_side, server_side))]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()
    return browser_side
