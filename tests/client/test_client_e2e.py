"""The whole client against the mock server over real sockets."""

from __future__ import annotations

import asyncio
import io
import json
import pathlib
from typing import Any

import httpx
import numpy as np
import psutil
import pytest
from captures import FIXTURES
from PIL import Image

from comfy_nb import AsyncComfyClient, ComfyClient, JobState
from comfy_nb.errors import ComfyConnectionError, ExecutionError, JobCancelled, JobLost, PromptValidationError
from comfy_nb.mock import MockServer


def modelfree() -> dict[str, Any]:
    return dict(json.loads((FIXTURES / "workflow_modelfree_api.json").read_text()))


def tiny(color: int, prefix: str = "e2e/img", size: int = 16) -> dict[str, Any]:
    return {
        "1": {"class_type": "EmptyImage", "inputs": {"width": size, "height": size, "batch_size": 1, "color": color}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": prefix}},
    }


def slow(steps: int = 20, seconds: float = 0.05, seed: int = 1) -> dict[str, Any]:
    return {
        "1": {
            "class_type": "SlowProgressImage",
            "inputs": {"steps": steps, "seconds_per_step": seconds, "width": 32, "height": 32,
                       "send_preview": True, "send_text": False, "seed": seed},
        },
        "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}},
    }


class Counting:
    """An HTTP client for the AsyncComfyClient that counts requests by method and path."""

    def __init__(self, url: str) -> None:
        self.seen: list[str] = []

        async def hook(request: httpx.Request) -> None:
            self.seen.append(f"{request.method} {request.url.path}")

        self.http = httpx.AsyncClient(base_url=url, event_hooks={"request": [hook]})


async def test_modelfree_run_outputs_and_pixels(mock_server: MockServer) -> None:
    async with AsyncComfyClient(mock_server.url) as client:
        job = await client.submit(modelfree())
        outputs = await job.result(timeout=30)
        st = job.status
        assert st.state is JobState.COMPLETED and st.progress == 100
        assert {o.folder_type for o in outputs} == {"temp", "output"}
        saved = next(o for o in outputs if o.folder_type == "output")
        image = await client.load_image(saved)
        assert image.size == (96, 96)
        data = await client.download(saved)
        assert data.startswith(b"\x89PNG")


async def test_a_normal_job_costs_exactly_one_http_request(mock_server: MockServer) -> None:
    counting = Counting(mock_server.url)
    async with AsyncComfyClient(mock_server.url, http_client=counting.http) as client:
        counting.seen.clear()
        for i in range(5):
            job = await client.submit(tiny(i))
            await job.result(timeout=30)
        assert counting.seen == ["POST /prompt"] * 5  # outputs came in `executed` messages
    await counting.http.aclose()


async def test_progress_previews_and_monotone_percent() -> None:
    with MockServer(step_delay=0) as server:
        async with AsyncComfyClient(server.url) as client:
            job = await client.submit(slow(steps=8, seconds=0.01))
            seen: list[Any] = []
            job.subscribe(seen.append)
            await job.wait(30)
    values = [s.progress for s in seen]
    assert values == sorted(values) and values[-1] == 100
    assert any(0 < v < 100 for v in values)
    assert any(s.preview is not None and s.preview.node_id == "1" for s in seen)
    assert {s.step for s in seen if s.steps == 8} >= {1, 4, 8}


async def test_validation_error_names_node_input_and_leaves_client_usable(mock_server: MockServer) -> None:
    bad = tiny(1)
    bad["3"] = {"class_type": "ImageScale", "inputs": {"image": ["1", 0], "upscale_method": "bogus",
                                                       "width": 8, "height": 8, "crop": "disabled"}}
    bad["2"]["inputs"]["images"] = ["3", 0]
    async with AsyncComfyClient(mock_server.url) as client:
        with pytest.raises(PromptValidationError) as info:
            await client.submit(bad)
        text = str(info.value)
        assert "node 3 (ImageScale" in text and "upscale_method" in text and "'bogus' not in" in text
        assert not client.jobs
        assert await (await client.submit(tiny(7))).result(timeout=30)


async def test_partial_200_is_never_silent(mock_server: MockServer, caplog: pytest.LogCaptureFixture) -> None:
    prompt = tiny(3)
    prompt["3"] = {"class_type": "ImageScale", "inputs": {"image": ["1", 0], "upscale_method": "bogus",
                                                          "width": 8, "height": 8, "crop": "disabled"}}
    prompt["4"] = {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "partial"}}
    async with AsyncComfyClient(mock_server.url) as client:
        job = await client.submit(prompt)
        outputs = await job.result(timeout=30)
    assert [o.node_id for o in outputs] == ["2"]
    assert job.status.node_errors and job.status.node_errors[0].node_id == "3"
    assert "invalid outputs" in caplog.text


