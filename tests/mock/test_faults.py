"""Fault injection: each mode does what it says, and nothing is lost."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
from _mockwire import Http, Recorder, slow
from captures import capture

from comfy_nb.mock import MockServer

MODELFREE = capture("workflow_modelfree_api.json")


async def _history_when_ready(http: Http, pid: str, timeout: float = 10.0) -> dict[str, Any]:
    """Poll ``/history/{id}`` (each poll is a round trip, no sleeping) until it has the prompt."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        entry = await http.history(pid)
        if entry:
            return entry
    raise AssertionError(f"{pid} never reached the history")


async def test_http_errors_count_status_paths_retry_after(fresh_mock: MockServer) -> None:
    fresh_mock.faults.http_errors(2, status=503, paths=["/queue"], retry_after=1.5)
    async with httpx.AsyncClient(base_url=fresh_mock.url) as c:
        assert (await c.get("/prompt")).status_code == 200  # other paths unaffected
        r = await c.get("/api/queue")
        assert r.status_code == 503 and r.headers["retry-after"] == "1.5"
        assert (await c.get("/queue")).status_code == 503
        assert (await c.get("/queue")).status_code == 200
        fresh_mock.faults.http_errors(1, status=500)
        assert (await c.get("/system_stats")).status_code == 500
        assert (await c.get("/system_stats")).status_code == 200
    assert fresh_mock.stats.http_faults == 3


async def test_drop_sockets_after_messages(fresh_mock: MockServer) -> None:
    async with Http(fresh_mock.url) as http:
        ws = await Recorder(fresh_mock.url).connect()
        await ws.wait_for(lambda m: m.get("type") == "status")
        fresh_mock.faults.drop_sockets(after_messages=3)
        pid = await http.submit(MODELFREE, ws.client_id)
        await ws.wait_closed()
        assert len(ws.messages) == 1 + 3
        # the prompt still completes, and its history is there
        entry = await _history_when_ready(http, pid)
        assert entry["status"]["status_str"] == "success"
    assert fresh_mock.stats.sockets_dropped == 1


async def test_drop_sockets_now_by_client(fresh_mock: MockServer) -> None:
    async with Recorder(fresh_mock.url) as keep:
        gone = await Recorder(fresh_mock.url).connect()
        await gone.wait_for(lambda m: m.get("type") == "status")
        await keep.wait_for(lambda m: m.get("type") == "status")
        fresh_mock.faults.drop_sockets(client_id=gone.client_id)
        await gone.wait_closed()
        assert not keep.closed


async def test_delay_history(fresh_mock: MockServer) -> None:
    fresh_mock.faults.delay_history(0.3, count=1)
    async with Recorder(fresh_mock.url) as ws, Http(fresh_mock.url) as http:
        pid = await http.submit(MODELFREE, ws.client_id)
        await ws.wait_for(lambda m: m.get("type") == "execution_success")
        t0 = time.monotonic()
        assert await http.history(pid) == {}  # the race a client must survive
        await ws.wait_done(pid)
        assert time.monotonic() - t0 > 0.2
        assert (await http.history(pid))["status"]["status_str"] == "success"
        ws.messages.clear()
        pid2 = await http.submit(slow(1, 0.0), ws.client_id)
        await ws.wait_for(lambda m: m.get("type") == "execution_success")
        await ws.wait_done(pid2, timeout=0.25)  # count=1: no delay any more


async def test_stall_worker_and_sockets(fresh_mock: MockServer) -> None:
    async with Recorder(fresh_mock.url) as ws, Http(fresh_mock.url) as http:
        await ws.wait_for(lambda m: m.get("type") == "status")
        fresh_mock.faults.stall(0.3)
        t0 = time.monotonic()
        pid = await http.submit(MODELFREE, ws.client_id)
        await ws.wait_done(pid)
        assert time.monotonic() - t0 >= 0.25
        fresh_mock.faults.stall(0.3, target="sockets")
        t0 = time.monotonic()
        pid = await http.submit(slow(2, 0.0), ws.client_id)
        await ws.wait_done(pid)
        assert time.monotonic() - t0 >= 0.25
        assert (await http.history(pid))["status"]["status_str"] == "success"


async def test_hold_keeps_prompts_queued_until_release(fresh_mock: MockServer) -> None:
    async with Recorder(fresh_mock.url) as ws, Http(fresh_mock.url) as http:
        await ws.wait_for(lambda m: m.get("type") == "status")
        fresh_mock.faults.hold()
        first = await http.submit(MODELFREE, ws.client_id)
        second = await http.submit(MODELFREE, ws.client_id)
        # a queue read after two submits: nothing started, both wait, however long the test takes
        queue = (await http.client.get("/queue")).json()
        assert queue["queue_running"] == [] and [p[1] for p in queue["queue_pending"]] == [first, second]
        assert fresh_mock.stats.prompts_completed == 0
        fresh_mock.faults.release()
        await ws.wait_done(second)
        assert (await http.history(first))["status"]["status_str"] == "success"
        fresh_mock.faults.hold()
        third = await http.submit(MODELFREE, ws.client_id)
        fresh_mock.faults.clear()  # clear() releases a hold too
        await ws.wait_done(third)


async def test_fail_node_by_id_persistent_until_clear(fresh_mock: MockServer) -> None:
    fresh_mock.faults.fail_node("5", message="disk full")
    async with Recorder(fresh_mock.url) as ws, Http(fresh_mock.url) as http:
        for _ in range(2):
            ws.messages.clear()
            pid = await http.submit(MODELFREE, ws.client_id)
            await ws.wait_done(pid)
            err = next(m for m in ws.texts() if m["type"] == "execution_error")["data"]
            assert err["node_id"] == "5" and err["exception_message"] == "disk full\n"
        fresh_mock.faults.clear()
        ws.messages.clear()
        pid = await http.submit(MODELFREE, ws.client_id)
        await ws.wait_done(pid)
        assert any(m["type"] == "execution_success" for m in ws.texts())


async def test_restart_loses_state_and_comes_back(fresh_mock: MockServer) -> None:
    port = fresh_mock.port
    async with Http(fresh_mock.url) as http:
        ws = await Recorder(fresh_mock.url).connect()
        done = await http.submit(MODELFREE, ws.client_id)
        await ws.wait_done(done)
        running = await http.submit(slow(500, 0.01), ws.client_id)
        queued = await http.submit(slow(1, 0.0), ws.client_id)
        await ws.wait_for(lambda m: m.get("type") == "progress")
        await asyncio.to_thread(fresh_mock.restart, 0.05)
        await ws.wait_closed()
        assert fresh_mock.port == port
        q = (await http.client.get("/queue")).json()
        assert q == {"queue_running": [], "queue_pending": []}
        assert await http.history(done) == {} and await http.history(running) == {} and await http.history(queued) == {}
        async with Recorder(fresh_mock.url) as again:
            first = await again.wait_for(lambda m: m.get("type") == "status")
            assert first["data"]["status"]["exec_info"]["queue_remaining"] == 0
            r = await http.client.post("/prompt", json={"prompt": MODELFREE, "client_id": again.client_id})
            assert r.json()["number"] == 0  # the counter restarts too
            await again.wait_done(r.json()["prompt_id"])
            cached = next(m for m in again.texts() if m["type"] == "execution_cached")
            assert cached["data"]["nodes"] == []  # the cache is gone
    assert fresh_mock.stats.restarts == 1
