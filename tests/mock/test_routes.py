"""HTTP routes: status codes and body shapes as captured (prompt errors, queue, history, files, origin)."""

from __future__ import annotations

import hashlib
import io
import json
from typing import Any

import httpx
import pytest
from _mockwire import Http, Recorder
from captures import capture
from PIL import Image

from comfy_nb.mock import MockServer

INDEX = capture("prompt_errors_index.json")["cases"]
MODELFREE = capture("workflow_modelfree_api.json")


def _error_shape(body: dict[str, Any]) -> Any:
    err = body["error"]
    nodes = {
        nid: (
            e["class_type"],
            e["dependent_outputs"],
            [(x["type"], x["message"], x["details"] if x["type"] != "exception_during_inner_validation" else None, sorted(x["extra_info"])) for x in e["errors"]],
        )
        for nid, e in body["node_errors"].items()
    }
    return (err["type"], err["message"], err["details"], sorted(err["extra_info"]), nodes)


@pytest.mark.parametrize("case", sorted(c for c, v in INDEX.items() if v.get("file") and v["status"] == 400))
async def test_prompt_error_bodies(mock_server: MockServer, case: str) -> None:
    spec = INDEX[case]
    want = capture(spec["file"])
    async with Http(mock_server.url) as http:
        r = await http.client.post("/prompt", json=spec["request"])
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("application/json")
    assert _error_shape(r.json()) == _error_shape(want)


@pytest.mark.parametrize("case", ["partial_one_output_invalid", "v3_combo_bad_value"])
async def test_prompt_partial_200(mock_server: MockServer, case: str) -> None:
    spec = INDEX[case]
    async with Http(mock_server.url) as http:
        r = await http.client.post("/prompt", json=spec["request"])
    assert r.status_code == 200
    body = r.json()
    assert list(body) == ["prompt_id", "number", "node_errors"]
    if spec.get("file"):
        want = capture(spec["file"])
        assert body["node_errors"] == want["node_errors"]
    else:
        assert body["node_errors"] == {}


async def test_v3_combo_bad_value_fails_at_run_time(fresh_mock: MockServer) -> None:
    async with Recorder(fresh_mock.url) as ws, Http(fresh_mock.url) as http:
        pid = await http.submit(INDEX["v3_combo_bad_value"]["request"]["prompt"], ws.client_id)
        await ws.wait_done(pid)
    err = next(m for m in ws.texts() if m["type"] == "execution_error")["data"]
    assert err["node_type"] == "ImageQuantize" and err["exception_type"] == "ValueError"


async def test_prompt_misc_bodies(mock_server: MockServer) -> None:
    async with Http(mock_server.url) as http:
        r = await http.client.post("/prompt", content=b"{not json", headers={"content-type": "application/json"})
        assert r.status_code == 500 and r.text == INDEX["malformed_json_body"]["response_text"]
        r = await http.client.post("/prompt", json={"prompt": []})
        assert r.status_code == 400 and r.json() == INDEX["prompt_is_empty_list"]["response"]
        r = await http.client.post("/api/prompt", json={"prompt": MODELFREE, "prompt_id": "my-own-id", "number": 42.5})
        assert r.status_code == 200 and r.json()["prompt_id"] == "my-own-id" and r.json()["number"] == 42.5
        a = (await http.client.post("/prompt", json={"prompt": MODELFREE})).json()["number"]
        b = (await http.client.post("/prompt", json={"prompt": MODELFREE, "front": True})).json()["number"]
        assert b == -(a + 1)
        extra = dict(MODELFREE)
        extra["5"] = {**MODELFREE["5"], "inputs": {**MODELFREE["5"]["inputs"], "not_an_input": 1}}
        assert (await http.client.post("/prompt", json={"prompt": extra})).status_code == 200