async def test_execution_error_carries_node_and_exception(fresh_mock: MockServer) -> None:
    fresh_mock.faults.fail_node("EmptyImage", message="out of paint", exception_type="ValueError")
    async with AsyncComfyClient(fresh_mock.url) as client:
        job = await client.submit(tiny(1))
        with pytest.raises(ExecutionError) as info:
            await job.result(timeout=30)
    assert info.value.node_id == "1" and info.value.exception_type == "ValueError"
    assert "out of paint" in str(info.value)


async def test_cancel_pending_and_running_never_touches_another_job(fresh_mock: MockServer) -> None:
    async with AsyncComfyClient(fresh_mock.url) as client:
        running = await client.submit(slow(steps=200, seconds=0.02, seed=1))
        pending = await client.submit(slow(steps=2, seconds=0.01, seed=2))
        keep = await client.submit(tiny(5))
        async for st in running.updates():
            if st.state is JobState.RUNNING:
                break
        queue = await client.queue()
        assert queue.position(pending.prompt_id) == 1 and queue.position(keep.prompt_id) == 2
        assert await client.cancel(pending.prompt_id) is True
        assert pending.status.state is JobState.CANCELLED
        assert await running.cancel() is True
        with pytest.raises(JobCancelled):
            await running.result()
        assert await keep.result(timeout=30)  # the third job still ran
        assert await client.cancel(keep.prompt_id) is False  # already finished


async def test_status_and_watch_a_prompt_submitted_elsewhere(fresh_mock: MockServer) -> None:
    async with httpx.AsyncClient(base_url=fresh_mock.url) as raw:
        r = await raw.post("/prompt", json={"prompt": slow(steps=10, seconds=0.02)})
        pid = r.json()["prompt_id"]
    async with AsyncComfyClient(fresh_mock.url, poll_interval=0.05) as client:
        first = await client.status(pid)
        assert first.state in (JobState.QUEUED, JobState.RUNNING)
        states = [st.state async for st in client.watch(pid)]
        assert states[-1] is JobState.COMPLETED
        final = await client.status(pid)
        assert final.state is JobState.COMPLETED and final.outputs
        with pytest.raises(JobLost):
            await client.status("no-such-prompt")


async def test_uploads_of_every_kind_feed_load_image(mock_server: MockServer, tmp_path: pathlib.Path) -> None:
    picture = Image.new("RGB", (24, 16), (200, 10, 10))
    path = tmp_path / "red.png"
    picture.save(path)
    buf = io.BytesIO()
    picture.save(buf, format="PNG")
    async with AsyncComfyClient(mock_server.url) as client:
        names = [
            await client.upload_image(path),
            await client.upload_image(buf.getvalue(), name="bytes.png"),
            await client.upload_image(picture, name="pil.png", subfolder="nb"),
            await client.upload_image(np.zeros((16, 24, 3), dtype=np.uint8), name="array.png"),
        ]
        assert names[2] == "nb/pil.png"
        for name in names:
            prompt = {
                "1": {"class_type": "LoadImage", "inputs": {"image": name}},
                "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "up"}},
            }
            (out,) = await client.run(prompt, timeout=30)
            assert (await client.load_image(out)).size == (24, 16)


async def test_socket_drop_mid_job_loses_nothing(fresh_mock: MockServer) -> None:
    async with AsyncComfyClient(fresh_mock.url) as client:
        job = await client.submit(slow(steps=30, seconds=0.01))
        fresh_mock.faults.drop_sockets(after_messages=5)
        outputs = await job.result(timeout=30)
    assert job.status.state is JobState.COMPLETED and outputs
    assert fresh_mock.stats.sockets_dropped >= 1 and fresh_mock.stats.ws_connects >= 2


async def test_server_restart_ends_unfinished_jobs_as_lost(fresh_mock: MockServer) -> None:
    async with AsyncComfyClient(fresh_mock.url, poll_interval=0.05) as client:
        job = await client.submit(slow(steps=500, seconds=0.02))
        async for st in job.updates():
            if st.state is JobState.RUNNING:
                break
        await asyncio.to_thread(fresh_mock.restart)
        with pytest.raises(JobLost, match="restarted"):
            await job.result(timeout=30)
        assert await (await client.submit(tiny(9))).result(timeout=30)  # usable again


async def test_polling_only_client_completes(mock_server: MockServer) -> None:
    async with AsyncComfyClient(mock_server.url, websocket=False, poll_interval=0.02) as client:
        outputs = await (await client.submit(tiny(11))).result(timeout=30)
    assert outputs and outputs[0].kind == "image"


async def test_reads_retry_5xx_and_submit_is_not_duplicated(fresh_mock: MockServer) -> None:
    async with AsyncComfyClient(fresh_mock.url) as client:
        fresh_mock.faults.http_errors(2, status=503, paths=["/system_stats"], retry_after=0.01)
        assert (await client.system_stats())["system"]["comfyui_version"]
        fresh_mock.faults.http_errors(1, status=502, paths=["/prompt"])
        outputs = await (await client.submit(tiny(12))).result(timeout=30)
        assert outputs
    assert fresh_mock.stats.prompts_submitted == 1


