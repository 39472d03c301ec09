"""Widgets: no secret in any synced state, no raw HTML from prompts/filenames/server errors in any
HTML-valued trait. Saving outputs never writes outside the chosen folder. The mock binds loopback.

Widgets are built against real jobs on the mock server: a prompt, a node-failure message and an
output filename carrying HTML payloads, and a client/config carrying sentinel secrets.
"""

from __future__ import annotations

import json
import pathlib
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

pytest.importorskip("ipywidgets")

import ipywidgets as W
from ipywidgets.widgets.widget import _instances

from comfy_nb import AsyncComfyClient, ComfyClient, JobState
from comfy_nb.client import Output
from comfy_nb.config import ComfyConfig
from comfy_nb.errors import ComfyError
from comfy_nb.mock import MockServer

TOKEN = "tok-SENTINEL-w1dg3t"
PASSWORD = "pw-SENTINEL-w1dg3t"
PAYLOAD = "<script>alert(1)</script>"
IMG_PAYLOAD = "<img src=x onerror=alert(1)>"
RAW = re.compile(r"<script|<img src=x", re.IGNORECASE)
STATIC = pathlib.Path(__file__).resolve().parents[2] / "comfy_nb" / "widgets" / "static"


def wait_for(cond: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    ev = threading.Event()
    deadline = time.monotonic() + timeout
    while not (value := cond()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        ev.wait(0.01)
    return value


class WidgetStates:
    """The synced state of every widget created since construction (what the notebook saves)."""

    def __init__(self) -> None:
        self.before = set(_instances)

    def all(self) -> dict[str, dict[str, Any]]:
        return {k: w.get_state() for k, w in list(_instances.items()) if k not in self.before}

    def html_values(self) -> list[str]:
        """Values rendered as HTML: HTML/HTMLMath widgets, and descriptions that allow HTML."""
        out = []
        for k, w in list(_instances.items()):
            if k in self.before:
                continue
            if isinstance(w, (W.HTML, W.HTMLMath)):
                out.append(str(w.value))
            if getattr(w, "description_allow_html", False):
                out.append(str(w.description))
            for name in w.keys:
                if "html" in name.lower() and isinstance(getattr(w, name, None), str):
                    out.append(getattr(w, name))
        return out

    def dump(self) -> str:
        return json.dumps(self.all(), default=lambda o: o.decode("latin-1") if isinstance(o, bytes) else str(o))


@pytest.fixture
def states() -> Iterator[WidgetStates]:
    yield WidgetStates()


def test_config_panel_and_studio_state_hold_no_secret(mock_server: MockServer, states: WidgetStates) -> None:
    from comfy_nb.widgets import ConfigPanel, Studio

    config = ComfyConfig(server_url=mock_server.url, token=TOKEN, username="alice", password=PASSWORD)
    panel = ConfigPanel(config)
    panel.token.value = TOKEN + "-typed"  # typed by the user after loading
    fut = panel.test_connection()
    assert fut is not None
    fut.result(20)
    wait_for(lambda: not panel.test_button.disabled, what="connection test done")
    with ComfyClient(config=config) as client:
        studio = Studio(client)
        texts = [states.dump(), repr(panel), repr(studio), repr(client), str(panel._repr_mimebundle_())]
        studio.close()
    panel.close()
    for text in texts:
        assert TOKEN not in text and PASSWORD not in text and "SENTINEL" not in text
    assert config.token is not None and config.token.get_secret_value() == TOKEN + "-typed", "typed secret kept"


def test_html_in_prompt_error_and_filename_is_escaped_in_every_widget(
    fresh_mock: MockServer, states: WidgetStates
) -> None:
    from comfy_nb.widgets import Gallery, JobView, QueuePanel, TaskBuilder

    with ComfyClient(fresh_mock.url) as client:
        good = client.submit(
            {
                "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 5}},
                "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": IMG_PAYLOAD}},
            },
            meta={"prompt": PAYLOAD, "negative_prompt": IMG_PAYLOAD, "model": PAYLOAD},
        )
        outputs = good.result(timeout=20)
        assert IMG_PAYLOAD in outputs[0].filename, "the server really returned an HTML filename"
        fresh_mock.faults.fail_node("EmptyImage", message=f"bad {PAYLOAD} {IMG_PAYLOAD}", count=1)
        bad = client.submit(
            {
                "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 6}},
                "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "sec/x"}},
            },
            meta={"prompt": PAYLOAD},
        )
        assert bad.wait(timeout=20).state is JobState.FAILED
        assert bad.status.error is not None and PAYLOAD in bad.status.error.message
        views = [JobView(good), JobView(bad), Gallery([good, bad], client=client), QueuePanel(client)]
        builder = TaskBuilder(client)
        builder.prompt.value = PAYLOAD
        builder.negative.value = IMG_PAYLOAD
        builder.width.value = 13  # invalid: the error message quotes fields back as HTML status
        builder.queue()
        fresh_mock.faults.http_errors(1, status=500, paths=["/prompt"])
        builder.width.value = 64
        builder.height.value = 64
        html_values = states.html_values()
        assert html_values, "there are HTML-valued widgets to check"
        offenders = [v for v in html_values if RAW.search(v)]
        assert not offenders, f"raw HTML in an HTML-valued widget: {offenders[:3]}"
        # the raw text is still shown (escaped or as data for textContent), not dropped
        dump = states.dump()
        assert PAYLOAD in dump or "&lt;script&gt;" in dump
        for view in views:
            bundle = view._repr_mimebundle_() if hasattr(view, "_repr_mimebundle_") else None
            html_part = (bundle[0] if isinstance(bundle, tuple) else bundle or {}).get("text/html", "")
            assert not RAW.search(str(html_part)), "notebook HTML output carries raw markup"
            view.close()
        builder.close()