async def test_partial_execution_targets_and_sensitive_extra_data(fresh_mock: MockServer) -> None:
    async with Recorder(fresh_mock.url) as ws, Http(fresh_mock.url) as http:
        extra = {"extra_pnginfo": {"workflow": {"nodes": []}}, "auth_token_comfy_org": "secret", "api_key_comfy_org": "k"}
        blocker = await http.submit(
            {"1": {"class_type": "SlowProgressImage", "inputs": {"steps": 200, "seconds_per_step": 0.01, "width": 8, "height": 8, "send_preview": False, "send_text": False, "seed": 0}}, "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}},
            ws.client_id,
        )
        pid = await http.submit(MODELFREE, ws.client_id, partial_execution_targets=["6"], extra_data=extra)
        queued = (await http.client.get("/queue")).json()["queue_pending"][0]
        assert queued[3]["auth_token_comfy_org"] == "secret" and queued[4] == ["6"]
        await http.client.post("/interrupt", json={"prompt_id": blocker})
        await ws.wait_done(pid)
        entry = await http.history(pid)
    assert entry["prompt"][4] == ["6"] and list(entry["outputs"]) == ["6"]
    assert entry["prompt"][3] == {"extra_pnginfo": {"workflow": {"nodes": []}}, "client_id": ws.client_id}


async def test_history_listing_and_ops(fresh_mock: MockServer) -> None:
    async with Recorder(fresh_mock.url) as ws, Http(fresh_mock.url) as http:
        ids = []
        for seed in range(3):
            ids.append(await http.submit({**MODELFREE, "1": {**MODELFREE["1"], "inputs": {**MODELFREE["1"]["inputs"], "color": seed}}}, ws.client_id))
            await ws.wait_done(ids[-1])
        c = http.client
        assert list((await c.get("/history")).json()) == ids
        assert list((await c.get("/history?max_items=2")).json()) == ids[1:]
        assert list((await c.get("/history?max_items=1&offset=0")).json()) == ids[:1]
        assert list((await c.get("/api/history?offset=1")).json()) == ids[1:]
        assert (await c.get("/history/not-a-real-id")).json() == {}
        r = await c.post("/history", json={"delete": [ids[0]]})
        assert r.status_code == 200 and r.content == b"" and r.headers.get("content-type") in (None, "application/octet-stream")
        assert (await c.get(f"/history/{ids[0]}")).json() == {}
        await c.post("/history", json={"clear": True})
        assert (await c.get("/history")).json() == {}
        assert (await c.post("/history", content=b"")).status_code == 500
        assert (await c.post("/queue", content=b"")).status_code == 500
        assert (await c.post("/interrupt", content=b"nonsense")).status_code == 200
    assert fresh_mock.stats.history_fetches >= 7
    assert fresh_mock.stats.requests["GET /history/{prompt_id}"] == 2


async def test_simple_routes(mock_server: MockServer) -> None:
    async with httpx.AsyncClient(base_url=mock_server.url) as c:
        for path in ("/system_stats", "/api/system_stats"):
            body = (await c.get(path)).json()
            assert set(body) == {"system", "devices"}
            assert set(capture("system_stats.json")["system"]) == set(body["system"])
            assert set(body["devices"][0]) == set(capture("system_stats.json")["devices"][0])
        assert (await c.get("/features")).json() == capture("features.json")
        assert (await c.get("/models")).json() == capture("models.json")
        assert (await c.get("/models/checkpoints")).json() == ["sd15-mock.safetensors", "sdxl-mock.safetensors", "v1-5-pruned-emaonly-fp16.safetensors"]
        assert (await c.get("/models/diffusers")).json() == []
        r = await c.get("/models/not_a_folder")
        assert r.status_code == 404 and r.content == b""
        assert (await c.get("/embeddings")).json() == []
        assert isinstance((await c.get("/extensions")).json(), list)
        assert (await c.get("/api/prompt")).json().keys() == {"exec_info"}
        assert (await c.get("/object_info/DoesNotExist")).json() == {}
        one = (await c.get("/api/object_info/SaveImage")).json()
        assert one == {"SaveImage": {**capture("object_info_single_SaveImage.json")["SaveImage"], "description": ""}} or set(one) == {"SaveImage"}
        info = (await c.get("/object_info")).json()
        assert info["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"][0] == ["sd15-mock.safetensors", "sdxl-mock.safetensors", "v1-5-pruned-emaonly-fp16.safetensors"]
        assert "pixel_space" in info["VAELoader"]["input"]["required"]["vae_name"][0]
        assert info["UpscaleModelLoader"]["input"]["required"]["model_name"][1]["options"] == ["4x-mock.pth"]
        assert "example.png" in info["LoadImage"]["input"]["required"]["image"][0]
        r = await c.post("/free", json={"unload_models": True})
        assert r.status_code == 200 and r.content == b""
        assert (await c.get("/settings/Comfy.DoesNotExist")).text == "null"
        assert (await c.get("/internal/files/bogus")).json() == {"error": "Invalid directory type"}
        assert (await c.get("/api/internal/folder_paths")).status_code == 404


async def test_custom_models() -> None:
    with MockServer(models={"checkpoints": ["mine.ckpt"], "loras": []}) as server:
        async with httpx.AsyncClient(base_url=server.url) as c:
            assert (await c.get("/models/checkpoints")).json() == ["mine.ckpt"]
            assert (await c.get("/models/loras")).json() == []
            info = (await c.get("/object_info/LoraLoader")).json()
            assert info["LoraLoader"]["input"]["required"]["lora_name"][0] == []


async def test_origin_checks(mock_server: MockServer) -> None:
    port = mock_server.port
    async with httpx.AsyncClient(base_url=mock_server.url) as c:
        r = await c.get("/queue", headers={"Origin": "http://evil.example.com"})
        assert r.status_code == 403 and r.content == b""
        r = await c.post("/prompt", json={"prompt": {}}, headers={"Origin": f"http://localhost:{port}"})
        assert r.status_code == 403
        r = await c.post("/prompt", json={"prompt": {}}, headers={"Origin": f"http://127.0.0.1:{port}"})
        assert r.status_code == 400 and r.json()["error"]["type"] == "prompt_no_outputs"
        r = await c.options("/prompt", headers={"Origin": "http://evil.example.com", "Access-Control-Request-Method": "POST"})
        assert r.status_code == 403
        r = await c.options("/prompt")
        assert r.status_code == 200 and r.content == b"" and "access-control-allow-origin" not in r.headers
    import websockets

    with pytest.raises(websockets.InvalidStatus) as info:
        async with websockets.connect(mock_server.url.replace("http", "ws") + "/ws?clientId=x", origin="http://evil.example.com"):  # type: ignore[arg-type]
            pass
    assert info.value.response.status_code == 403
    async with Recorder(mock_server.url, "api-prefix-test") as ws:
        ws.url = mock_server.url
    async with websockets.connect(mock_server.url.replace("http", "ws") + "/api/ws?clientId=api-prefix-test") as raw:
        first = json.loads(await raw.recv())
        assert first["type"] == "status" and first["data"]["sid"] == "api-prefix-test"


def _png(color: tuple[int, int, int], size: tuple[int, int] = (8, 8), mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, color if mode == "RGB" else (*color, 128)).save(buf, format="PNG")
    return buf.getvalue()


async def test_upload_and_view(fresh_mock: MockServer) -> None:
    want = capture("upload_results.json")["results"]
    name = "fixture_upload.png"
    async with httpx.AsyncClient(base_url=fresh_mock.url) as c:

        async def up(data: bytes, route: str = "/upload/image", **fields: str) -> httpx.Response:
            return await c.post(route, files={"image": (name, data, "image/png")}, data=fields)

        a, b = _png((255, 0, 0)), _png((0, 255, 0))
        r = await up(a, type="input", subfolder="")
        assert r.json() == {**want["first_upload"]["response"], "name": name}
        assert (await up(a)).json()["name"] == name
        assert (await up(b)).json()["name"] == "fixture_upload (1).png"
        assert (await up(b, overwrite="true")).json()["name"] == name
        r = await up(a, type="temp", subfolder="fixtures/sub")
        assert r.json() == {"name": name, "subfolder": "fixtures/sub", "type": "temp"}
        r = await up(a, subfolder="../../")
        assert r.status_code == 400 and r.content == b""
        r = await c.post("/upload/image", data={"type": "input"}, files={"other": ("x", b"1")})
        assert r.status_code == 400
        r = await up(a, type="bogus")
        assert r.status_code == 500
        combo = (await c.get("/object_info/LoadImage")).json()["LoadImage"]["input"]["required"]["image"]
        assert combo[0] == ["example.png", "fixture_upload (1).png", name] and combo[1] == {"image_upload": True}
        ref = json.dumps({"filename": name, "subfolder": "", "type": "input"})
        r = await c.post(
            "/upload/mask",
            files={"image": ("clipspace-mask.png", _png((0, 0, 0), mode="RGBA"), "image/png")},
            data={"original_ref": ref, "type": "input", "subfolder": "clipspace"},
        )
        assert r.json() == want["upload_mask"]["response"]
        masked = (await c.get("/view", params={"filename": "clipspace-mask.png", "type": "input", "subfolder": "clipspace"}))
        assert masked.status_code == 200 and Image.open(io.BytesIO(masked.content)).getchannel("A").getextrema() == (128, 128)

        # views of an output, as view_checks.json
        async with Recorder(fresh_mock.url) as ws:
            pid = (await c.post("/prompt", json={"prompt": MODELFREE, "client_id": ws.client_id})).json()["prompt_id"]
            await ws.wait_done(pid)
        out = (await c.get(f"/history/{pid}")).json()[pid]["outputs"]["5"]["images"][0]["filename"]
        for check in capture("view_checks.json")["checks"]:
            query = check["query"].replace("fixture_modelfree_00003_.png", out).replace("fixture_upload_672fa6.png", name)
            r = await c.get("/view?" + query)
            assert r.status_code == check["status"], query
            if check["status"] == 200:
                assert r.headers["content-type"] == check["content_type"], query
                assert r.headers["content-disposition"] == check["content_disposition"].replace("fixture_modelfree_00003_.png", out).replace("fixture_upload_672fa6.png", name)
                assert r.content[:4].hex() == check["magic_hex"]
                assert "cache-control" not in r.headers
        assert (await c.get(f"/view?filename={out}%20[output]")).status_code == 200


async def test_upload_too_large() -> None:
    with MockServer(max_upload_size=1000) as server:
        async with httpx.AsyncClient(base_url=server.url) as c:
            r = await c.post("/upload/image", files={"image": ("big.png", b"x" * 5000, "image/png")})
            assert r.status_code == 413 and r.text == "Maximum request body size 1000 exceeded."
            assert (await c.get("/features")).json()["max_upload_size"] == 1000


def test_duplicate_detection_is_by_content(tmp_path: Any) -> None:
    with MockServer(root_dir=tmp_path) as server, httpx.Client(base_url=server.url) as c:
            data = _png((1, 2, 3))
            (tmp_path / "input" / "same.png").write_bytes(data)
            r = c.post("/upload/image", files={"image": ("same.png", data, "image/png")})
            assert r.json()["name"] == "same.png"
            assert hashlib.sha256((tmp_path / "input" / "same.png").read_bytes()).digest() == hashlib.sha256(data).digest()
    assert (tmp_path / "input" / "same.png").exists()  # a caller's root_dir is left in place


async def test_requests_without_a_route_are_counted_apart(fresh_mock: MockServer) -> None:
    async with Http(fresh_mock.url) as http:
        assert (await http.client.get("/api/no/such/route")).status_code == 404
        assert (await http.client.delete("/prompt")).status_code == 405
        assert (await http.client.get("/view", params={"filename": "missing.png"})).status_code == 404
    assert fresh_mock.stats.unrouted == {"GET /no/such/route": 1, "DELETE /prompt": 1}
    assert fresh_mock.stats.requests["GET /view"] == 1  # a route that answers 404 itself is routed
