"""The Comfy Cloud kind end to end against ``MockServer(cloud=True)`` and its storage host (127.0.0.1):
the key on every request and in the socket URL, live progress, downloads through the 302 with no key
sent to storage, flat uploads, cancel, a wrong key, and the key absent from everything shown."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _graphs import slow, tiny
from PIL import Image

from comfy_nb.client import AsyncComfyClient, ComfyClient, JobState, JobStatus
from comfy_nb.config import ComfyConfig
from comfy_nb.errors import ComfyError, ConfigError, JobCancelled, ServerError
from comfy_nb.mock import MockServer

KEY = "cloud-key-SECRET-7f3a"
"""The mock's API key: a sentinel every test checks never shows."""


@pytest.fixture
def cloud() -> Iterator[MockServer]:
    with MockServer(cloud=True, api_key=KEY, step_delay=0) as server:
        yield server


@pytest.fixture
async def client(cloud: MockServer) -> AsyncIterator[AsyncComfyClient]:
    async with AsyncComfyClient(cloud.url, api_key=KEY, kind="cloud", poll_interval=0.05) as c:
        yield c


def assert_no_key(*texts: str) -> None:
    for text in texts:
        assert KEY not in text


# ---------------------------------------------------------------------- the flow


async def test_connects_with_the_key_and_follows_live_progress_over_the_token_socket(
    cloud: MockServer, client: AsyncComfyClient
) -> None:
    assert client.kind == "cloud" and client.connected and client.auth == "api_key"
    assert "token=***" in client.ws_url and KEY not in client.ws_url
    job = await client.submit(slow(40, 0.05))  # 2 s: the updates start long before it ends
    statuses: list[JobStatus] = [s async for s in job.updates()]
    assert statuses[-1].state is JobState.COMPLETED
    # progress values come only from the socket's progress messages, never from polling history
    assert any(s.state is JobState.RUNNING and s.steps == 40 and 0 < (s.step or 0) < 40 for s in statuses)
    assert cloud.stats.ws_connects == 1 and cloud.cloud_front is not None
    assert cloud.cloud_front.stats.unauthorized == 0  # every request carried the key


async def test_download_follows_the_redirect_without_sending_the_key(cloud: MockServer, client: AsyncComfyClient) -> None:
    [out] = await client.run(tiny(0x00FF00), timeout=30)
    data = await client.download(out)
    assert Image.open(io.BytesIO(data)).convert("RGB").getpixel((0, 0)) == (0, 255, 0)
    assert data == Path(cloud.output_dir, out.subfolder, out.filename).read_bytes()
    image = await client.load_image(out)
    assert image.size == (16, 16)
    front = cloud.cloud_front
    assert front is not None
    assert front.stats.redirects == 2 and front.stats.storage_served == 2
    assert front.stats.storage_key_leaks == 0 and front.stats.storage_bad_signature == 0
    assert out.url.startswith(f"{cloud.url}/api/view?")


async def test_uploads_land_flat_and_the_returned_name_loads(cloud: MockServer, client: AsyncComfyClient) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 20, 30)).save(buf, format="PNG")
    data = buf.getvalue()
    name = await client.upload_image(data, name="mine.png", subfolder="some/folder")
    assert name == hashlib.sha256(data).hexdigest() + ".png"  # content-addressed, no subfolder
    assert Path(cloud.input_dir, name).read_bytes() == data
    graph = {
        "1": {"class_type": "LoadImage", "inputs": {"image": name}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "cloud/loaded"}},
    }
    [out] = await client.run(graph, timeout=30)
    loaded = Image.open(io.BytesIO(await client.download(out))).convert("RGB")
    assert loaded.getpixel((0, 0)) == (10, 20, 30)


async def test_cancel_a_running_job(cloud: MockServer, client: AsyncComfyClient) -> None:
    job = await client.submit(slow(200, 0.05))
    async for status in job.updates():
        if status.state is JobState.RUNNING and status.step:
            break
    assert await client.cancel(job.prompt_id) is True
    with pytest.raises(JobCancelled):
        await job.result(30)
    assert job.status.state is JobState.CANCELLED


async def test_parallel_jobs_and_the_queue(client: AsyncComfyClient) -> None:
    jobs = [await client.submit(tiny(i * 40)) for i in range(4)]
    results = [await job.result(30) for job in jobs]
    assert all(len(r) == 1 for r in results)
    queue = await client.queue()
    assert queue.running == () and queue.pending == ()


