"""The mock's cloud mode over real sockets: key checks, WS token, signed redirects, flat uploads, parallel jobs."""

from __future__ import annotations

import hashlib
import io
import json
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from PIL import Image

from comfy_nb.mock import MockServer

KEY = "cloud-key-SECRET-7"


@pytest.fixture
def cloud() -> Iterator[MockServer]:
    with MockServer(step_delay=0, cloud=True, api_key=KEY, parallel=3) as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def tiny(color: int) -> dict[str, Any]:
    return {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": color}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "cloud/img"}},
    }


def slow(seed: int) -> dict[str, Any]:
    return {
        "1": {"class_type": "SlowProgressImage",
              "inputs": {"steps": 400, "seconds_per_step": 0.02, "width": 8, "height": 8,
                         "send_preview": False, "send_text": False, "seed": seed}},
        "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}},
    }


H = {"X-API-Key": KEY}


async def test_every_route_needs_the_key_and_lives_under_api(cloud: MockServer, http: aiohttp.ClientSession) -> None:
    async with http.get(cloud.url + "/api/system_stats") as r:
        assert r.status == 401 and "X-API-Key" in (await r.json())["error"]["message"]
    async with http.get(cloud.url + "/api/system_stats", headers={"X-API-Key": "wrong"}) as r:
        assert r.status == 401
    async with http.get(cloud.url + "/api/system_stats", headers=H) as r:
        assert r.status == 200
    async with http.get(cloud.url + "/system_stats", headers=H) as r:
        assert r.status == 404
    async with http.get(cloud.url + "/api/jobs", params={"limit": 1}, headers=H) as r:
        assert r.status == 200 and (await r.json())["jobs"] == []
    assert cloud.cloud_front is not None and cloud.cloud_front.stats.unauthorized == 2
    assert KEY not in repr(cloud) and "cloud" in repr(cloud)


async def test_websocket_needs_the_token(cloud: MockServer, http: aiohttp.ClientSession) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await http.ws_connect(cloud.ws_url + "?clientId=a")
    assert refused.value.status == 401
    async with http.ws_connect(cloud.ws_url + f"?clientId=a&token={KEY}") as ws:
        hello = json.loads((await ws.receive()).data)
        assert hello["type"] == "status" and hello["data"]["sid"] == "a"


async def _run(cloud: MockServer, http: aiohttp.ClientSession, graph: dict[str, Any]) -> dict[str, Any]:
    """Submit over /api/prompt and wait on the socket for the end; return the history entry."""
    cid = uuid.uuid4().hex
    async with http.ws_connect(cloud.ws_url + f"?clientId={cid}&token={KEY}") as ws:
        async with http.post(cloud.url + "/api/prompt", json={"prompt": graph, "client_id": cid}, headers=H) as r:
            assert r.status == 200
            pid = (await r.json())["prompt_id"]
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                data = json.loads(msg.data)
                if data["type"] == "executing" and data["data"].get("node") is None:
                    break
    async with http.get(cloud.url + f"/api/history/{pid}", headers=H) as r:
        entry: dict[str, Any] = (await r.json())[pid]
    return entry


async def test_view_redirects_to_a_signed_storage_url_that_never_takes_the_key(
    cloud: MockServer, http: aiohttp.ClientSession
) -> None:
    entry = await _run(cloud, http, tiny(0x00FF00))
    image = entry["outputs"]["2"]["images"][0]
    async with http.get(cloud.url + "/api/view", params=image, headers=H, allow_redirects=False) as r:
        assert r.status == 302
        location = r.headers["Location"]
    assert cloud.storage_url is not None and location.startswith(cloud.storage_url + "/blob?")
    assert urlsplit(location).port != urlsplit(cloud.url).port and KEY not in location
    async with http.get(location) as r:  # no key: served
        assert r.status == 200 and r.content_type == "image/png"
        assert Image.open(io.BytesIO(await r.read())).convert("RGB").getpixel((0, 0)) == (0, 255, 0)
    async with http.get(location, headers=H) as r:  # a client that leaks the key is refused and counted
        assert r.status == 400
    tampered = location.replace("filename=", "filename=x")
    async with http.get(tampered) as r:
        assert r.status == 403
    front = cloud.cloud_front
    assert front is not None
    assert (front.stats.storage_served, front.stats.storage_key_leaks, front.stats.storage_bad_signature) == (1, 1, 1)
    async with http.get(cloud.url + "/api/view", params={"filename": "nope.png"}, headers=H) as r:
        assert r.status == 404


