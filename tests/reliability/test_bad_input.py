"""Bad input: each case gives a clear comfy_nb error (what is wrong, how to fix it) and leaves the client usable.

Only loopback addresses are used: a closed local port stands for an unreachable host, a tiny aiohttp
server on 127.0.0.1 answers garbage.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import struct
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from comfy_nb import AsyncComfyClient, ComfyClient, JobState
from comfy_nb.errors import (
    ComfyConnectionError,
    ComfyError,
    ConfigError,
    ServerError,
    WorkflowError,
)
from comfy_nb.mock import MockServer

from .conftest import wait_until


def tiny(i: int, prefix: str = "bad") -> dict[str, Any]:
    return {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 4, "height": 4, "batch_size": 1, "color": i}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": f"{prefix}/b{i}"}},
    }


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------------------- URLs and hosts


@pytest.mark.parametrize(
    ("url", "names"),
    [
        ("127.0.0.1:8188", ["no scheme", "http://"]),
        ("localhost", ["no scheme", "http://"]),
        ("ftp://127.0.0.1:8188", ["http://", "ftp"]),
        ("ws://127.0.0.1:8188", ["http://", "ws"]),
        ("http://", ["no host"]),
        ("http://127.0.0.1:99999", ["invalid port"]),
        ("http://127.0.0.1:port", ["invalid port"]),
    ],
)
def test_malformed_url_is_refused_with_the_fix(url: str, names: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        AsyncComfyClient(url)
    message = str(info.value)
    assert url.strip() in message, "the message quotes the URL"
    for name in names:
        assert name in message, f"{name!r} missing from {message!r}"
    with pytest.raises(ConfigError):
        ComfyClient(url)


async def test_unreachable_host_then_the_same_client_works_once_the_server_is_up() -> None:
    port = closed_port()
    client = AsyncComfyClient(f"http://127.0.0.1:{port}", timeout=5, max_retries=1)
    t0 = time.monotonic()
    with pytest.raises(ComfyConnectionError) as info:
        await client.connect()
    assert time.monotonic() - t0 < 10, "refused connections fail fast"
    message = str(info.value)
    assert f"127.0.0.1:{port}" in message and "cannot reach ComfyUI" in message
    assert "8188" in message and "running" in message, "says how to fix it (server running, right port)"
    with pytest.raises(ComfyConnectionError):
        await client.system_stats()
    with MockServer(port=port) as server:  # the user starts ComfyUI; the same client object now works
        await client.connect()
        outputs = await (await client.submit(tiny(1))).result(timeout=20)
        assert len(outputs) == 1
        # the supervisor runs too: a socket that stays silent is reconciled by polling
        client.quiet_poll, client.poll_interval = 0.2, 0.05
        server.faults.stall(1.5, target="sockets")
        job = await client.submit(tiny(2))
        status = await job.wait(timeout=1.2)
        assert status.state is JobState.COMPLETED, "completed by polling while the socket was stalled"
    await client.aclose()


async def test_wrong_port_names_the_url(mock_server: MockServer) -> None:
    port = closed_port()
    bad = AsyncComfyClient(f"http://127.0.0.1:{port}", max_retries=0)
    with pytest.raises(ComfyConnectionError, match=f"127.0.0.1:{port}"):
        await bad.connect()
    await bad.aclose()
    async with AsyncComfyClient(mock_server.url) as good:
        assert len(await good.run(tiny(3), timeout=20)) == 1


def test_blocking_client_unreachable_is_a_clear_error() -> None:
    port = closed_port()
    with pytest.raises(ComfyConnectionError, match="cannot reach ComfyUI"):
        ComfyClient(f"http://127.0.0.1:{port}", max_retries=0)
    import gc

    gc.collect()  # an HTTP pool left open by the failed constructor warns here (an error in this suite)


async def test_https_against_a_plain_http_server_is_a_tls_error(mock_server: MockServer) -> None:
    url = mock_server.url.replace("http://", "https://")
    client = AsyncComfyClient(url, max_retries=0, timeout=5)
    with pytest.raises(ComfyConnectionError) as info:
        await client.connect()
    message = str(info.value)
    assert "TLS" in message and url in message, message
    assert "verify=" in message or "http://" in message, "says how to fix it"
    await client.aclose()
    async with AsyncComfyClient(mock_server.url) as plain:  # nothing global was broken
        assert len(await plain.run(tiny(4), timeout=20)) == 1


# ---------------------------------------------------------------------------- a server answering garbage


@pytest.fixture
async def garbage_server() -> AsyncIterator[str]:
    """A 127.0.0.1 server that answers 200 with non-JSON to everything (no WebSocket)."""

    async def handler(request: web.Request) -> web.StreamResponse:
        if request.path.endswith("/ws"):
            return web.Response(status=404, text="no websocket here")
        if request.path.endswith("/history/half"):
            return web.Response(text='{"half": {"outputs": ', content_type="application/json")
        return web.Response(text="<html><body>It works! <b>nginx</b></body></html>", content_type="text/html")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_invalid_json_from_the_server_is_a_server_error(garbage_server: str, caplog: Any) -> None:
    caplog.set_level(logging.WARNING, "comfy_nb")
    async with AsyncComfyClient(garbage_server, max_retries=0, timeout=5) as client:
        for call in (client.system_stats, client.object_info, client.queue, lambda: client.models("checkpoints")):
            with pytest.raises(ServerError) as info:
                await call()
            assert "did not answer JSON" in str(info.value) and "ComfyUI server" in str(info.value)
            assert info.value.response is not None and "nginx" in info.value.response.body
        with pytest.raises(ServerError, match=r"POST .*/prompt did not answer JSON"):
            await client.submit(tiny(5))
        assert not client.jobs, "a refused submit leaves no job behind"
        with pytest.raises(ComfyError):
            await client.status("half")
    assert any("polling" in r.getMessage() for r in caplog.records), "the missing socket is reported once"


# ---------------------------------------------------------------------------- WebSocket junk


async def test_unknown_messages_and_truncated_frames_are_ignored(fresh_mock: MockServer, caplog: Any) -> None:
    caplog.set_level(logging.DEBUG, "comfy_nb")
    async with AsyncComfyClient(fresh_mock.url) as client:
        fresh_mock.faults.stall(0.3)  # the job waits while junk arrives on its socket
        job = await client.submit(tiny(6))
        junk: list[str | bytes] = [
            json.dumps({"type": "crystools.monitor", "data": {"cpu_utilization": 3}}),
            json.dumps({"type": "logs", "data": {"entries": [], "size": None}}),
            json.dumps({"type": "executing", "data": "not an object"}),
            json.dumps({"type": "progress", "data": {"value": "x", "max": None, "prompt_id": job.prompt_id}}),
            json.dumps({"type": 7}),
            "{not json",
            json.dumps([1, 2, 3]),
            b"\x00\x00",  # shorter than the event type
            struct.pack(">II", 1, 9) + b"jpeg",  # unknown image format
            struct.pack(">II", 3, 50) + b"1",  # node id longer than the frame
            struct.pack(">II", 4, 500) + b"{}",  # metadata longer than the frame
            struct.pack(">II", 4, 2) + b"[]",  # metadata not an object
            struct.pack(">I", 99) + b"future",  # unknown event type
        ]
        for frame in junk:  # through the server's real socket, in order with its own messages
            fresh_mock.send_frame(frame, client.client_id)
        outputs = await job.result(timeout=20)
        assert len(outputs) == 1
        assert job.status.error is None
        # A sentinel behind the junk on the same socket: once the client has applied it, every junk
        # frame has been read too. Nothing else is sent after the job's last status message.
        fresh_mock.send_frame(json.dumps({"type": "status", "data": {"status": {"exec_info": {"queue_remaining": 77}}}}),
                              client.client_id)
        await wait_until(lambda: client.queue_remaining == 77, what="the sentinel behind the junk")
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "malformed binary frame" in text and "malformed message" in text


# ---------------------------------------------------------------------------- uploads


async def test_oversized_upload_is_refused_with_the_limit(tmp_path: Any) -> None:
    with MockServer(max_upload_size=4096) as server:
        async with AsyncComfyClient(server.url) as client:
            big = os.urandom(20_000)
            with pytest.raises(ServerError) as info:  # the server's 413, before capabilities are known
                await client.upload_image(big, name="big.png")
            assert info.value.status_code == 413 and "upload limit" in str(info.value)
            caps = await client.capabilities()
            assert caps.max_upload_size == 4096
            with pytest.raises(ComfyError) as info2:  # now refused before sending anything
                await client.upload_image(big, name="big.png")
            assert "big.png" in str(info2.value) and "4096" in str(info2.value) and "smaller" in str(info2.value)
            uploads = server.stats.requests["POST /upload/image"]
            from PIL import Image

            name = await client.upload_image(Image.new("RGB", (8, 8), (1, 2, 3)), name="ok.png")
            assert name == "ok.png" and server.stats.requests["POST /upload/image"] == uploads + 1


async def test_upload_of_missing_file_or_junk_type(mock_server: MockServer, tmp_path: Any) -> None:
    async with AsyncComfyClient(mock_server.url) as client:
        with pytest.raises(ComfyError, match="no such file"):
            await client.upload_image(tmp_path / "nope.png")
        with pytest.raises(ComfyError, match="give a path, bytes, a PIL image or a NumPy array"):
            await client.upload_image(12345)
        assert len(await client.run(tiny(7), timeout=20)) == 1


# ---------------------------------------------------------------------------- tasks and config


@pytest.mark.parametrize(
    ("fields", "names"),
    [
        ({"prompt": ""}, ["needs a prompt"]),
        ({"prompt": "x", "width": 100, "height": 64}, ["width", "multiple of 8"]),
        ({"prompt": "x", "width": 64}, ["both width and height"]),
        ({"prompt": "x", "steps": 0}, ["steps", ">= 1"]),
        ({"prompt": "x", "steps": "20"}, ["steps", "'20'"]),
        ({"prompt": "x", "seed": -1}, ["seed", "2^64-1"]),
        ({"prompt": "x", "cfg_scale": 1000}, ["cfg_scale", "0..100"]),
        ({"prompt": "x", "denoise": 2}, ["denoise", "0..1"]),
        ({"prompt": "x", "type": "sound"}, ["type", "image"]),
        ({"type": "upscale"}, ["init_image"]),
        ({"prompt": "x", "type": "inpaint"}, ["init_image"]),
    ],
)
def test_invalid_task_fields_name_the_field(fields: dict[str, Any], names: list[str]) -> None:
    from comfy_nb.workflows import GenerationTask

    with pytest.raises(WorkflowError) as info:
        GenerationTask(**fields)
    for name in names:
        assert name in str(info.value), f"{name!r} missing from {info.value}"


def test_config_file_that_is_not_json_names_the_file(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from comfy_nb.config import ComfyConfig

    monkeypatch.delenv("COMFY_URL", raising=False)  # it would override the file's server_url
    monkeypatch.delenv("COMFY_TOKEN", raising=False)

    bad = tmp_path / "comfy.json"
    bad.write_text("server_url = 'http://127.0.0.1:8188'\n")
    with pytest.raises(ConfigError) as info:
        ComfyConfig.load(bad)
    assert str(bad) in str(info.value) and "not valid JSON" in str(info.value)
    bad.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="JSON object"):
        ComfyConfig.load(bad)
    bad.write_text(json.dumps({"server_url": "127.0.0.1:8188"}))
    with pytest.raises(ConfigError) as info:
        ComfyConfig.load(bad)
    assert str(bad) in str(info.value) and "server_url" in str(info.value)
    bad.write_text(json.dumps({"server_url": "http://127.0.0.1:8188"}))
    assert ComfyConfig.load(bad).server_url == "http://127.0.0.1:8188"


async def test_submit_errors_keep_the_client_usable(mock_server: MockServer) -> None:
    from comfy_nb.errors import PromptValidationError

    async with AsyncComfyClient(mock_server.url) as client:
        with pytest.raises(WorkflowError, match="UI-format"):
            await client.submit({"nodes": [], "links": []})
        with pytest.raises(WorkflowError, match="class_type"):
            await client.submit({"1": {"inputs": {}}})
        bad = tiny(8)
        bad["1"]["inputs"]["width"] = 0
        with pytest.raises(PromptValidationError) as info:
            await client.submit(bad)
        assert "width" in str(info.value) and "EmptyImage" in str(info.value)
        assert not client.jobs
        assert len(await client.run(tiny(9), timeout=20)) == 1
        await wait_until(lambda: not client.jobs, what="no job left")
        await asyncio.sleep(0)