async def test_partner_nodes_key_only_when_opted_in(cloud: MockServer) -> None:
    """The key goes in ``extra_data.api_key_comfy_org`` only with ``partner_nodes=True`` (the bodies are
    read off the wire by an httpx hook: the server strips the key from its history and queue)."""
    bodies: list[dict[str, Any]] = []

    async def record(request: httpx.Request) -> None:
        if request.method == "POST" and request.url.path == "/api/prompt":
            bodies.append(json.loads(request.content))

    http = httpx.AsyncClient(headers={"X-API-Key": KEY}, event_hooks={"request": [record]})
    try:
        async with AsyncComfyClient(cloud.url, api_key=KEY, kind="cloud", http_client=http) as client:
            await (await client.submit(tiny(1))).result(30)
            await (await client.submit(tiny(2), extra_data={"note": 1}, partner_nodes=True)).result(30)
            history = await client.history()
    finally:
        await http.aclose()
    assert "extra_data" not in bodies[0]
    assert bodies[1]["extra_data"] == {"note": 1, "api_key_comfy_org": KEY}
    assert_no_key(repr(history))
    with MockServer() as plain:
        async with AsyncComfyClient(plain.url, kind="comfyui") as keyless:
            with pytest.raises(ConfigError, match="partner_nodes=True needs an API key"):
                await keyless.submit(tiny(3), partner_nodes=True)


# ---------------------------------------------------------------------- errors and secrets


async def test_a_wrong_key_is_a_clear_error_naming_the_api_key(cloud: MockServer) -> None:
    client = AsyncComfyClient(cloud.url, api_key="wrong-key-000", kind="cloud")
    with pytest.raises(ServerError, match="API key") as info:
        await client.connect()
    assert "wrong-key-000" not in str(info.value) and "Traceback" not in str(info.value)
    await client.aclose()


def test_cloud_without_a_key_is_refused_at_construction(cloud: MockServer) -> None:
    with pytest.raises(ConfigError, match="API key"):
        AsyncComfyClient(cloud.url, kind="cloud")
    with pytest.raises(ConfigError, match="API key"):
        AsyncComfyClient("https://cloud.comfy.org")  # the host alone says cloud


async def test_the_key_never_shows_in_reprs_logs_errors_or_saved_files(
    cloud: MockServer, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.delenv("COMFY_API_KEY", raising=False)
    errors: list[str] = []
    config = ComfyConfig(server_url=cloud.url, kind="cloud", api_key=KEY)
    saved = config.save(tmp_path / "config.json")
    assert_no_key(saved.read_text(), repr(config), str(config), str(config.model_dump()))
    assert ComfyConfig.load(saved).api_key is None  # not written without reveal_secrets
    revealed = ComfyConfig.load(config.save(tmp_path / "revealed.json", reveal_secrets=True))
    assert revealed.api_key is not None and revealed.api_key.get_secret_value() == KEY and revealed.kind == "cloud"

    cloud.faults.http_errors(1, 503, paths=["/ws"])  # the first socket attempt fails: the polling warning
    async with AsyncComfyClient(config=config, poll_interval=0.05) as client:
        assert client.kind == "cloud"
        job = await client.submit(slow(3, 0.01))
        [out] = await job.result(30)
        await client.download(out)
        await client.upload_image(b"not really a png", name="x.png")
        for bad in (tiny(0) | {"3": {"class_type": "NoSuchNode", "inputs": {}}},):
            try:
                await client.submit(bad)
            except ComfyError as exc:
                errors.append(f"{exc!r} {exc}")
        shown = [repr(client), repr(job), repr(job.status), repr(out), client.ws_url]
    try:
        await AsyncComfyClient(cloud.url, api_key=KEY + "x", kind="cloud").connect()
    except ComfyError as exc:
        errors.append(f"{exc!r} {exc}")
    assert len(errors) == 2
    assert "WebSocket to ws://" in caplog.text and "token=***" in caplog.text  # the warning shows the URL redacted
    assert_no_key(caplog.text, *errors, *shown)
    assert os.environ.get("COMFY_API_KEY") is None


def test_blocking_client_and_connect_take_kind_and_key(cloud: MockServer) -> None:
    import comfy_nb

    with comfy_nb.connect(cloud.url, api_key=KEY, kind="cloud") as client:
        assert isinstance(client, ComfyClient) and client.kind == "cloud"
        assert repr(client) == f"ComfyClient(url={cloud.url!r} kind=cloud auth=***)"
        [out] = client.run(tiny(0x0000FF), timeout=30)
        assert client.download(out)[:4] == b"\x89PNG"


def test_a_socket_failure_that_quotes_its_url_is_redacted() -> None:
    from websockets.exceptions import InvalidURI

    from comfy_nb.client._socket import _describe_failure, redact_token

    url = f"ws://127.0.0.1:1/ws?clientId=abc&token={KEY}"
    assert redact_token(url) == "ws://127.0.0.1:1/ws?clientId=abc&token=***"
    text = _describe_failure(InvalidURI(url, "bad"), (KEY,))
    assert "InvalidURI" in text and "token=***" in text and KEY not in text
