"""Tokens and passwords never appear in reprs, logs, exceptions, widget state or notebook outputs.

Every client, config and widget is built with sentinel secrets, errors are provoked with auth
against the mock server (401s on HTTP and on the WebSocket upgrade, an unreachable port), logging is
captured at DEBUG for every logger, and then all of it is searched for the sentinels in every form
they could leak in (plain, ``Bearer``, base64 of ``user:password``).
"""

from __future__ import annotations

import base64
import gc
import json
import logging
import socket
import traceback
from collections.abc import Iterator
from typing import Any

import pytest

from comfy_nb import AsyncComfyClient, ComfyClient
from comfy_nb.config import ComfyConfig
from comfy_nb.errors import ComfyError
from comfy_nb.mock import MockServer

TOKEN = "tok-SENTINEL-5f1e9c0d"
PASSWORD = "pw-SENTINEL-8a2b77"
USER = "alice"
FORMS = [
    TOKEN,
    PASSWORD,
    base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode(),
    base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()[:16],
    TOKEN[4:],
    PASSWORD[3:],
]


def leaks(text: str) -> list[str]:
    return [form for form in FORMS if form in text]


def exception_texts(exc: BaseException) -> list[str]:
    out = [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
    for name in ("request", "response", "message"):
        value = getattr(exc, name, None)
        if value is not None:
            out += [str(value), repr(value)]
    return out


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def all_logs() -> Iterator[list[logging.LogRecord]]:
    """Every record of every logger at DEBUG (httpx, aiohttp, websockets, asyncio, comfy_nb...)."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    root = logging.getLogger()
    handler = Keep(logging.DEBUG)
    old = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield records
    finally:
        root.removeHandler(handler)
        root.setLevel(old)


def log_text(records: list[logging.LogRecord]) -> str:
    lines = []
    for r in records:
        try:
            lines.append(r.getMessage())
        except Exception:
            lines.append(f"{r.msg!r} {r.args!r}")
        if r.exc_info and r.exc_info[1] is not None:
            lines.append("".join(traceback.format_exception(r.exc_info[1])))
    return "\n".join(lines)


async def test_async_client_errors_logs_and_reprs_never_show_secrets(
    fresh_mock: MockServer, all_logs: list[logging.LogRecord]
) -> None:
    texts: list[str] = []
    url_with_auth = fresh_mock.url.replace("http://", f"http://{USER}:{PASSWORD}@")
    clients = [
        AsyncComfyClient(fresh_mock.url, token=TOKEN, max_retries=0),
        AsyncComfyClient(fresh_mock.url, username=USER, password=PASSWORD, max_retries=0),
        AsyncComfyClient(url_with_auth, max_retries=0),
        AsyncComfyClient(fresh_mock.url, headers={"X-Api-Key": TOKEN}, max_retries=0),
        AsyncComfyClient(config=ComfyConfig(server_url=fresh_mock.url, token=TOKEN), max_retries=0),
    ]
    for client in clients:
        texts += [repr(client), str(client), client.url, repr(vars(client).get("config"))]
        await client.connect()
        fresh_mock.faults.http_errors(1, status=401, paths=["/system_stats"])
        with pytest.raises(ComfyError) as info:
            await client.system_stats()
        texts += exception_texts(info.value)
        fresh_mock.faults.http_errors(1, status=403, paths=["/prompt"])
        with pytest.raises(ComfyError) as info:
            await client.submit({"1": {"class_type": "EmptyImage", "inputs": {}}})
        texts += exception_texts(info.value)
        # the socket comes back through a 401 on the upgrade
        fresh_mock.faults.http_errors(2, status=401, paths=["/ws"])
        ws_connects = fresh_mock.stats.ws_connects
        fresh_mock.faults.drop_sockets(0, client_id=client.client_id)
        job = await client.submit({
            "1": {"class_type": "EmptyImage", "inputs": {"width": 4, "height": 4, "batch_size": 1, "color": 1}},
            "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "sec/s"}},
        })
        await job.wait(timeout=20)
        texts += [repr(job), repr(job.status), str(job.status)]
        assert fresh_mock.stats.ws_connects >= ws_connects
        await client.aclose()
    bad = AsyncComfyClient(f"http://{USER}:{PASSWORD}@127.0.0.1:{closed_port()}", token=TOKEN, max_retries=0)
    with pytest.raises(ComfyError) as info:
        await bad.connect()
    texts += [*exception_texts(info.value), repr(bad)]
    await bad.aclose()
    gc.collect()
    texts.append(log_text(all_logs))
    found = {form for text in texts for form in leaks(text)}
    assert not found, f"secrets leaked: {found}"
    assert any("401" in t for t in texts), "the 401s were really provoked"


def test_blocking_client_and_config_never_show_secrets(
    mock_server: MockServer, tmp_path: Any, all_logs: list[logging.LogRecord]
) -> None:
    config = ComfyConfig(server_url=mock_server.url, token=TOKEN, username=USER, password=PASSWORD)
    texts = [repr(config), str(config), config.model_dump_json(), json.dumps(config.model_dump(), default=str)]
    saved = config.save(tmp_path / "cfg.json")
    texts.append(saved.read_text())
    loaded = ComfyConfig.load(saved)
    texts += [repr(loaded), str(loaded)]
    with ComfyClient(config=config) as client:
        texts += [repr(client), str(client)]
        job = client.submit({
            "1": {"class_type": "EmptyImage", "inputs": {"width": 4, "height": 4, "batch_size": 1, "color": 2}},
            "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "sec/b"}},
        })
        job.wait(timeout=20)
        texts += [repr(job), repr(job.status)]
    with pytest.raises(ComfyError) as info:
        ComfyClient(f"http://127.0.0.1:{closed_port()}", token=TOKEN, password=PASSWORD, username=USER, max_retries=0)
    texts += exception_texts(info.value)
    gc.collect()
    texts.append(log_text(all_logs))
    found = {form for text in texts for form in leaks(text)}
    assert not found, f"secrets leaked: {found}"
    assert saved.stat().st_mode & 0o077 == 0, "the config file is private (0600)"


def test_config_with_secret_revealed_only_on_request(tmp_path: Any) -> None:
    config = ComfyConfig(server_url="http://127.0.0.1:8188", token=TOKEN)
    text = config.save(tmp_path / "plain.json").read_text()
    assert TOKEN not in text
    text = config.save(tmp_path / "revealed.json", reveal_secrets=True).read_text()
    assert TOKEN in text, "the explicit opt-in does write it (so the check above can fail)"
