"""A tiny raw client for the mock tests: a recording WebSocket and an httpx client; no comfy_nb.client."""

from __future__ import annotations

import asyncio
import json
import struct
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import websockets


class Recorder:
    """One WebSocket; every frame is appended to ``messages`` (dicts for text, bytes for binary)."""

    def __init__(self, url: str, client_id: str | None = None, *, feature_flags: dict[str, Any] | None = None):
        self.client_id = client_id if client_id is not None else f"t-{uuid.uuid4().hex[:8]}"
        self.url = url
        self.query_id = client_id is not None or True
        self.feature_flags = feature_flags
        self.messages: list[Any] = []
        self.closed = False
        self._cond = asyncio.Condition()
        self._ws: Any = None
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Recorder:
        return await self.connect()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def connect(self, *, with_client_id: bool = True) -> Recorder:
        ws_url = self.url.replace("http://", "ws://") + "/ws"
        if with_client_id:
            ws_url += f"?clientId={self.client_id}"
        self._ws = await websockets.connect(ws_url, max_size=None)
        if self.feature_flags is not None:
            await self._ws.send(json.dumps({"type": "feature_flags", "data": self.feature_flags}))
        self._task = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        try:
            async for frame in self._ws:
                item = frame if isinstance(frame, bytes) else json.loads(frame)
                async with self._cond:
                    self.messages.append(item)
                    self._cond.notify_all()
        except websockets.ConnectionClosed:
            pass
        finally:
            async with self._cond:
                self.closed = True
                self._cond.notify_all()

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._task is not None:
            await self._task

    async def wait_for(self, pred: Callable[[Any], bool], timeout: float = 10.0) -> Any:
        """Wait until some recorded message satisfies ``pred``; return it."""

        def found() -> Any:
            for m in self.messages:
                if pred(m):
                    return m
            return None

        async with self._cond:
            await asyncio.wait_for(self._cond.wait_for(lambda: found() is not None or self.closed), timeout)
            hit = found()
        if hit is None:
            raise AssertionError(f"socket closed before the expected message; got {self.texts()}")
        return hit

    async def wait_closed(self, timeout: float = 10.0) -> None:
        async with self._cond:
            await asyncio.wait_for(self._cond.wait_for(lambda: self.closed), timeout)

    async def wait_done(self, prompt_id: str, timeout: float = 10.0) -> Any:
        return await self.wait_for(lambda m: is_done(m, prompt_id), timeout)

    def texts(self) -> list[dict[str, Any]]:
        return [m for m in self.messages if isinstance(m, dict)]

    def types(self) -> list[str]:
        return [m["type"] if isinstance(m, dict) else f"binary{binary_event(m)}" for m in self.messages]


def is_done(m: Any, prompt_id: str) -> bool:
    return (
        isinstance(m, dict)
        and m.get("type") == "executing"
        and m["data"].get("node") is None
        and m["data"].get("prompt_id") == prompt_id
    )


def binary_event(frame: bytes) -> int:
    return int(struct.unpack(">I", frame[:4])[0])


def normalize(m: Any) -> tuple[Any, ...]:
    """A message without ids, timestamps and file names, for comparing against a capture."""
    if isinstance(m, (bytes, bytearray)):
        event = binary_event(bytes(m))
        if event == 1:
            return ("binary", 1, struct.unpack(">I", m[4:8])[0])
        if event == 3:
            n = struct.unpack(">I", m[4:8])[0]
            return ("binary", 3, m[8 + n :].decode())
        if event == 4:
            n = struct.unpack(">I", m[4:8])[0]
            meta = json.loads(m[8 : 8 + n])
            return ("binary", 4, tuple(meta), meta["image_type"], meta["node_id"])
        return ("binary", event)
    t = m["type"]
    d = m["data"]
    if t == "status":
        return (t, d["status"]["exec_info"]["queue_remaining"], "sid" in d)
    if t == "execution_cached":
        return (t, tuple(d["nodes"]), tuple(d))
    if t == "executing":
        return (t, d.get("node"), tuple(d))
    if t == "progress":
        return (t, d["value"], d["max"], d["node"], tuple(d))
    if t == "progress_state":
        return (t, tuple((k, v["state"], v["value"], v["max"], tuple(v)) for k, v in d["nodes"].items()))
    if t == "executed":
        out = d["output"]
        shape = tuple(
            (k, tuple((i.get("type"), i.get("subfolder")) for i in v) if k == "images" else tuple(v))
            for k, v in out.items()
        )
        return (t, d["node"], shape, tuple(d))
    if t == "execution_error":
        return (t, d["node_id"], d["node_type"], d["exception_type"], tuple(d["executed"]), tuple(d))
    if t == "execution_interrupted":
        return (t, d["node_id"], d["node_type"], tuple(d["executed"]), tuple(d))
    if t == "feature_flags":
        return (t, tuple(sorted(d)))
    return (t, tuple(d))


def captured_messages(trace: dict[str, Any], key: str = "messages") -> list[tuple[Any, ...]]:
    """The normalized received frames of a capture (binary frames rebuilt from their decoded headers)."""
    out: list[tuple[Any, ...]] = []
    for m in trace[key]:
        if m.get("dir") != "recv":
            continue
        if m["kind"] == "text":
            out.append(normalize(m["json"]))
        elif m["event_type"] == 1:
            out.append(("binary", 1, m["image_format"]))
        elif m["event_type"] == 3:
            out.append(("binary", 3, m["text"]))
        elif m["event_type"] == 4:
            meta = m["metadata"]
            out.append(("binary", 4, tuple(meta), meta["image_type"], meta["node_id"]))
    return out


class Http:
    """httpx against the mock, with a few shortcuts."""

    def __init__(self, url: str) -> None:
        self.client = httpx.AsyncClient(base_url=url, timeout=10.0)

    async def __aenter__(self) -> Http:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()

    async def submit(self, prompt: dict[str, Any], client_id: str | None = None, **extra: Any) -> str:
        body: dict[str, Any] = {"prompt": prompt, **extra}
        if client_id is not None:
            body["client_id"] = client_id
        r = await self.client.post("/prompt", json=body)
        assert r.status_code == 200, r.text
        return str(r.json()["prompt_id"])

    async def history(self, prompt_id: str) -> dict[str, Any]:
        r = await self.client.get(f"/history/{prompt_id}")
        assert r.status_code == 200
        entry: dict[str, Any] = r.json().get(prompt_id, {})
        return entry


def slow(steps: int, seconds: float, *, preview: bool = False, text: bool = False, fail_at: int = 0, seed: int = 1) -> dict[str, Any]:
    """The captures' SlowProgressImage → PreviewImage graph."""
    return {
        "1": {
            "class_type": "SlowProgressImage",
            "inputs": {
                "steps": steps,
                "seconds_per_step": seconds,
                "width": 32,
                "height": 32,
                "send_preview": preview,
                "send_text": text,
                "seed": seed,
                "fail_at_step": fail_at,
            },
        },
        "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}},
    }
