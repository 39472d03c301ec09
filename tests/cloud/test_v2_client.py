"""``AsyncComfyClient(kind="v2")`` / ``ComfyClient(kind="v2")`` through a real comfy-api-proxy 0.1.6 in front of
the built-in mock: the same ``Job`` / ``JobStatus`` / ``Output`` as on ComfyUI, and every job ends."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _graphs import slow, tiny
from _proxy import PROXY_TOKEN, ProxyThread
from _relay import Relay
from PIL import Image

from comfy_nb import AsyncComfyClient, ComfyClient, JobState, JobStatus
from comfy_nb.client._v2 import V2Session
from comfy_nb.config import ComfyConfig
from comfy_nb.errors import (
    ClientClosed,
    ExecutionError,
    JobCancelled,
    JobLost,
    NotAvailable,
    PromptValidationError,
    ServerError,
)
from comfy_nb.mock import MockServer
from comfy_nb.widgets import JobView
from comfy_nb.workflows import GenerationTask

Proxied = tuple[MockServer, ProxyThread]


def v2client(url: str, **kw: Any) -> AsyncComfyClient:
    return AsyncComfyClient(url, api_key=PROXY_TOKEN, kind="v2", poll_interval=0.05, **kw)


async def until_running(job: Any) -> None:
    async for status in job.updates():
        if status.state is not JobState.QUEUED:
            return


async def test_submit_is_the_same_job_status_and_output(proxied: Proxied, tmp_path: Path) -> None:
    mock, proxy = proxied
    async with v2client(proxy.url) as client:
        job = await client.submit(tiny(0xFF0000), prompt_id="nb-1", meta={"seed": 1})
        assert job.prompt_id == "nb-1" and job.meta == {"seed": 1} and not job.done
        assert client.jobs == {"nb-1": job}
        [out] = await job.result(timeout=30)
        assert job.status.state is JobState.COMPLETED and job.status.progress == 100
        assert job.status.executed_nodes == {"1", "2"} and job.status.outputs == (out,)
        assert out.kind == "image" and out.node_id == "2" and out.asset_id and out.url.startswith(proxy.url)
        data = await client.download(out)
        image = await client.load_image(out)
        saved = await client.save_output(out, tmp_path)
        assert (await client.status("nb-1")).state is JobState.COMPLETED
        assert client.jobs == {}
    assert Image.open(io.BytesIO(data)).convert("RGB").getpixel((0, 0)) == (255, 0, 0)
    assert image.convert("RGB").getpixel((3, 3)) == (255, 0, 0)
    assert saved.parent == tmp_path and saved.read_bytes() == data
    # the client-made id went as the Idempotency-Key and label; the proxy made its own job id
    assert mock.stats.prompts_completed == 1


async def test_live_status_from_the_stream(proxied: Proxied) -> None:
    _, proxy = proxied
    seen: list[JobStatus] = []
    async with v2client(proxy.url) as client:
        job = await client.submit(slow(steps=20, seconds=0.1))  # 2 s: the proxy throttles events to 2/s
        async for status in job.updates():
            seen.append(status)
    states = [s.state for s in seen]
    assert states[0] is JobState.QUEUED and states[-1] is JobState.COMPLETED and JobState.RUNNING in states
    running = [s for s in seen if s.state is JobState.RUNNING]
    assert any(s.current_node is not None and s.current_node.label == "Slow" for s in running)
    assert any(s.steps == 20 and s.step is not None for s in running)
    assert any(s.preview is not None and s.preview.node_id == "1" for s in running)
    progress = [s.progress for s in seen]
    assert progress == sorted(progress) and 0 < max(p for p in progress if p < 100) < 100 and progress[-1] == 100
    assert seen[-1].executed_nodes == {"1", "2"} and len(seen[-1].outputs) == 1
    assert seen[-1].started_at is not None and seen[-1].finished_at is not None


async def test_failed_refused_and_cancelled_jobs(proxied: Proxied) -> None:
    mock, proxy = proxied
    async with v2client(proxy.url) as client:
        bad = tiny(0)
        bad["1"]["inputs"]["width"] = "wide"
        with pytest.raises(PromptValidationError):
            await client.submit(bad)
        mock.faults.fail_node("EmptyImage", message="boom")
        job = await client.submit(tiny(1))
        with pytest.raises(ExecutionError, match="boom") as failed:
            await job.result(timeout=30)
        assert failed.value.node_id == "1" and job.status.error is not None
        assert job.status.state is JobState.FAILED and job.status.error.class_type == "EmptyImage"

        running = await client.submit(slow(steps=400, seconds=0.05, preview=False))
        waiting = await client.submit(tiny(2))
        await until_running(running)
        assert [e.prompt_id for e in (await client.queue()).pending] == [waiting.prompt_id]
        assert await client.cancel(waiting.prompt_id) is True
        assert await waiting.cancel() is False  # cancelled already
        assert await running.cancel() is True
        for job in (running, waiting):
            with pytest.raises(JobCancelled):
                await job.result(timeout=30)
            assert job.status.state is JobState.CANCELLED
        assert await client.cancel(running.prompt_id) is False  # already over
        assert await client.cancel("no-such-job") is False


async def test_track_and_status_of_a_job_from_another_client(proxied: Proxied) -> None:
    _, proxy = proxied
    async with v2client(proxy.url) as first, v2client(proxy.url) as second:
        job = await first.submit(slow(steps=20, seconds=0.05, preview=False))
        [entry] = (await second.queue()).running or (await second.queue()).pending
        assert not entry.mine  # the other client's: listed by the endpoint's job id
        followed = await second.track(entry.prompt_id)
        assert followed.prompt_id == entry.prompt_id
        [out] = await followed.result(timeout=30)
        assert [o.asset_id for o in await job.result(timeout=30)] == [out.asset_id]
        assert (await second.status(entry.prompt_id)).state is JobState.COMPLETED


async def test_a_job_the_endpoint_forgot_ends_lost_with_a_reason(proxied: Proxied) -> None:
    mock, proxy = proxied
    client = v2client(proxy.url)
    client.settle_time = 0.3  # how long a lone `expired` is re-read before it is believed
    async with client:
        blocker = await client.submit(slow(steps=400, seconds=0.05, preview=False))
        job = await client.submit(tiny(3))
        await until_running(blocker)
        async with httpx.AsyncClient(base_url=mock.url) as native:  # another client deletes it from the queue
            [pending] = (await native.get("/queue")).json()["queue_pending"]
            await native.post("/queue", json={"delete": [pending[1]]})
        with pytest.raises(JobLost, match="stayed expired"):
            await job.result(timeout=30)
        assert job.status.state is JobState.FAILED and job.status.error is not None
        await blocker.cancel()


async def test_upload_image_by_hash_gives_the_value_load_image_takes(proxied: Proxied) -> None:
    mock, proxy = proxied
    png = io.BytesIO()
    Image.new("RGB", (8, 8), (0, 0, 255)).save(png, format="PNG")
    async with v2client(proxy.url) as client:
        name = await client.upload_image(png.getvalue(), name="blue.png")
        assert name.startswith("asset:") and name.endswith("/blue.png")
        other = await client.upload_image(Image.new("RGB", (8, 8), (0, 0, 254)), name="other.png")
        assert other != name and other.endswith("/other.png")
        assert await client.upload_image(png.getvalue(), name="blue.png") == name  # from-hash: no second upload
        graph = {
            "1": {"class_type": "LoadImage", "inputs": {"image": name}},
            "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "v2c/in"}},
        }
        [out] = await client.run(graph, timeout=30)
        data = await client.download(out)
        with pytest.raises(NotAvailable, match="mask_for"):
            await client.upload_image(png.getvalue(), mask_for=name)
    assert Image.open(io.BytesIO(data)).convert("RGB").getpixel((0, 0)) == (0, 0, 255)
    assert mock.stats.requests["POST /upload/image"] == 2  # blue.png once, other.png once


async def test_methods_without_a_v2_equivalent_say_so(proxied: Proxied) -> None:
    _, proxy = proxied
    async with v2client(proxy.url) as client:
        for call in (client.object_info(), client.node_defs(), client.models("checkpoints"), client.history(),
                     client.choices("KSampler", "sampler_name"), client.system_stats(), client.interrupt(),
                     client.capabilities()):
            with pytest.raises(NotAvailable) as info:
                await call
            assert "is not available on a Comfy API v2 endpoint" in str(info.value)
        with pytest.raises(NotAvailable, match="partial_targets"):
            await client.submit(tiny(4), partial_targets=["2"])
        assert await client.queue() == (await client.queue())  # the jobs list stands in for the queue
    assert PROXY_TOKEN not in repr(client) and "auth=***" in repr(client) and client.auth == "api_key"


async def test_closing_the_client_releases_every_waiter(proxied: Proxied) -> None:
    _, proxy = proxied
    client = v2client(proxy.url)
    await client.connect()
    job = await client.submit(slow(steps=400, seconds=0.05, preview=False))
    await until_running(job)
    waiter = asyncio.ensure_future(job.wait())
    updates = job.updates()
    await updates.__anext__()
    await client.aclose()
    with pytest.raises(ClientClosed):
        await waiter
    with pytest.raises(ClientClosed):
        await updates.__anext__()
    with pytest.raises(ClientClosed):
        await client.submit(tiny(5))
    async with v2client(proxy.url) as other:  # it still runs there: a new client follows it by its id
        again = await other.track(job.prompt_id)
        assert again.prompt_id == job.prompt_id and again.status.state is JobState.RUNNING
        assert await other.cancel(job.prompt_id) is True
        with pytest.raises(JobCancelled):
            await again.result(timeout=30)


async def test_first_use_connects_and_a_closed_client_stays_closed(proxied: Proxied) -> None:
    _, proxy = proxied
    client = v2client(proxy.url)
    [out] = await (await client.submit(tiny(8))).result(timeout=30)  # no connect() first, as on ComfyUI
    connected = [client.connected]
    await client.aclose()
    connected.append(client.connected)
    assert connected == [True, False]
    for call in (client.download(out), client.status("x"), client.queue()):
        with pytest.raises(ClientClosed):
            await call


def test_the_blocking_client(proxied: Proxied) -> None:
    _, proxy = proxied
    with ComfyClient(proxy.url, api_key=PROXY_TOKEN, kind="v2", poll_interval=0.05) as client:
        job = client.submit(tiny(0x00FF00))
        [out] = job.result(timeout=30)
        data = client.download(out)
        assert client.status(job.prompt_id).state is JobState.COMPLETED
        with pytest.raises(NotAvailable, match=r"^queue|^history"):
            client.history()
    assert Image.open(io.BytesIO(data)).convert("RGB").getpixel((0, 0)) == (0, 255, 0)


def test_a_task_and_its_job_view_work_unchanged() -> None:
    """``submit_task`` (the built-in templates, no node definitions on v2) and a ``JobView`` fed by a v2 job."""
    with MockServer(step_delay=0.01, jobs_api=True) as mock, ProxyThread(mock.url, token=PROXY_TOKEN) as proxy, \
            ComfyClient(proxy.url, api_key=PROXY_TOKEN, kind="v2", config=ComfyConfig(server_url=proxy.url)) as client:
        job = client.submit_task(GenerationTask(prompt="a lighthouse", steps=12, width=64, height=64))
        view = JobView(job)
        job.wait(60)
        deadline, tick = time.monotonic() + 30, threading.Event()
        while not (view.outputs and view.outputs[0]["thumb"]) and time.monotonic() < deadline:
            tick.wait(0.02)  # the thumbnail is fetched on the widgets' thread pool
        assert view.state == "completed" and view.progress == 100.0
        assert view.outputs[0]["thumb"].startswith("data:image/")
        assert repr(view) == "JobView(prompt='a lighthouse', sampler='euler', steps=12)"


async def test_an_expired_link_is_renewed_from_the_asset_and_the_key_stays_home(proxied: Proxied) -> None:
    _, proxy = proxied
    async with v2client(proxy.url) as client:
        [out] = await client.run(tiny(0x0000FF), timeout=30)
        stale = dataclasses.replace(out, url=f"{proxy.url}/api/v2/assets/not-an-asset/content")
        assert await client.download(stale) == await client.download(out)
    async with v2client(proxy.url, max_download_size=64) as small:
        with pytest.raises(ServerError, match="over this client's limit of 64 bytes"):
            await small.download(out)
    with pytest.raises(ServerError, match="check the API key") as refused:
        await AsyncComfyClient(proxy.url, api_key="wrong-key-SECRET", kind="v2").connect()
    assert "wrong-key-SECRET" not in str(refused.value) and PROXY_TOKEN not in str(refused.value)


# ---------------------------------------------------------------------------- adversarial


@pytest.fixture
async def relayed(proxied: Proxied) -> AsyncIterator[tuple[MockServer, ProxyThread, Relay]]:
    mock, proxy = proxied
    relay = await Relay(proxy.url).start()
    try:
        yield mock, proxy, relay
    finally:
        await relay.stop()


async def test_proxy_killed_mid_job_ends_it_failed_with_the_reason(proxied: Proxied) -> None:
    _, proxy = proxied
    async with v2client(proxy.url, outage_timeout=0.5, max_retries=0) as client:
        job = await client.submit(slow(steps=400, seconds=0.05, preview=False))
        await until_running(job)
        proxy.stop()
        with pytest.raises(JobLost, match=r"lost contact with .* client\.track"):
            await job.result(timeout=60)
        assert job.status.state is JobState.FAILED and client.jobs == {}


async def test_malformed_job_bodies_end_the_job_with_the_reason(relayed: tuple[MockServer, ProxyThread, Relay]) -> None:
    """The polls go bad while the job runs with its event stream open: only polls that fit the contract
    count as heard, so the job ends after three bad ones (the proxy's own job still runs)."""
    _, _, relay = relayed
    async with v2client(relay.url) as client:
        job = await client.submit(slow(steps=400, seconds=0.05))
        async for status in job.updates():
            if status.step:  # a progress event: the stream is open and speaking
                break
        relay.corrupt_jobs = True
        with pytest.raises(JobLost, match="does not fit the v2 contract"):
            await job.result(timeout=60)
    assert relay.seen["job"] >= 3 and relay.seen["events"] == 1


async def test_a_stream_that_stops_does_not_stop_the_job(relayed: tuple[MockServer, ProxyThread, Relay]) -> None:
    _, _, relay = relayed
    relay.events = "mute"
    async with v2client(relay.url) as client:
        job = await client.submit(slow(steps=6, seconds=0.05, preview=False))
        [out] = await job.result(timeout=60)  # polling is the truth
        assert relay.muted.is_set() and out.node_id == "2"
        assert (await client.download(out))[:4] == b"\x89PNG"


async def test_a_bug_in_following_ends_the_job_instead_of_hanging(
    proxied: Proxied, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, proxy = proxied

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    async with v2client(proxy.url) as client:
        monkeypatch.setattr(V2Session, "wait", broken)
        job = await client.submit(tiny(7))
        with pytest.raises(JobLost, match=r"broke \(RuntimeError: a bug\)"):
            await job.result(timeout=30)


async def test_queue_listeners_hear_of_submits_and_ends(proxied: Proxied) -> None:
    _, proxy = proxied
    states: list[tuple[int, int]] = []
    changed = asyncio.Event()

    def on_queue(state: Any) -> None:
        states.append((len(state.running), len(state.pending)))
        changed.set()

    async with v2client(proxy.url) as client:
        unsubscribe = client.on_queue_change(on_queue)
        job = await client.submit(slow(steps=40, seconds=0.05, preview=False))  # 2 s: read while it is there
        await asyncio.wait_for(changed.wait(), 30)
        await job.result(timeout=30)
        while states[-1] != (0, 0):  # the end of the job causes one more read
            changed.clear()
            await asyncio.wait_for(changed.wait(), 30)
        unsubscribe()
    assert states[0] in ((0, 1), (1, 0)) and states[-1] == (0, 0)


async def test_an_auto_client_finds_the_v2_endpoint_on_its_first_call(proxied: Proxied) -> None:
    """No ``kind`` and no ``connect()``: the first call detects the endpoint and goes the v2 way."""
    _, proxy = proxied
    client = AsyncComfyClient(proxy.url, api_key=PROXY_TOKEN, poll_interval=0.05)
    kinds = [client.kind]
    try:
        job = await client.submit(tiny(0x00FF00, "v2c/auto"))
        kinds.append(client.kind)
        assert kinds == [None, "v2"] and client.connected
        [out] = await job.result(timeout=30)
        assert out.asset_id and (await client.load_image(out)).getpixel((0, 0)) == (0, 255, 0)
    finally:
        await client.aclose()
    assert PROXY_TOKEN not in repr(client)


async def test_a_pool_runs_a_sweep_on_a_v2_endpoint_beside_a_comfyui(proxied: Proxied, tmp_path: Path) -> None:
    """A v2 endpoint cannot list its nodes: the pool places on it without that check (the endpoint
    validates at submit); cells run on both kinds of server."""
    from comfy_nb.experiments import ServerPool, Sweep, run_sweep

    _, proxy = proxied
    task = GenerationTask(prompt="a lighthouse", steps=2, width=64, height=64)
    with MockServer(step_delay=0.01) as local:
        async with v2client(proxy.url) as fleet, ServerPool([local.url, fleet]) as pool:
            assert (await pool.build_context())[1] is not None  # the ComfyUI's node definitions, listed first
            run = await run_sweep(pool, Sweep(task, seed=[1, 2, 3, 4]), concurrency=4, output_dir=tmp_path)
            await run.wait(60)
            assert [(s.url, s.up, s.completed) for s in pool.stats()] == [(local.url, True, 2), (proxy.url, True, 2)]
    assert run.counts() == {"completed": 4}
    assert {row["server"] for row in run.table()} == {local.url, proxy.url}


def test_the_config_panel_tests_a_v2_endpoint(proxied: Proxied) -> None:
    """"Test connection" on a v2 endpoint: connected, the kind detected, no server stats asked of an API
    that has none (not a failure), and the key nowhere in what the panel shows."""
    from comfy_nb.widgets import ConfigPanel
    from comfy_nb.widgets._server_info import caps_html

    _, proxy = proxied
    panel = ConfigPanel(ComfyConfig(server_url=proxy.url, api_key=PROXY_TOKEN))
    caps, kind, checkpoints, _vaes, _loras = panel.test_connection().result(60)
    assert caps is None and kind == "Comfy API v2 (detected)" and checkpoints == []
    shown = caps_html(caps, kind)
    assert "Connected" in shown and "Comfy API v2 (detected)" in shown and "does not report" in shown
    assert PROXY_TOKEN not in shown + repr(panel)
