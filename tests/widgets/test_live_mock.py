"""Widgets driven by real jobs on the mock server (traitlet values, throttling counted)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from comfy_nb.client import AsyncComfyClient, ComfyClient
from comfy_nb.config import ComfyConfig
from comfy_nb.errors import ComfyConnectionError
from comfy_nb.mock import MockServer
from comfy_nb.widgets import ConfigPanel, Gallery, JobView, QueuePanel, Studio, TaskBuilder
from comfy_nb.workflows import GenerationTask

from .conftest import front_msg, front_update, state_updates, update_times, wait_for

TIMEOUT = 60


@pytest.fixture
def server() -> Iterator[MockServer]:
    with MockServer(step_delay=0.02) as m:
        yield m


@pytest.fixture
def client(server: MockServer) -> Iterator[ComfyClient]:
    c = ComfyClient(server.url, config=ComfyConfig(server_url=server.url))
    yield c
    c.close()


def test_jobview_message_rate_for_1000_progress_events_per_second(capsys: pytest.CaptureFixture[str]) -> None:
    """A job that streams ~1,000 progress events/s: the view sends at most ~20 comm messages/s."""
    with MockServer(step_delay=0.001, sampler_previews=False) as m:
        c = ComfyClient(m.url, config=ComfyConfig(server_url=m.url))
        try:
            job = c.submit_task(GenerationTask(prompt="rate test", steps=2000, width=64, height=64))
            view = JobView(job)
            events: list[float] = []
            job.subscribe(lambda st: events.append(time.monotonic()))
            job.wait(TIMEOUT)
            wait_for(lambda: view.state == "completed", what="final state in the view")
            ups = state_updates(view)
            running_events = [t for t in events]
            duration = max(running_events[-1] - running_events[0], 1e-6)
            event_rate = len(running_events) / duration
            msg_rate = len(ups) / duration
            with capsys.disabled():
                print(f"\n[widget traffic] {len(running_events)} job events in {duration:.2f} s "
                      f"({event_rate:.0f}/s) -> {len(ups)} comm messages ({msg_rate:.1f}/s)")
            assert event_rate > 100, "the job must really stream fast"
            # the throttle's guarantee: one message per 55 ms window over the span the messages were sent
            # in, plus the view's setup messages (title, node count), the first update, the sampler's last
            # step (sent at once so "step n/n" shows), the final one and the thumbnail
            times = update_times(view)
            span = times[-1] - times[0]
            assert len(ups) <= span / 0.055 + 1 + 6, f"{len(ups)} messages in {span:.2f} s {[sorted(u) for u in ups]}"
            assert len(ups) >= min(10, duration * 10), "the view must update live"
            assert (view.progress == 100.0 and ups[-1].get("state") == "completed") or view.state == "completed"
            wait_for(lambda: view.outputs and view.outputs[0]["thumb"].startswith("data:image/jpeg"),
                     what="output thumbnail")
        finally:
            c.close()


def test_jobview_live_progress_node_steps_and_preview(client: ComfyClient) -> None:
    job = client.submit_task(GenerationTask(prompt="a lighthouse", steps=12, width=256, height=256))
    view = JobView(job)
    seen: dict[str, Any] = {"progress": set(), "steps": set(), "preview": False, "node": set()}

    def sample(_c: Any = None) -> None:
        seen["progress"].add(view.progress)
        if view.steps:
            seen["steps"].add(view.step)
        if view.node:
            seen["node"].add(view.node)
        if view.preview:
            seen["preview"] = True

    view.observe(sample, names=["progress", "step", "preview", "node"])
    job.wait(TIMEOUT)
    wait_for(lambda: view.state == "completed", what="completed")
    assert view.progress == 100.0 and len(seen["progress"]) >= 3
    assert seen["preview"], "a sampler preview reached the view"
    assert "KSampler" in " ".join(seen["node"]) or seen["node"], seen["node"]
    assert len(seen["steps"]) >= 2
    assert view.elapsed is not None and view.elapsed > 0 and view.eta is None
    assert view.title == "a lighthouse"
    wait_for(lambda: view.outputs and view.outputs[0]["thumb"], what="thumbnail")
    assert view.outputs[0]["kind"] == "image"
    assert repr(view) == "JobView(prompt='a lighthouse', sampler='euler', steps=12)"


def test_jobview_cancel_button_cancels_running_job(server: MockServer, client: ComfyClient) -> None:
    job = client.submit_task(GenerationTask(prompt="long", steps=200, width=64, height=64))
    view = JobView(job)
    wait_for(lambda: view.state == "running" and view.step > 0, TIMEOUT, "running")
    front_msg(view, {"type": "cancel"})
    assert view.cancel_requested
    job.wait(TIMEOUT)
    wait_for(lambda: view.state == "cancelled", TIMEOUT, "cancelled in the view")


def test_jobview_shows_server_error(server: MockServer, client: ComfyClient) -> None:
    server.faults.fail_node("KSampler", "<script>alert('x')</script> CUDA out of memory",
                            exception_type="torch.OutOfMemoryError", count=1)
    job = client.submit_task(GenerationTask(prompt="boom", steps=4, width=64, height=64))
    view = JobView(job)
    job.wait(TIMEOUT)
    wait_for(lambda: view.state == "failed", TIMEOUT, "failed")
    assert view.error["class_type"] == "KSampler" and view.error["node"]
    assert "CUDA out of memory" in view.error["message"]
    assert view.error["type"] == "torch.OutOfMemoryError"


async def test_jobview_with_async_client(server: MockServer) -> None:
    async with AsyncComfyClient(server.url, config=ComfyConfig(server_url=server.url)) as c:
        job = await c.submit_task(GenerationTask(prompt="async fox", steps=3, width=64, height=64))
        view = JobView(job)
        await job.wait(TIMEOUT)
        assert job.status.terminal
        import asyncio

        for _ in range(500):
            if view.state == "completed" and view.outputs and view.outputs[0]["thumb"]:
                break
            await asyncio.sleep(0.01)
        assert view.state == "completed" and view.outputs[0]["thumb"].startswith("data:image/")


def test_queue_panel_lists_cancels_and_clears_pending(server: MockServer, client: ComfyClient) -> None:
    panel = QueuePanel(client)
    jobs = [client.submit_task(GenerationTask(prompt=f"queued {i}", steps=100, width=64, height=64))
            for i in range(4)]
    wait_for(lambda: len(panel.running) == 1 and panel.pending_total == 3, TIMEOUT, "queue rows")
    assert [r["label"] for r in panel.pending] == ["queued 1", "queued 2", "queued 3"]
    assert all(r["mine"] for r in panel.pending)
    front_msg(panel, {"type": "cancel", "prompt_id": jobs[3].prompt_id})
    wait_for(lambda: panel.pending_total == 2, TIMEOUT, "row cancelled")
    front_msg(panel, {"type": "clear"})
    wait_for(lambda: panel.pending_total == 0, TIMEOUT, "cleared")
    for j in jobs[1:]:
        assert j.wait(TIMEOUT).state.value == "cancelled"
    front_msg(panel, {"type": "cancel", "prompt_id": jobs[0].prompt_id})  # the running row
    assert jobs[0].wait(TIMEOUT).state.value == "cancelled"
    wait_for(lambda: not panel.running and not panel.cancelling, TIMEOUT, "empty queue")


def test_task_builder_queues_without_blocking_and_feeds_gallery(server: MockServer, client: ComfyClient) -> None:
    gallery = Gallery(client=client)
    tb = TaskBuilder(client, gallery=gallery)
    # each list arrives on its own answer: wait for all of them
    wait_for(lambda: "sd15-mock.safetensors" in offered(tb.checkpoint)
             and "euler_ancestral" in offered(tb.sampler) and "karras" in offered(tb.scheduler),
             TIMEOUT, "server lists")
    tb.prompt.value = "<b>fox</b> in snow"
    tb.size.value = "768 × 768 (1:1)"
    assert (tb.width.value, tb.height.value) == (768, 768)
    tb.width.value, tb.height.value = 64, 64
    tb.steps.value = 3
    tb.seed.value = 10
    tb.seed_mode.value = "increment"
    tb.batch.value = 2
    task = tb.task
    assert isinstance(task, GenerationTask)
    assert task.checkpoint is None  # no preselected checkpoint: the workflow picks one of its family
    assert (task.prompt, task.width, task.steps, task.seed, task.cfg_scale) == ("<b>fox</b> in snow", 64, 3, 10, 7.0)
    # Queue must not block: the client's loop is held while the button is clicked, so a click that
    # waited for a submit would return only once the hold gave up
    held, release = threading.Event(), threading.Event()

    async def hold_the_loop() -> bool:
        held.set()
        return release.wait(TIMEOUT)  # blocks the loop thread on purpose: no submit gets through

    holder = client.spawn(hold_the_loop())
    assert held.wait(TIMEOUT)
    tb.queue_button.click()
    release.set()
    assert holder.result(TIMEOUT), "Queue must not block"
    assert tb.seed.value == 12
    wait_for(lambda: len(tb.jobs) == 2, TIMEOUT, "two jobs queued")
    assert sorted(j.meta["seed"] for j in tb.jobs) == [10, 11]
    wait_for(lambda: len(tb.job_box.children) == 2, TIMEOUT, "a view per job")
    assert all(isinstance(v, JobView) for v in tb.job_box.children)
    for j in tb.jobs:
        j.wait(TIMEOUT)
    wait_for(lambda: gallery.total == 2, TIMEOUT, "gallery grows")
    wait_for(lambda: all(it["thumb"] for it in gallery.items), TIMEOUT, "thumbnails")
    assert {it["params"]["seed"] for it in gallery.items} == {10, 11}
    assert gallery.items[0]["params"]["prompt"] == "<b>fox</b> in snow"


def test_task_builder_reports_invalid_task(client: ComfyClient) -> None:
    tb = TaskBuilder(client)
    tb.prompt.value = ""
    assert tb.queue() == []
    assert "needs a prompt" in tb.status.value


def test_task_builder_uploads_init_image(client: ComfyClient) -> None:
    from .conftest import png_bytes

    tb = TaskBuilder(client)
    tb.type.value = "upscale"
    assert shown(tb, tb.init_upload)
    tb.init_upload.value = ({"name": "in.png", "type": "image/png", "size": 10, "content": memoryview(png_bytes()),
                             "last_modified": __import__("datetime").datetime(2024, 1, 1, tzinfo=__import__("datetime").timezone.utc)},)
    wait_for(lambda: "✓" in tb.init_status.value, TIMEOUT, "upload")
    assert "in" in tb.task.init_image


def test_config_panel_validates_tests_connection_and_keeps_secrets(
    server: MockServer, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COMFY_URL", raising=False)
    monkeypatch.delenv("COMFY_TOKEN", raising=False)
    panel = ConfigPanel(ComfyConfig())
    panel.url.value = "htp:/nope"
    assert panel.test_button.disabled and "http://" in panel.url_status.value
    panel.url.value = "http://127.0.0.1:99999"
    assert panel.test_button.disabled
    panel.url.value = server.url
    assert not panel.test_button.disabled and panel.config.server_url == server.url
    front_update(panel.token, {"value": "s3cret-token-value"})
    assert panel.token.value == "" and panel.config.token.get_secret_value() == "s3cret-token-value"
    front_update(panel.password, {"value": "hunter2-password"})
    assert panel.password.value == ""
    fut = panel.test_connection()
    fut.result(TIMEOUT)
    wait_for(lambda: "Connected" in panel.test_status.value, TIMEOUT, "connected")
    for word in ("comfy_nb built-in mock (ComfyUI 0.3.64 API)", "RAM", "previews on (--preview-method auto)",
                 "jobs API", "targeted interrupt"):
        assert word in panel.test_status.value
    wait_for(lambda: "sd15-mock.safetensors" in offered(panel.checkpoint), TIMEOUT, "models")
    panel.checkpoint.value = "sdxl-mock.safetensors"
    assert panel.config.checkpoint == "sdxl-mock.safetensors"
    panel.workflows["image"].value = "txt2img"
    path = tmp_path / "cfg.json"
    panel.save(str(path))
    saved = json.loads(path.read_text())
    assert saved["checkpoint"] == "sdxl-mock.safetensors" and saved["workflows"]["image"] == "txt2img"
    other = ConfigPanel(ComfyConfig())
    other.load(str(path))
    assert other.url.value == server.url and other.checkpoint.value == "sdxl-mock.safetensors"
    # no secret anywhere the front end or a notebook sees
    states = json.dumps([w.get_state() for w in _all_widgets(panel)], default=str)
    sent = json.dumps([m for w in _all_widgets(panel) for m in w.comm.messages], default=str)
    for secret in ("s3cret-token-value", "hunter2-password"):
        assert secret not in states and secret not in sent and secret not in repr(panel)
        assert secret not in path.read_text()


def test_config_panel_kind_selector_api_key_and_detected_kind(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Comfy Cloud through the panel: the kind selector, the API key field (cleared, never echoed or
    shown), "Test connection" naming the detected kind, and a plain-text repr without the key."""
    monkeypatch.delenv("COMFY_API_KEY", raising=False)
    key = "panel-api-key-SECRET-3"
    with MockServer(cloud=True, api_key=key, step_delay=0) as cloud:
        panel = ConfigPanel(ComfyConfig())
        assert [v for _label, v in panel.kind.options] == ["auto", "comfyui", "cloud", "v2"]
        assert panel.kind.value == "auto" and panel.api_key.placeholder == "not set"
        panel.url.value = cloud.url
        front_update(panel.api_key, {"value": key})
        assert panel.api_key.value == "" and panel.config.api_key.get_secret_value() == key
        assert "set" in panel.api_key.placeholder and "not set" not in panel.api_key.placeholder
        panel.test_connection().result(TIMEOUT)
        wait_for(lambda: "Connected" in panel.test_status.value, TIMEOUT, "connected")
        assert "Comfy Cloud (detected)" in panel.test_status.value and panel.tested_kind == "Comfy Cloud (detected)"
        assert repr(panel) == f"ConfigPanel(server_url={cloud.url!r})"
        panel.kind.value = "cloud"
        assert panel.config.kind == "cloud" and repr(panel) == f"ConfigPanel(server_url={cloud.url!r}, kind='cloud')"
        panel.test_connection().result(TIMEOUT)
        wait_for(lambda: panel.tested_kind == "Comfy Cloud", TIMEOUT, "explicit kind")
        client = panel.use_server().result(TIMEOUT)
        try:
            wait_for(lambda: "Comfy Cloud" in panel.in_use.value, TIMEOUT, "in-use line names the kind")
            assert "auth: api_key" in panel.in_use.value and client.kind == "cloud"
        finally:
            client.close()
        path = tmp_path / "cfg.json"
        panel.save(str(path))
        assert json.loads(path.read_text())["kind"] == "cloud"
        other = ConfigPanel(ComfyConfig())
        other.load(str(path))
        assert other.kind.value == "cloud" and other.config.api_key is None  # the key is not saved
        states = json.dumps([w.get_state() for w in _all_widgets(panel)], default=str)
        sent = json.dumps([m for w in _all_widgets(panel) for m in w.comm.messages], default=str)
        for shown in (states, sent, repr(panel), path.read_text(), panel.test_status.value, panel.in_use.value):
            assert key not in shown
        assert cloud.cloud_front is not None and cloud.cloud_front.stats.storage_key_leaks == 0


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_config_panel_reports_connection_failure() -> None:
    panel = ConfigPanel(ComfyConfig(server_url=f"http://127.0.0.1:{free_port()}", max_retries=0))
    fut = panel.test_connection()
    with pytest.raises(ComfyConnectionError):
        fut.result(TIMEOUT)
    wait_for(lambda: "Connection failed" in panel.test_status.value, TIMEOUT, "failure shown")
    assert "ComfyConnectionError" in panel.test_status.value
    assert repr(panel).startswith("ConfigPanel(server_url='http://127.0.0.1:")


