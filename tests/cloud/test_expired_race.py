"""Issue 16's race through the real comfy-api-proxy 0.1.6, made deterministic.

The proxy reads ``/history/{id}`` and then ``/queue``; a job that finishes between the two reads is
in neither and is reported ``expired``. A pass-through gate between the proxy and the mock holds the
proxy's first ``GET /queue`` until the mock says its queue is empty (its ``status`` broadcast, sent
after the history entry is written), so that poll always lands in the gap.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from _proxy import PROXY_TOKEN, ProxyThread
from aiohttp import web

from comfy_nb import AsyncComfyClient, JobState
from comfy_nb.client._v2 import V2Session
from comfy_nb.errors import JobLost
from comfy_nb.mock import MockServer


class Gate:
    """Forwards HTTP to the mock; holds the first ``GET /queue`` after a submit until the job is done."""

    def __init__(self, upstream: MockServer) -> None:
        self.upstream = upstream
        self.url = ""
        self.held = 0
        self.empty_after_hold = 0  # held /queue reads answered with an empty queue (the gap)
        self._idle = asyncio.Event()
        self._armed = False
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None
        self._ws_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._http = aiohttp.ClientSession()
        ws = await self._http.ws_connect(self.upstream.ws_url + "?clientId=gate")
        await ws.receive()  # the hello status (queue empty), read before any submit can pass
        self._ws_task = asyncio.ensure_future(self._watch(ws))
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def stop(self) -> None:
        if self._ws_task is not None:
            self._ws_task.cancel()
            await asyncio.gather(self._ws_task, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
        if self._http is not None:
            await self._http.close()

    async def _watch(self, ws: aiohttp.ClientWebSocketResponse[bool]) -> None:
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            if data.get("type") == "status":
                remaining = data["data"]["status"]["exec_info"]["queue_remaining"]
                if remaining == 0:
                    self._idle.set()
                else:
                    self._idle.clear()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        assert self._http is not None
        if request.method == "POST" and request.path == "/prompt":
            self._armed = True
            self._idle.clear()
        held = request.method == "GET" and request.path == "/queue" and self._armed
        if held:
            self._armed = False
            self.held += 1
            await asyncio.wait_for(self._idle.wait(), 30)  # the job finished while this read was in flight
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        async with self._http.request(
            request.method, self.upstream.url + request.rel_url.path_qs, data=body or None, headers=headers
        ) as upstream:
            payload = await upstream.read()
            if held and json.loads(payload) == {"queue_running": [], "queue_pending": []}:
                self.empty_after_hold += 1
            return web.Response(body=payload, status=upstream.status, content_type=upstream.content_type)


@pytest.fixture
async def gated() -> AsyncIterator[tuple[MockServer, Gate, ProxyThread]]:
    with MockServer(step_delay=0, jobs_api=True) as mock:
        gate = Gate(mock)
        await gate.start()
        try:
            with ProxyThread(gate.url, token=PROXY_TOKEN) as proxy:
                yield mock, gate, proxy
        finally:
            await gate.stop()


def slow() -> dict[str, Any]:
    return {
        "1": {
            "class_type": "SlowProgressImage",
            "inputs": {"steps": 4, "seconds_per_step": 0.02, "width": 16, "height": 16,
                       "send_preview": False, "send_text": False, "seed": 3},
        },
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "race/img"}},
    }


async def test_the_proxy_reports_expired_and_the_session_still_gets_the_outputs(
    gated: tuple[MockServer, Gate, ProxyThread],
) -> None:
    mock, gate, proxy = gated
    async with V2Session(proxy.url, api_key=PROXY_TOKEN, poll_interval=0.02, settle_time=5) as session:
        job = await session.submit(slow())
        # wait's first poll: history not yet; queue held until done -> in neither -> "expired"
        outputs = await session.result(job.id, timeout=30)
    assert gate.held == 1 and gate.empty_after_hold == 1
    assert [o.node_id for o in outputs] == ["2"]
    assert mock.stats.prompts_completed == 1


async def test_believing_the_first_terminal_answer_loses_the_job(
    gated: tuple[MockServer, Gate, ProxyThread],
) -> None:
    """The control (what comfy-sdk does): with no settling the same race ends in JobLost."""
    _, gate, proxy = gated
    async with V2Session(proxy.url, api_key=PROXY_TOKEN, poll_interval=0.02, settle_time=0) as session:
        job = await session.submit(slow())
        with pytest.raises(JobLost):
            await session.result(job.id, timeout=30)
    assert gate.held == 1 and gate.empty_after_hold == 1


async def test_the_gate_reproduces_expired_on_a_plain_read(gated: tuple[MockServer, Gate, ProxyThread]) -> None:
    _, _, proxy = gated
    async with V2Session(proxy.url, api_key=PROXY_TOKEN) as session:
        job = await session.submit(slow())
        assert (await session.get(job.id)).status == "expired"
        assert (await session.get(job.id)).status == "succeeded"


async def test_the_job_api_loses_no_job_to_the_race(gated: tuple[MockServer, Gate, ProxyThread]) -> None:
    """The same race through ``AsyncComfyClient(kind="v2")``: the Job ends completed with its output."""
    mock, gate, proxy = gated
    async with AsyncComfyClient(proxy.url, api_key=PROXY_TOKEN, kind="v2", poll_interval=0.02) as client:
        job = await client.submit(slow())
        [out] = await job.result(timeout=30)
        assert (await client.download(out))[:4] == b"\x89PNG"
    assert gate.held == 1 and gate.empty_after_hold == 1  # one of the proxy's reads landed in the gap
    assert job.status.state is JobState.COMPLETED and mock.stats.prompts_completed == 1