def test_front_end_code_never_injects_html() -> None:
    """The anywidget ES modules must render text with textContent, never as markup."""
    sources = list(STATIC.glob("*.js"))
    assert sources, "widget JS found"
    for src in sources:
        code = src.read_text()
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
            assert sink not in code, f"{src.name} uses {sink}"


@pytest.mark.parametrize(
    ("filename", "subfolder"),
    [
        ("../../evil.png", ""),
        ("..", ""),
        ("ok.png", "../.."),
        ("ok.png", "a/../../.."),
        ("/etc/passwd", ""),
        ("ok.png", "/tmp"),
        ("..\\..\\evil.png", ""),
        ("ok.png", "..\\.."),
        ("", ""),
    ],
)
async def test_save_output_never_writes_outside_the_folder(
    mock_server: MockServer, tmp_path: pathlib.Path, filename: str, subfolder: str
) -> None:
    target = tmp_path / "outputs"
    target.mkdir()
    before = {p for p in tmp_path.rglob("*")}
    async with AsyncComfyClient(mock_server.url) as client:
        out = Output(kind="image", filename=filename, subfolder=subfolder)
        try:
            path = await client.save_output(out, target)
        except ComfyError as exc:
            # refused by the client, or by the server's own traversal checks (400/403/404)
            assert "refusing" in str(exc) or any(code in str(exc) for code in ("400", "403", "404")), exc
        else:
            assert target.resolve() in path.resolve().parents
    written = {p for p in tmp_path.rglob("*")} - before
    assert all(target in p.parents for p in written), f"wrote outside {target}: {written}"
    assert not pathlib.Path("/tmp/ok.png").exists() or pathlib.Path("/tmp/ok.png").stat().st_mtime < time.time() - 60


async def test_save_output_keeps_a_legit_subfolder_inside(mock_server: MockServer, tmp_path: pathlib.Path) -> None:
    async with AsyncComfyClient(mock_server.url) as client:
        job = await client.submit({
            "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 9}},
            "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "deep/er/pic"}},
        })
        (out,) = await job.result(timeout=20)
        path = await client.save_output(out, tmp_path)
        assert path == (tmp_path / "deep" / "er" / out.filename).resolve() and path.stat().st_size > 0


def test_mock_binds_loopback_by_default() -> None:
    import ipaddress

    import psutil

    server = MockServer()
    assert server.host == "127.0.0.1"
    with server:
        assert server.url.startswith("http://127.0.0.1:")
        listening = [
            c.laddr.ip for c in psutil.net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == server.port
        ]
        assert listening, "the mock's listening socket is visible"
        assert all(ipaddress.ip_address(ip).is_loopback for ip in listening), listening


@pytest.fixture
def hostile_server() -> Iterator[str]:
    """A 127.0.0.1 'ComfyUI' whose version, device and model names carry HTML."""
    import asyncio

    from aiohttp import web

    async def handler(request: web.Request) -> web.StreamResponse:
        path = request.path.removeprefix("/api")
        if path == "/system_stats":
            return web.json_response({
                "system": {"comfyui_version": PAYLOAD, "python_version": IMG_PAYLOAD, "pytorch_version": PAYLOAD},
                "devices": [{"name": IMG_PAYLOAD, "type": PAYLOAD, "vram_total": 1, "vram_free": 1}],
            })
        if path == "/features":
            return web.json_response({"supports_preview_metadata": True, "max_upload_size": 1000})
        if path.startswith("/models"):
            return web.json_response([PAYLOAD, IMG_PAYLOAD])
        if path == "/prompt":
            return web.json_response({"exec_info": {"queue_remaining": 0}})
        return web.Response(status=404, text=PAYLOAD)

    loop = asyncio.new_event_loop()
    ready = threading.Event()
    box: dict[str, Any] = {}

    def serve() -> None:
        asyncio.set_event_loop(loop)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handler)
        runner = web.AppRunner(app, access_log=None)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        box["port"] = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        box["runner"] = runner
        ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(10)
    yield f"http://127.0.0.1:{box['port']}"
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def test_server_text_is_escaped_in_the_config_panel(hostile_server: str, states: WidgetStates) -> None:
    from comfy_nb.widgets import ConfigPanel

    panel = ConfigPanel(ComfyConfig(server_url=hostile_server))
    fut = panel.test_connection()
    assert fut is not None
    fut.result(20)
    wait_for(lambda: not panel.test_button.disabled, what="connection test done")
    values = states.html_values()
    offenders = [v for v in values if RAW.search(v)]
    assert not offenders, f"raw server HTML in the panel: {offenders[:3]}"
    assert any("&lt;script&gt;" in v or "&lt;img" in v for v in values), "the server's text is shown, escaped"
    panel.close()