def test_studio_wires_builder_gallery_and_queue(client: ComfyClient) -> None:
    studio = Studio(client)
    assert studio.tabs.titles == ("Generate", "Gallery", "Graph", "Queue", "Settings")
    studio.builder.prompt.value = "studio fox"
    studio.builder.steps.value = 2
    studio.builder.width.value = studio.builder.height.value = 64
    studio.builder.queue()
    wait_for(lambda: studio.jobs, TIMEOUT, "job")
    studio.jobs[0].wait(TIMEOUT)
    wait_for(lambda: studio.gallery.total == 1, TIMEOUT, "gallery")
    assert repr(studio) == "Studio(tabs=['Generate', 'Gallery', 'Graph', 'Queue', 'Settings'])"
    (graph,) = studio.graph_box.children  # the Graph tab follows the latest job
    assert graph.job is studio.jobs[0]
    wait_for(lambda: graph.node_states and all(s["state"] == "done" for s in graph.node_states.values()),
             TIMEOUT, "graph states")


def offered(dropdown: Any) -> list[Any]:
    """The values a dropdown offers (its options are ``(label, value)`` pairs)."""
    return [value for _label, value in dropdown.options]


def shown(root: Any, widget: Any) -> bool:
    """Whether ``widget`` is inside ``root`` with no box on the way hidden (``layout.display == "none"``)."""
    if root is widget:
        return True
    if root.layout.display == "none":
        return False
    return any(shown(child, widget) for child in getattr(root, "children", ()))


def _all_widgets(w: Any) -> list[Any]:
    out = [w]
    for child in getattr(w, "children", ()):
        out += _all_widgets(child)
    return out


def test_jobview_of_a_finished_job_with_thumbnails_at_hand_does_not_deadlock(
    client: ComfyClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A thumbnail future that is already done runs its callback inside the view's update."""
    import concurrent.futures

    from comfy_nb.widgets import _job_view

    def done_thumbnail(*_args: Any) -> concurrent.futures.Future[str]:
        fut: concurrent.futures.Future[str] = concurrent.futures.Future()
        fut.set_result("data:image/png;base64,")
        return fut

    monkeypatch.setattr(_job_view, "fetch_thumbnail", done_thumbnail)
    job = client.submit({
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "view/img"}},
    })
    job.wait(TIMEOUT)
    view = JobView(job)
    wait_for(lambda: view.outputs and view.outputs[0]["thumb"], TIMEOUT, "thumbnail")
