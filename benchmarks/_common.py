"""Helpers shared by the benchmarks: a mock server in its own process, trivial prompts, timing."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def child_server(cmd: list[str], health_url: str, what: str) -> Iterator[None]:
    """Run ``cmd`` (a server) in a child process until the block ends; returns once ``health_url`` answers."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(health_url, timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    err = proc.stderr.read().decode() if proc.stderr else ""
                    raise RuntimeError(f"{what} did not start: {err[-2000:]}") from None
                time.sleep(0.05)  # polling a child process that has no other way to say it is up
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextlib.contextmanager
def mock_server_process(step_delay: float = 0.0) -> Iterator[str]:
    """A MockServer in a child process (so it does not share the client's GIL); yields its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="comfy_nb-bench-") as root, child_server(
        [sys.executable, "-m", "comfy_nb.mock", "--host", "127.0.0.1", "--port", str(port),
         "--step-delay", str(step_delay), "--output-dir", root],
        f"{url}/prompt", "mock server",
    ):
        yield url


@contextlib.contextmanager
def api_proxy(comfy_url: str, python: str = sys.executable) -> Iterator[str]:
    """comfy-api-proxy (run by ``python``, which must have it installed) in front of ``comfy_url``."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="comfy_nb-bench-proxy-") as state, child_server(
        [python, "-m", "comfy_api_proxy.cli", "run", "--comfyui", comfy_url, "--host", "127.0.0.1",
         "--port", str(port), "--state-dir", state],
        f"{url}/api/v2/health", "comfy-api-proxy",
    ):
        yield url


async def collect_outputs(ws: Any, waiting: dict[str, tuple[asyncio.Future[list[Any]], list[Any]]]) -> None:
    """A bare loop's socket reader: outputs from ``executed``, the end at ``executing`` null (aiohttp socket)."""
    import aiohttp

    async for frame in ws:
        if frame.type != aiohttp.WSMsgType.TEXT:
            continue
        msg = json.loads(frame.data)
        data = msg.get("data") or {}
        entry = waiting.get(data.get("prompt_id") or "")
        if entry is None:
            continue
        if msg["type"] == "executed":
            entry[1].extend((data.get("output") or {}).get("images") or [])
        elif msg["type"] == "executing" and data.get("node") is None and not entry[0].done():
            entry[0].set_result(entry[1])


def trivial_prompt(i: int, prefix: str = "bench/img") -> dict[str, Any]:
    """A tiny model-free graph; ``i`` changes the colour so no run is a cache hit."""
    return {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": i % 16777216}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": prefix}},
    }


def finished_prompt(frame: str | bytes) -> str | None:
    """The prompt id when a WebSocket frame is ``executing {node: null}`` (the end of a prompt), else None."""
    if not isinstance(frame, str):
        return None
    msg = json.loads(frame)
    data = msg.get("data") or {}
    if msg.get("type") == "executing" and data.get("node") is None:
        return data.get("prompt_id")
    return None


def record(name: str, value: float, unit: str, baseline: float, **details: Any) -> dict[str, Any]:
    ratio = value / baseline if baseline else float("nan")
    return {"name": name, "value": round(value, 4), "unit": unit, "baseline": round(baseline, 4),
            "ratio": round(ratio, 3), **details}


def plain(name: str, value: float, unit: str, **details: Any) -> dict[str, Any]:
    """An absolute figure with no baseline (ratio null)."""
    return {"name": name, "value": round(value, 4), "unit": unit, "baseline": None, "ratio": None, **details}
