"""Pure parts of the client: retry policy, URL handling, auth headers, secrets, the library loop."""

from __future__ import annotations

import asyncio
import logging

import pytest

from comfy_nb.client import AsyncComfyClient, retry_delay
from comfy_nb.client._async_client import _safe_target
from comfy_nb.client._loop import library_loop, run_sync
from comfy_nb.client._models import Output
from comfy_nb.client._retry import MAX_RETRY_AFTER, is_retryable_status
from comfy_nb.errors import ComfyError, ConfigError, WorkflowError
from comfy_nb.protocol import api_graph, parse_server_url


def test_backoff_grows_exponentially_with_bounded_jitter() -> None:
    assert retry_delay(0, rand=lambda: 0.0) == pytest.approx(0.25)
    assert retry_delay(3, rand=lambda: 0.0) == pytest.approx(2.0)
    assert retry_delay(20, rand=lambda: 0.0) == pytest.approx(8.0)  # capped
    assert retry_delay(2, rand=lambda: 1.0) == pytest.approx(0.75)  # jitter takes at most a quarter off


def test_retry_after_is_honoured_in_seconds_ms_and_http_date() -> None:
    assert retry_delay(0, {"retry-after": "3"}) == 3.0
    assert retry_delay(0, {"retry-after-ms": "1500"}) == 1.5
    assert retry_delay(0, {"retry-after": "Wed, 25 Nov 2026 12:00:10 GMT"}, now=lambda: 1795608000.0) == pytest.approx(10.0)
    # absurd or negative values fall back to backoff
    assert retry_delay(0, {"retry-after": str(MAX_RETRY_AFTER * 10)}, rand=lambda: 0.0) == pytest.approx(0.25)
    assert retry_delay(0, {"retry-after": "soon"}, rand=lambda: 0.0) == pytest.approx(0.25)


def test_retryable_statuses() -> None:
    assert all(is_retryable_status(s) for s in (429, 500, 502, 503, 504, 408))
    assert not any(is_retryable_status(s) for s in (200, 400, 401, 403, 404, 413))


@pytest.mark.parametrize(
    ("url", "base", "ws"),
    [
        ("http://127.0.0.1:8188", "http://127.0.0.1:8188", "ws://127.0.0.1:8188/ws"),
        ("http://127.0.0.1:8188/", "http://127.0.0.1:8188", "ws://127.0.0.1:8188/ws"),
        ("https://gpu.example.org/comfy/", "https://gpu.example.org/comfy", "wss://gpu.example.org/comfy/ws"),
        ("https://[::1]:8443", "https://[::1]:8443", "wss://[::1]:8443/ws"),
    ],
)
def test_urls_with_base_paths_and_tls(url: str, base: str, ws: str) -> None:
    server = parse_server_url(url)
    assert (server.http, server.ws) == (base, ws)


@pytest.mark.parametrize("url", ["127.0.0.1:8188", "ftp://host", "http://", "http://host:99999"])
def test_malformed_urls_are_refused_before_any_request(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        AsyncComfyClient(url)
    assert "http" in str(info.value) or "port" in str(info.value) or "host" in str(info.value)


def test_secrets_never_show(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for client in (
        AsyncComfyClient("http://h:1", token="tok-SECRET-1"),
        AsyncComfyClient("http://h:1", username="u", password="pw-SECRET-2"),
        AsyncComfyClient("http://user:pw-SECRET-3@h:1"),
        AsyncComfyClient("http://h:1", headers={"X-Api-Key": "key-SECRET-4"}),
    ):
        text = repr(client) + str(client) + repr(vars(client).get("url"))
        assert "SECRET" not in text
        assert "SECRET" not in client.url
    assert "SECRET" not in caplog.text
    basic = AsyncComfyClient("http://user:pw@h:1")
    assert basic._headers["Authorization"].startswith("Basic ")
    assert AsyncComfyClient("http://h:1", token="t")._headers["Authorization"] == "Bearer t"


def test_ui_format_workflow_is_refused_with_a_hint() -> None:
    with pytest.raises(WorkflowError, match="UI-format"):
        api_graph({"nodes": [], "links": [], "version": 0.4})
    with pytest.raises(WorkflowError, match="class_type"):
        api_graph({"1": {"inputs": {}}})


@pytest.mark.parametrize(
    ("filename", "subfolder"),
    [("../evil.png", ""), ("ok.png", "../.."), ("ok.png", "a/../../b"), ("..", "")],
)
def test_saving_never_leaves_the_folder(tmp_path: object, filename: str, subfolder: str) -> None:
    import pathlib

    root = pathlib.Path(str(tmp_path)).resolve()
    out = Output(kind="image", filename=filename, subfolder=subfolder)
    try:
        target = _safe_target(root, out)
    except ComfyError as exc:
        assert "refusing to save" in str(exc)
    else:
        assert root in target.parents


def test_blocking_call_from_the_library_loop_is_refused() -> None:
    async def inner() -> str:
        async def noop() -> str:
            return "x"

        try:
            run_sync(noop())
        except RuntimeError as exc:
            return str(exc)
        return "no error"

    future = asyncio.run_coroutine_threadsafe(inner(), library_loop())
    assert "await" in future.result(5)


async def test_blocking_call_works_inside_a_running_loop() -> None:
    async def answer() -> int:
        return 42

    assert run_sync(answer()) == 42  # as in a Jupyter cell: a loop is running in this thread
