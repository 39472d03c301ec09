"""What the widgets say about the server: the one in use, its device, its previews; a node's last step."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from captures import FIXTURES

from comfy_nb.client import ComfyClient, DeviceInfo, JobState, NodeRef, ServerCapabilities
from comfy_nb.config import ComfyConfig
from comfy_nb.mock import MockServer
from comfy_nb.widgets import ConfigPanel, JobView, Studio
from comfy_nb.widgets._server_info import caps_html, device_text, location, preview_method

from .conftest import FakeClient, FakeJob, wait_for

TIMEOUT = 30.0


def caps_from(stats: dict[str, Any]) -> ServerCapabilities:
    system = stats.get("system") or {}
    devices = tuple(DeviceInfo(d["name"], d["type"], d.get("vram_total"), d.get("vram_free"))
                    for d in stats.get("devices") or [])
    return ServerCapabilities(version=system.get("comfyui_version"), devices=devices,
                              supports_preview_metadata=True, extra={"system": system})


def test_real_capture_says_previews_off_and_ram_for_a_cpu() -> None:
    path = FIXTURES / "system_stats.json"
    if not path.is_file():
        pytest.skip("captures missing")
    caps = caps_from(json.loads(path.read_text()))
    assert preview_method(caps) == "none"  # argv has no --preview-method: ComfyUI's default
    text = caps_html(caps)
    assert "previews off (--preview-method none)" in text and "--preview-method auto (or latent2rgb)" in text
    assert "cpu (cpu) · RAM 22.2 GiB free of 23.5 GiB" in text and "VRAM" not in text
    assert "ComfyUI 0.3.64" in text and "preview metadata ✓" in text


@pytest.mark.parametrize(("argv", "method"), [
    (["main.py", "--preview-method", "latent2rgb"], "latent2rgb"),
    (["main.py", "--preview-method=taesd"], "taesd"),
    (["main.py", "--cpu"], "none"),
    (None, None),
])
def test_preview_method_from_argv(argv: list[str] | None, method: str | None) -> None:
    system = {} if argv is None else {"argv": argv}
    assert preview_method(ServerCapabilities(version="0.3.64", extra={"system": system})) == method


def test_gpu_is_vram_and_locations() -> None:
    gpu = DeviceInfo("cuda:0 NVIDIA", "cuda", 8 * 2**30, 6 * 2**30)
    assert device_text(gpu) == "cuda:0 NVIDIA (cuda) · VRAM 6.0 GiB free of 8.0 GiB"
    assert location("http://127.0.0.1:8188") == "local" and location("http://localhost:1") == "local"
    assert location("http://192.168.1.5:8188") == "private network"
    assert location("https://comfy.example.com") == "remote"


@pytest.fixture(scope="module")
def server() -> Iterator[MockServer]:
    with MockServer(sampler_previews=False) as m:
        yield m


def test_studio_settings_show_the_client_in_use_without_its_secret(server: MockServer) -> None:
    secret = "tok-very-secret-123"
    client = ComfyClient(server.url, token=secret)  # no config: the case that showed an empty panel
    try:
        studio = Studio(client)
        panel = studio.config_panel
        assert panel.url.value == server.url and not panel.test_button.disabled
        assert client.config is panel.config, "Settings edits reach the tasks the client builds"
        assert "Enter the server" not in panel.url_status.value
        wait_for(lambda: "mock" in panel.in_use.value, TIMEOUT, "server kind")
        line = panel.in_use.value
        assert server.url in line and "local" in line and "auth: bearer" in line and secret not in line
        assert "comfy_nb built-in mock (ComfyUI 0.3.64 API)" in line
        fut = panel.test_connection()  # tests the client in use, with its credentials
        fut.result(TIMEOUT)
        wait_for(lambda: "Connected" in panel.test_status.value, TIMEOUT, "connected")
        assert "previews off (--preview-method none)" in panel.test_status.value
        assert secret not in json.dumps([panel.in_use.get_state(), panel.test_status.get_state(), repr(panel)])
    finally:
        client.close()


def test_studio_switches_to_another_server(server: MockServer) -> None:
    client = ComfyClient(server.url)
    with MockServer() as other:
        try:
            studio = Studio(client)
            old_queue = studio.queue_panel
            studio.config_panel.url.value = other.url
            fut = studio.config_panel.use_server()
            new_client = fut.result(TIMEOUT)
            assert isinstance(new_client, ComfyClient)
            wait_for(lambda: studio.client is new_client, TIMEOUT, "studio switched")
            assert new_client.url == other.url and studio.builder.client is new_client
            assert studio.queue_panel is not old_queue and studio.tabs.children[studio.tabs.titles.index("Queue")] is studio.queue_panel
            wait_for(lambda: other.url in studio.config_panel.in_use.value, TIMEOUT, "in-use line")
            assert "no auth" in studio.config_panel.in_use.value
            new_client.close()
        finally:
            client.close()


def test_config_panel_without_client_has_no_in_use_line() -> None:
    panel = ConfigPanel(ComfyConfig())
    assert panel.in_use.value == "" and panel.use_button.layout.display == "none"


def test_last_step_of_a_node_is_shown_before_the_next_node(fake_client: FakeClient, loop_thread: Any) -> None:
    job = FakeJob(fake_client)
    view = JobView(job)
    shown: list[tuple[str, int, int]] = []
    view.observe(lambda _c: shown.append((view.node, view.step, view.steps)), "step")
    sampler, decode = NodeRef("3", "KSampler"), NodeRef("8", "VAEDecode")
    for k in range(1, 21):  # a burst: everything inside one throttle window
        loop_thread.call(job.emit, state=JobState.RUNNING, started_at=1.0, current_node=sampler, step=k, steps=20)
    loop_thread.call(job.emit, current_node=decode, step=None, steps=None)
    wait_for(lambda: view.node == "VAEDecode", what="next node")
    assert ("KSampler", 20, 20) in shown


def test_no_preview_notice_names_the_server_flag(fake_client: FakeClient) -> None:
    job = FakeJob(fake_client)
    view = JobView(job)
    job.emit(state=JobState.RUNNING, started_at=1.0, current_node=NodeRef("3", "KSampler"), step=1, steps=20)
    view.flush()
    assert view.notice == ""
    job.emit(step=3)
    view.flush()
    assert "--preview-method auto (or latent2rgb)" in view.notice
    job.emit(state=JobState.CANCELLED, finished_at=2.0)
    assert view.notice == ""
