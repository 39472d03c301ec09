"""V2Session through a real ``comfy-api-proxy`` 0.1.6 in front of the built-in mock (all on 127.0.0.1)."""

from __future__ import annotations

import contextlib
import io
from collections import Counter
from typing import Any

import httpx
import pytest
from _graphs import slow, tiny
from _proxy import PROXY_TOKEN, ProxyThread
from PIL import Image

from comfy_nb.client._v2 import V2Session
from comfy_nb.errors import ExecutionError, JobCancelled, PromptValidationError, ServerError
from comfy_nb.mock import MockServer
from comfy_nb.protocol import V2Event, V2OutputEvent, V2PreviewEvent, V2ProgressEvent, V2StatusEvent

Proxied = tuple[MockServer, ProxyThread]


def session(proxy: ProxyThread, **kw: Any) -> V2Session:
    return V2Session(proxy.url, api_key=PROXY_TOKEN, poll_interval=0.05, **kw)


async def test_submit_wait_and_download_pixels(proxied: Proxied) -> None:
    mock, proxy = proxied
    async with session(proxy) as s:
        job = await s.submit(tiny(0xFF0000), client_id="e2e-1")
        assert job.status == "queued" and job.metadata == "comfy_nb:e2e-1"
        outputs = await s.result(job.id, timeout=30)
        [out] = outputs
        assert out.type == "image" and out.name.startswith("img_") and out.node_id == "2"
        data = await s.download(out)
    assert Image.open(io.BytesIO(data)).convert("RGB").getpixel((0, 0)) == (255, 0, 0)
    # the proxy used the mock's native routes; its job id is the mock's prompt id
    async with httpx.AsyncClient(base_url=mock.url) as http:
        assert job.id in (await http.get(f"/history/{job.id}")).json()


async def test_events_stream_progress_previews_outputs_and_final_status(proxied: Proxied) -> None:
    """The stream read to its end (the proxy closes it after the terminal status and the outputs); then
    ``wait(on_event=...)`` of a second job: the poller, not the stream, decides when it returns."""
    _, proxy = proxied
    events: list[V2Event] = []
    live: list[V2Event] = []
    async with session(proxy) as s:
        job = await s.submit(slow(steps=8, seconds=0.15))
        async for event in s.events(job.id):
            events.append(event)
        done = await s.wait(job.id, timeout=60)
        second = await s.submit(slow(steps=40, seconds=0.05))
        assert (await s.wait(second.id, timeout=60, on_event=live.append)).status == "succeeded"
    assert done.status == "succeeded" and any(isinstance(e, V2StatusEvent) for e in live)
    kinds = Counter(type(e).__name__ for e in events)
    assert kinds[V2StatusEvent.__name__] >= 2 and kinds[V2ProgressEvent.__name__] >= 1
    assert kinds[V2PreviewEvent.__name__] >= 1 and kinds[V2OutputEvent.__name__] == 1
    previews = [e for e in events if isinstance(e, V2PreviewEvent)]
    assert Image.open(io.BytesIO(previews[0].data)).size[0] > 0
    last_status = [e for e in events if isinstance(e, V2StatusEvent)][-1]
    assert last_status.status == "succeeded"


async def test_cancel_a_running_job(proxied: Proxied) -> None:
    _, proxy = proxied
    async with session(proxy) as s:
        job = await s.submit(slow(steps=200, seconds=0.05))
        async with contextlib.aclosing(s.events(job.id)) as stream:  # closed here, not whenever GC finds it
            async for event in stream:
                if isinstance(event, V2ProgressEvent):
                    break  # it is running
        answer = await s.cancel(job.id)
        # the proxy re-reads after cancelling: the interrupt may land between its two reads (expired)
        assert answer.status in ("canceling", "canceled", "expired")
        with pytest.raises(JobCancelled):
            await s.result(job.id, timeout=30)


async def test_cancel_a_pending_job_reads_as_canceled_not_lost(proxied: Proxied) -> None:
    _, proxy = proxied
    async with session(proxy, settle_time=1.0) as s:
        blocker = await s.submit(slow(steps=200, seconds=0.05))
        job = await s.submit(tiny(0x00FF00))
        assert (await s.get(job.id)).status == "queued"
        await s.cancel(job.id)
        with pytest.raises(JobCancelled):
            await s.result(job.id, timeout=30)
        await s.cancel(blocker.id)
        with pytest.raises(JobCancelled):
            await s.result(blocker.id, timeout=30)


async def test_upload_asset_by_hash_and_use_it_as_input(proxied: Proxied) -> None:
    mock, proxy = proxied
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (0, 0, 255)).save(buf, format="PNG")
    async with session(proxy) as s:
        asset = await s.upload(buf.getvalue(), "blue.png")
        assert asset.created_new is True and await s.has_hash(asset.hash or "")
        again = await s.upload(buf.getvalue(), "other-name.png")
        assert again.id == asset.id  # from-hash hit: the bytes were not sent again
        graph = {
            "1": {"class_type": "LoadImage", "inputs": {"image": asset.reference()}},
            "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "v2/in"}},
        }
        job = await s.submit(graph)
        [out] = await s.result(job.id, timeout=30)
        data = await s.download(out)
    assert Image.open(io.BytesIO(data)).convert("RGB").getpixel((0, 0)) == (0, 0, 255)
    assert mock.stats.requests["POST /upload/image"] == 1


async def test_errors_come_back_typed(proxied: Proxied) -> None:
    mock, proxy = proxied
    async with session(proxy) as s:
        bad = tiny(0)
        bad["1"]["inputs"]["width"] = "wide"
        with pytest.raises(PromptValidationError) as refused:
            await s.submit(bad)
        assert refused.value.error_type == "invalid_workflow"
        mock.faults.fail_node("EmptyImage", message="boom")
        job = await s.submit(tiny(1))
        with pytest.raises(ExecutionError, match="boom"):
            await s.result(job.id, timeout=30)
    async with V2Session(proxy.url, api_key="not-the-token") as wrong:
        with pytest.raises(ServerError, match="check the API key") as info:
            await wrong.submit(tiny(2))
    assert "not-the-token" not in str(info.value)


async def test_the_mock_answers_every_route_the_proxy_calls(proxied: Proxied) -> None:
    """Drive every v2 operation, then check the proxy never got a 404/405 from the mock."""
    mock, proxy = proxied
    buf = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buf, format="PNG")
    async with session(proxy) as s:
        asset = await s.upload(buf.getvalue(), "x.png")
        job = await s.submit(slow(steps=4, seconds=0.05))
        await s.wait(job.id, timeout=30)
        [out] = (await s.get(job.id)).outputs
        await s.download(out)
        await s.download(asset)
        running = await s.submit(slow(steps=200, seconds=0.05))
        async with contextlib.aclosing(s.events(running.id)) as stream:
            async for event in stream:
                if isinstance(event, V2ProgressEvent):
                    break
        await s.cancel(running.id)
        await s.wait(running.id, timeout=30)
        await s.find("nobody")
    used = {k for k, v in mock.stats.requests.items() if v}
    for route in ("POST /prompt", "GET /history/{prompt_id}", "GET /queue", "GET /ws", "POST /upload/image",
                  "GET /view", "POST /jobs/{job_id}/cancel"):
        assert route in used, (route, used)
    assert not mock.stats.unrouted, mock.stats.unrouted  # no request the mock has no route for