async def test_unreachable_server_names_the_url() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = AsyncComfyClient(f"http://127.0.0.1:{port}", max_retries=0, timeout=2)
    with pytest.raises(ComfyConnectionError) as info:
        await client.connect()
    assert f"127.0.0.1:{port}" in str(info.value) and "running" in str(info.value)
    await client.aclose()


def test_blocking_client_in_plain_code(mock_server: MockServer, tmp_path: pathlib.Path) -> None:
    with ComfyClient(mock_server.url) as client:
        job = client.submit(tiny(21))
        outputs = job.result(timeout=30)
        assert job.status.state is JobState.COMPLETED
        path = client.save_output(outputs[0], tmp_path)
        assert path.is_file() and tmp_path in path.parents
        assert client.queue().remaining >= 0


async def test_blocking_client_inside_a_running_loop(mock_server: MockServer) -> None:
    client = ComfyClient(mock_server.url)  # as in a notebook cell, where a loop is already running
    try:
        assert client.run(tiny(22), timeout=30)
    finally:
        client.close()


async def test_queue_listener_gets_pushed_updates(fresh_mock: MockServer) -> None:
    async with AsyncComfyClient(fresh_mock.url) as client:
        states: list[Any] = []
        got_pending = asyncio.Event()

        def listener(state: Any) -> None:
            states.append(state)
            if state.pending:
                got_pending.set()

        client.on_queue_change(listener)
        first = await client.submit(slow(steps=50, seconds=0.02))
        await client.submit(tiny(30))
        await asyncio.wait_for(got_pending.wait(), 10)
        await first.cancel()
    assert any(s.pending for s in states)


async def test_deaf_socket_is_noticed_and_replaced(fresh_mock: MockServer) -> None:
    import websockets

    async with AsyncComfyClient(fresh_mock.url, poll_interval=0.05, quiet_poll=0.3) as client:
        connects = fresh_mock.stats.ws_connects
        # a second socket with our clientId steals the registration; its close leaves ours deaf
        async with websockets.connect(f"{fresh_mock.ws_url}?clientId={client.client_id}") as other:
            await other.recv()
        first = await (await client.submit(tiny(40))).result(timeout=30)
        assert first  # finished through reconciliation, not lost
        deadline = asyncio.get_running_loop().time() + 10
        # ours gets replaced: the server took a new connection and the client holds it (the old one
        # is dropped first, so a socket held after the new connection is the new one)
        while fresh_mock.stats.ws_connects < connects + 2 or not client.connected:
            assert asyncio.get_running_loop().time() < deadline, "the deaf socket was not replaced"
            await asyncio.sleep(0.01)
        counting = fresh_mock.stats.history_fetches
        assert await (await client.submit(tiny(41))).result(timeout=30)
        assert fresh_mock.stats.history_fetches == counting  # the new socket hears everything again


async def test_a_server_gone_for_good_fails_unfinished_jobs() -> None:
    server = MockServer(step_delay=0).start()
    async with AsyncComfyClient(server.url, poll_interval=0.05, outage_timeout=0.5, max_retries=0, timeout=2) as client:
        job = await client.submit(slow(steps=500, seconds=0.02))
        async for st in job.updates():
            if st.state is JobState.RUNNING:
                break
        await asyncio.to_thread(server.stop)
        with pytest.raises(JobLost, match="lost contact"):
            await job.result(timeout=30)
        assert not client.jobs


async def test_a_closed_client_opens_no_new_connection_pool(fresh_mock: MockServer) -> None:
    port = int(fresh_mock.url.rsplit(":", 1)[1])

    def connections() -> int:
        """This process's open TCP connections to this test's own mock (its accepted ends have ``port`` local)."""
        return sum(1 for c in psutil.Process().net_connections("tcp") if c.raddr and c.raddr.port == port)

    client = AsyncComfyClient(fresh_mock.url)
    await client.connect()
    await client.system_stats()  # a pooled keep-alive connection besides the socket
    assert connections() >= 2
    await client.aclose()
    for _ in range(200):  # the pool's sockets close on the loop's next turns
        if not connections():
            break
        await asyncio.sleep(0.005)
    assert connections() == 0
    requests = sum(fresh_mock.stats.requests.values())
    with pytest.raises(ComfyConnectionError, match="closed"):
        await client.system_stats()  # e.g. a widget's late background call
    # nothing reached the server and nothing was left open for the garbage collector to complain about
    assert sum(fresh_mock.stats.requests.values()) == requests and connections() == 0
    await client.connect()  # reusable on purpose
    assert (await client.system_stats())["system"]
    await client.aclose()
