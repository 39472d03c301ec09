"""A small ComfyUI look-alike whose every answer a test can replace (not the mock: it misbehaves).

It runs on the test's own event loop, bound to 127.0.0.1 on an ephemeral port. Left alone it
behaves: ``POST /prompt`` queues the prompt and a *script* runs it, sending the usual WebSocket
messages and writing a history entry. Tests replace any part:

* ``answers[route]`` – a function returning the JSON (or a ``web.Response``) for ``prompt``,
  ``queue``, ``history``, ``object_info``, ``system_stats``; ``None`` keeps the default.
* ``script`` – ``async def script(fake, pid)`` that sends frames and finishes the prompt.
* ``gate`` – when set, scripts wait for it (so a test can subscribe before anything happens).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import WSMsgType, web

Script = Callable[["FakeComfy", str], Awaitable[None]]
Answer = Callable[..., Any]

GRAPH: dict[str, Any] = {
    "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
    "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "fake"}},
}
"""A two-node graph: node 2 is the output node (a sink), as the client expects."""

OUTPUT = {"images": [{"filename": "fake_00001_.png", "subfolder": "", "type": "output"}]}


def msg(kind: str, **data: Any) -> str:
    return json.dumps({"type": kind, "data": data})


class _Watched(list[str]):
    """A list whose appends wake ``FakeComfy.until`` (the tests wait on what the server saw, never sleep)."""

    def __init__(self, on_change: Callable[[], None]) -> None:
        super().__init__()
        self._on_change = on_change

    def append(self, item: str) -> None:
        super().append(item)
        self._on_change()


class FakeComfy:
    def __init__(self) -> None:
        self._changed = asyncio.Event()
        self.answers: dict[str, Answer | None] = {}
        self.script: Script = default_script
        self.gate: asyncio.Event | None = None
        self.slow_submit = False
        """When True, ``POST /prompt`` queues the prompt only once the client has given up waiting and
        looks for it in ``/queue`` or ``/history`` (a validation slower than the client's timeout)."""
        self._looked = asyncio.Event()
        self.posts: list[str] = _Watched(self._poke)
        """Prompt ids received by ``POST /prompt``, one per request (duplicates show double submits)."""
        self.queue_running: list[str] = []
        self.queue_pending: list[str] = []
        self.history: dict[str, dict[str, Any]] = {}
        self.sockets: set[web.WebSocketResponse] = set()
        self.ws_connects = 0
        self.requests: list[str] = _Watched(self._poke)
        self.view_body = b"\x89PNG fake"
        self._tasks: set[asyncio.Task[Any]] = set()
        self._runner: web.AppRunner | None = None

    def _poke(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def until(self, predicate: Callable[[], bool], timeout: float) -> None:
        """Wait until ``predicate()`` holds, re-checked whenever a request or post is recorded."""

        async def reach() -> None:
            while True:
                changed = self._changed
                if predicate():
                    return
                await changed.wait()

        await asyncio.wait_for(reach(), timeout)
        self.url = ""

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> FakeComfy:
        app = web.Application()
        routes = [
            ("GET", "/ws", "_ws"), ("GET", "/prompt", "_get_prompt"), ("POST", "/prompt", "_post_prompt"),
            ("GET", "/queue", "_queue"), ("POST", "/queue", "_post_queue"), ("GET", "/history/{pid}", "_history_one"),
            ("GET", "/history", "_history_all"), ("GET", "/object_info", "_object_info"),
            ("GET", "/system_stats", "_system_stats"), ("GET", "/view", "_view"), ("POST", "/interrupt", "_interrupt"),
        ]
        for method, path, name in routes:  # looked up per request, so a test may replace a handler
            app.router.add_route(method, path, self._dispatch(name))
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def _dispatch(self, name: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handler(request: web.Request) -> web.StreamResponse:
            result: web.StreamResponse = await getattr(self, name)(request)
            return result

        return handler

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
        for ws in list(self.sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ what scripts use

    async def send(self, frame: str | bytes) -> None:
        for ws in list(self.sockets):
            with contextlib.suppress(Exception):
                if isinstance(frame, bytes):
                    await ws.send_bytes(frame)
                else:
                    await ws.send_str(frame)

    async def drop_sockets(self) -> None:
        for ws in list(self.sockets):
            with contextlib.suppress(Exception):
                await ws.close()

    def start_running(self, pid: str) -> None:
        if pid in self.queue_pending:
            self.queue_pending.remove(pid)
        self.queue_running.append(pid)

    def finish(self, pid: str, outcome: str = "success", outputs: dict[str, Any] | None = None) -> None:
        """Write the history entry the real server writes when a prompt ends."""
        for lst in (self.queue_running, self.queue_pending):
            if pid in lst:
                lst.remove(pid)
        now = int(time.time() * 1000)
        messages: list[Any] = [["execution_start", {"prompt_id": pid, "timestamp": now}]]
        if outcome == "error":
            messages.append(["execution_error", {
                "prompt_id": pid, "node_id": "2", "node_type": "SaveImage", "exception_message": "boom",
                "exception_type": "RuntimeError", "traceback": [], "timestamp": now,
            }])
        elif outcome == "interrupted":
            messages.append(["execution_interrupted", {"prompt_id": pid, "node_id": "2", "timestamp": now}])
        else:
            messages.append(["execution_success", {"prompt_id": pid, "timestamp": now}])
        self.history[pid] = {
            "prompt": [0, pid, GRAPH, {}, ["2"]],
            "outputs": {"2": OUTPUT} if outputs is None and outcome == "success" else (outputs or {}),
            "status": {"status_str": "error" if outcome == "error" else "success",
                       "completed": outcome == "success", "messages": messages},
            "meta": {},
        }

    # ------------------------------------------------------------------ routes

    def _answer(self, route: str, default: Callable[[], Any], *args: Any) -> web.StreamResponse:
        self.requests.append(route)
        custom = self.answers.get(route)
        body = custom(*args) if custom is not None else default()
        if isinstance(body, web.StreamResponse):
            return body
        return web.Response(text=json.dumps(body), content_type="application/json")

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        self.ws_connects += 1
        self.sockets.add(ws)
        try:
            await ws.send_str(msg("status", status={"exec_info": {"queue_remaining": 0}}, sid="fake"))
            async for item in ws:
                if item.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
                    break
        finally:
            self.sockets.discard(ws)
        return ws

    async def _get_prompt(self, request: web.Request) -> web.StreamResponse:
        return self._answer("get_prompt", lambda: {"exec_info": {"queue_remaining": 0}})

    async def _post_prompt(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        pid = str(body.get("prompt_id"))
        self.posts.append(pid)

        async def accept() -> None:  # shielded: a client that timed out does not stop the server
            if self.slow_submit:
                self._looked.clear()
                await self._looked.wait()
            self.queue_pending.append(pid)
            self.spawn(self._run(pid))

        await asyncio.shield(asyncio.ensure_future(accept()))
        number = len(self.posts)
        return self._answer("prompt", lambda: {"prompt_id": pid, "number": number, "node_errors": {}}, pid)

    async def _run(self, pid: str) -> None:
        if self.gate is not None:
            await self.gate.wait()
        await self.script(self, pid)

    def _queue_default(self) -> dict[str, Any]:
        def item(n: int, pid: str) -> list[Any]:
            return [n, pid, GRAPH, {"client_id": "x"}, ["2"]]

        return {
            "queue_running": [item(i, p) for i, p in enumerate(self.queue_running)],
            "queue_pending": [item(100 + i, p) for i, p in enumerate(self.queue_pending)],
        }

    async def _queue(self, request: web.Request) -> web.StreamResponse:
        response = self._answer("queue", self._queue_default)
        self._looked.set()
        return response

    async def _post_queue(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        for pid in body.get("delete") or []:
            if pid in self.queue_pending:
                self.queue_pending.remove(pid)
        return web.Response()

    async def _history_one(self, request: web.Request) -> web.StreamResponse:
        pid = request.match_info["pid"]

        def default() -> Any:
            return {pid: self.history[pid]} if pid in self.history else {}

        response = self._answer("history", default, pid)
        self._looked.set()
        return response

    async def _history_all(self, request: web.Request) -> web.StreamResponse:
        return self._answer("history_all", lambda: dict(self.history))

    async def _object_info(self, request: web.Request) -> web.StreamResponse:
        def default() -> Any:
            return {
                "EmptyImage": {"input": {"required": {"width": ["INT", {"min": 1}], "height": ["INT", {}],
                                                      "batch_size": ["INT", {}], "color": ["INT", {}]}},
                               "output": ["IMAGE"], "output_node": False, "name": "EmptyImage"},
                "SaveImage": {"input": {"required": {"images": ["IMAGE"], "filename_prefix": ["STRING", {}]}},
                              "output": [], "output_node": True, "name": "SaveImage"},
            }

        return self._answer("object_info", default)

    async def _system_stats(self, request: web.Request) -> web.StreamResponse:
        return self._answer("system_stats", lambda: {"system": {"comfyui_version": "0.3.64"}, "devices": []})

    async def _view(self, request: web.Request) -> web.StreamResponse:
        self.requests.append("view")
        custom = self.answers.get("view")
        if custom is not None:
            result = custom(request)
            if isinstance(result, Awaitable):
                result = await result
            return result  # type: ignore[no-any-return]
        return web.Response(body=self.view_body, content_type="image/png")

    async def _interrupt(self, request: web.Request) -> web.StreamResponse:
        for pid in list(self.queue_running):
            self.finish(pid, "interrupted")
            await self.send(msg("execution_interrupted", prompt_id=pid, node_id="1"))
            await self.send(msg("executing", node=None, prompt_id=pid))
        return web.Response()


async def default_script(fake: FakeComfy, pid: str, outcome: str = "success") -> None:
    """What the real server sends for a two-node prompt, then its history entry."""
    fake.start_running(pid)
    now = int(time.time() * 1000)
    await fake.send(msg("execution_start", prompt_id=pid, timestamp=now))
    await fake.send(msg("executing", node="1", display_node="1", prompt_id=pid))
    await fake.send(msg("progress", value=1, max=1, prompt_id=pid, node="1"))
    await fake.send(msg("executing", node="2", display_node="2", prompt_id=pid))
    await fake.send(preview_frame())
    fake.finish(pid, outcome)
    if outcome == "success":
        await fake.send(msg("executed", node="2", display_node="2", output=OUTPUT, prompt_id=pid))
        await fake.send(msg("execution_success", prompt_id=pid, timestamp=now))
    elif outcome == "error":
        await fake.send(msg("execution_error", prompt_id=pid, node_id="2", node_type="SaveImage",
                            exception_message="boom", exception_type="RuntimeError", traceback=[]))
    else:
        await fake.send(msg("execution_interrupted", prompt_id=pid, node_id="2"))
    await fake.send(msg("executing", node=None, display_node=None, prompt_id=pid))


def preview_frame(image: bytes = b"\xff\xd8\xff fake jpeg") -> bytes:
    return struct.pack(">II", 1, 1) + image


async def never_ends(fake: FakeComfy, pid: str) -> None:
    """The prompt starts and then runs for ever (a stuck GPU)."""
    fake.start_running(pid)
    await fake.send(msg("execution_start", prompt_id=pid))
    await fake.send(msg("executing", node="1", display_node="1", prompt_id=pid))
