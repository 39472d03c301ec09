"""``kind="auto"``: each kind detected from the server (a plain mock, the mock's cloud mode, comfy-api-proxy
in front of the mock), what it costs, and explicit kinds that skip detection."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import psutil
import pytest
from _proxy import ProxyThread

from comfy_nb.client import AsyncComfyClient, ServerKind
from comfy_nb.client._kinds import detect_kind, kind_from_host
from comfy_nb.client._transport import Transport
from comfy_nb.config import ComfyConfig
from comfy_nb.errors import ComfyConnectionError, ConfigError, ServerError
from comfy_nb.mock import MockServer

KEY = "detect-key-SECRET-51"
HEALTH = "GET /v2/health"  # how the mock counts the probe (``/api`` folded in)


@pytest.fixture(autouse=True)
def _no_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COMFY_API_KEY", raising=False)


@pytest.fixture
def cloud() -> Iterator[MockServer]:
    with MockServer(cloud=True, api_key=KEY, step_delay=0) as server:
        yield server


async def connect_and_count(server: MockServer, **kwargs: object) -> tuple[ServerKind | None, int]:
    """The kind a client resolves and the HTTP requests (socket upgrade included) its connect cost."""
    before = sum(server.stats.requests.values())
    async with AsyncComfyClient(server.url, **kwargs) as client:  # type: ignore[arg-type]
        kind = client.kind
    return kind, sum(server.stats.requests.values()) - before


async def test_a_plain_comfyui_costs_one_extra_request_and_an_explicit_kind_none(fresh_mock: MockServer) -> None:
    kind, explicit_cost = await connect_and_count(fresh_mock, kind="comfyui")
    assert kind is ServerKind.COMFYUI and fresh_mock.stats.requests[HEALTH] == 0
    kind, auto_cost = await connect_and_count(fresh_mock)
    assert kind is ServerKind.COMFYUI and cast(Any, kind) == "comfyui" and str(kind) == "comfyui"
    assert fresh_mock.stats.requests[HEALTH] == 1 and auto_cost == explicit_cost + 1


async def test_kind_is_unknown_before_connect_then_detected_once(fresh_mock: MockServer) -> None:
    client = AsyncComfyClient(fresh_mock.url)
    before = client.kind
    assert before is None
    await client.connect()
    await client.aclose()
    await client.connect()  # a reconnect keeps what was found
    await client.aclose()
    assert client.kind is ServerKind.COMFYUI and fresh_mock.stats.requests[HEALTH] == 1


async def test_cloud_by_a_refused_probe_and_a_key_that_works(cloud: MockServer) -> None:
    async with AsyncComfyClient(cloud.url, api_key=KEY) as client:
        assert client.kind is ServerKind.CLOUD and client.connected
        assert repr(client) == f"AsyncComfyClient(url={cloud.url!r} kind=cloud auth=***)"
        [out] = await client.run({
            "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
            "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "auto/img"}},
        }, timeout=30)
        assert (await client.download(out))[:4] == b"\x89PNG"
    front = cloud.cloud_front
    assert front is not None
    assert front.stats.unauthorized == 1  # the keyless health probe, nothing else
    assert front.stats.storage_key_leaks == 0


async def test_a_refused_probe_and_a_refused_key_name_the_api_key(cloud: MockServer) -> None:
    client = AsyncComfyClient(cloud.url, api_key="not-the-key-42")
    with pytest.raises(ServerError, match="API key") as info:
        await client.connect()
    assert "not-the-key-42" not in str(info.value) and client.kind is None
    port = urlsplit(cloud.url).port
    open_to_it = [c for c in psutil.Process().net_connections("tcp") if c.raddr and c.raddr.port == port]
    assert open_to_it == []  # a failed connect leaves nothing open
    await client.aclose()


async def test_the_cloud_host_is_cloud_without_asking() -> None:
    for url in ("https://cloud.comfy.org", "https://CLOUD.comfy.org/", "https://eu.cloud.comfy.org"):
        assert kind_from_host(url) is ServerKind.CLOUD
        client = AsyncComfyClient(url, api_key=KEY)
        assert client.kind is ServerKind.CLOUD and client.view_url == f"{client.url}/api/view"
        assert "token=***" in client.ws_url
    given_api = AsyncComfyClient("https://cloud.comfy.org/api/", api_key=KEY)  # the /api prefix pasted along
    assert given_api.view_url == "https://cloud.comfy.org/api/view"
    assert given_api._socket.url.startswith("wss://cloud.comfy.org/ws?clientId=")
    for url in ("https://notcloud.comfy.org", "https://cloud.comfy.org.example.com", "http://127.0.0.1:8188"):
        assert kind_from_host(url) is None


async def test_v2_is_detected_through_comfy_api_proxy(proxied: tuple[MockServer, ProxyThread]) -> None:
    mock, proxy = proxied
    transport = Transport(proxy.url, {}, timeout=10, max_retries=0, verify=True, max_download_size=1 << 20)
    try:
        assert await detect_kind(transport, None) is ServerKind.V2
        assert await detect_kind(transport, KEY) is ServerKind.V2  # health needs no key
    finally:
        await transport.aclose()
    plain = Transport(mock.url, {}, timeout=10, max_retries=0, verify=True, max_download_size=1 << 20)
    try:
        assert await detect_kind(plain, KEY) is ServerKind.COMFYUI  # the ComfyUI behind it
    finally:
        await plain.aclose()


def test_explicit_kinds_and_the_config() -> None:
    client = AsyncComfyClient("http://127.0.0.1:1", api_key=KEY, kind="v2")
    assert client.kind is ServerKind.V2 and client.auth == "api_key" and KEY not in repr(client)
    config = ComfyConfig(server_url="http://127.0.0.1:1", kind="cloud", api_key=KEY)
    from_config = AsyncComfyClient(config=config)
    assert from_config.kind is ServerKind.CLOUD and from_config.view_url == "http://127.0.0.1:1/api/view"
    assert AsyncComfyClient(config=config, kind="comfyui").kind is ServerKind.COMFYUI  # explicit wins
    with pytest.raises(ConfigError, match="kind must be one of auto, comfyui, cloud, v2"):
        AsyncComfyClient("http://127.0.0.1:1", kind="local")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="kind"):
        ComfyConfig(kind="local")
    with pytest.raises(ConfigError, match="API key") as info:
        AsyncComfyClient("http://127.0.0.1:1", api_key="bad\nkey", kind="cloud")
    assert "bad" not in str(info.value)


async def test_an_unreachable_server_fails_detection_clearly(fresh_mock: MockServer) -> None:
    url = fresh_mock.url
    fresh_mock.stop()
    client = AsyncComfyClient(url, api_key=KEY, max_retries=0)
    with pytest.raises(ComfyConnectionError, match="cannot reach"):
        await client.connect()
    assert client.kind is None
    await client.aclose()


def test_the_key_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("COMFY_API_KEY", KEY)
    client = AsyncComfyClient("http://127.0.0.1:1", kind="cloud")
    assert client.auth == "api_key" and KEY not in repr(client)
    loaded = ComfyConfig.load(tmp_path / "none.json")
    assert loaded.api_key is not None and loaded.api_key.get_secret_value() == KEY and KEY not in repr(loaded)
    assert KEY not in loaded.save(tmp_path / "saved.json").read_text()