async def test_signed_urls_expire(http: aiohttp.ClientSession) -> None:
    with MockServer(step_delay=0, cloud=True, api_key=KEY, url_ttl=-1) as server:
        async with http.get(server.url + "/api/view", params={"filename": "example.png", "type": "input"},
                            headers=H, allow_redirects=False) as r:
            location = r.headers["Location"]
        assert int(parse_qs(urlsplit(location).query)["expires"][0]) > 0
        async with http.get(location) as r:
            assert r.status == 403 and "expired" in await r.text()
        assert server.cloud_front is not None and server.cloud_front.stats.storage_expired == 1


async def test_uploads_are_flat_and_content_addressed(cloud: MockServer, http: aiohttp.ClientSession) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (4, 4), (1, 2, 3)).save(buf, format="PNG")
    data = buf.getvalue()
    names = []
    for name, sub in (("a.png", "deep/sub"), ("b.png", "")):
        form = aiohttp.FormData()
        form.add_field("image", data, filename=name, content_type="image/png")
        form.add_field("subfolder", sub)
        async with http.post(cloud.url + "/api/upload/image", data=form, headers=H) as r:
            body = await r.json()
        assert body["subfolder"] == "" and body["type"] == "input"
        names.append(body["name"])
    digest = hashlib.sha256(data).hexdigest()
    assert names == [f"{digest}.png"] * 2
    assert os.path.isfile(os.path.join(cloud.input_dir, f"{digest}.png"))
    assert not os.path.exists(os.path.join(cloud.input_dir, "deep"))
    graph = {
        "1": {"class_type": "LoadImage", "inputs": {"image": names[0]}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "cloud/in"}},
    }
    entry = await _run(cloud, http, graph)
    assert entry["status"]["status_str"] == "success"


async def test_jobs_run_in_parallel_up_to_the_limit(cloud: MockServer, http: aiohttp.ClientSession) -> None:
    cid = uuid.uuid4().hex
    started: set[str] = set()
    async with http.ws_connect(cloud.ws_url + f"?clientId={cid}&token={KEY}") as ws:
        pids = []
        for seed in range(4):
            body = {"prompt": slow(seed), "client_id": cid}
            async with http.post(cloud.url + "/api/prompt", json=body, headers=H) as r:
                pids.append((await r.json())["prompt_id"])
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                data = json.loads(msg.data)
                if data["type"] == "progress":
                    started.add(data["data"]["prompt_id"])
                    if len(started) == 3:
                        break
        async with http.get(cloud.url + "/api/queue", headers=H) as r:
            queue = await r.json()
        assert {item[1] for item in queue["queue_running"]} == started  # three at once
        assert [item[1] for item in queue["queue_pending"]] == [pids[3]]  # the fourth waits for a slot
        async with http.get(cloud.url + "/api/jobs", headers=H) as r:
            jobs = (await r.json())["jobs"]
        assert sorted(j["status"] for j in jobs) == ["in_progress"] * 3 + ["pending"]
        for pid in pids:
            async with http.post(cloud.url + f"/api/jobs/{pid}/cancel", headers=H) as r:
                assert r.status == 200
        ended = 0
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.TEXT and json.loads(msg.data)["type"] == "execution_interrupted":
                ended += 1
                if ended == 3:
                    break
    async with http.post(cloud.url + f"/api/jobs/{pids[0]}/cancel", headers=H) as r:
        assert r.status == 409  # already over


def test_the_command_line_starts_the_cloud_mode() -> None:
    import re
    import subprocess
    import sys
    import urllib.error
    import urllib.request

    proc = subprocess.Popen(
        [sys.executable, "-m", "comfy_nb.mock", "--cloud", "--port", "0", "--parallel", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "COMFY_CLOUD_API_KEY": KEY, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert KEY not in line  # a key given by the user is never printed
        m = re.search(r"listening on (http://127\.0\.0\.1:\d+), cloud mode, storage host http://127\.0\.0\.1:\d+", line)
        assert m, line
        url = m.group(1)
        request = urllib.request.Request(url + "/api/system_stats", headers={"X-API-Key": KEY})
        with urllib.request.urlopen(request, timeout=10) as r:
            assert r.status == 200
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url + "/api/system_stats", timeout=10)
        assert refused.value.code == 401
        refused.value.close()
    finally:
        proc.terminate()
        proc.wait(10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
