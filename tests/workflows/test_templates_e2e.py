"""Every template runs on the mock server (raw httpx + WebSocket) and yields outputs of the right kind and size."""

from __future__ import annotations

import io
import json
import uuid
from typing import Any

import httpx
import pytest
import websockets
from PIL import Image

from comfy_nb.config import ComfyConfig
from comfy_nb.mock import MockServer
from comfy_nb.protocol import family_of
from comfy_nb.workflows import GenerationTask

TIMEOUT = 30.0


async def _run(server: MockServer, prompt: dict[str, Any]) -> dict[str, Any]:
    """Submit with a client id, wait for the final ``executing null``, return the history entry."""
    client_id = uuid.uuid4().hex
    ws_url = server.url.replace("http", "ws", 1) + f"/ws?clientId={client_id}"
    async with (
        websockets.connect(ws_url, max_size=None, open_timeout=TIMEOUT) as ws,
        httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as http,
    ):
        response = await http.post("/prompt", json={"prompt": prompt, "client_id": client_id})
        assert response.status_code == 200, response.text
        prompt_id = response.json()["prompt_id"]
        while True:
            message = await ws.recv()
            if isinstance(message, str):
                data = json.loads(message)
                if data["type"] == "execution_error":
                    pytest.fail(f"execution error: {data['data']}")
                if (
                    data["type"] == "executing"
                    and data["data"].get("node") is None
                    and (data["data"].get("prompt_id") == prompt_id)
                ):
                    break
        entry: dict[str, Any] = (await http.get(f"/history/{prompt_id}")).json()[prompt_id]
        for files in entry["outputs"].values():
            for ref in files.get("images", []):
                view = await http.get("/view", params=ref)
                ref["pil"] = Image.open(io.BytesIO(view.content))
        return entry


async def _upload(server: MockServer) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (96, 64), "white").save(buffer, format="PNG")
    async with httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as http:
        files = {"image": ("e2e_input.png", buffer.getvalue(), "image/png")}
        answer = await http.post("/upload/image", files=files, data={"overwrite": "true"})
        name: str = answer.json()["name"]
        return name


def _images(entry: dict[str, Any]) -> list[dict[str, Any]]:
    return [ref for files in entry["outputs"].values() for ref in files.get("images", [])]


@pytest.mark.parametrize(
    "kind", ["image", "img2img", "inpaint", "inpaint_alpha", "upscale", "video", "grid", "hires_fix", "flux"]
)
async def test_template_runs_on_mock(kind: str, mock_server: MockServer) -> None:
    async with httpx.AsyncClient(base_url=mock_server.url, timeout=TIMEOUT) as http:
        info = (await http.get("/object_info")).json()
    models = {
        "checkpoint": info["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"][0][0],
        "vae": next(v for v in info["VAELoader"]["input"]["required"]["vae_name"][0] if family_of(v, "vae") == "sd15"),
        "loras": [(info["LoraLoader"]["input"]["required"]["lora_name"][0][0], 0.7)],
    }
    upscaler = info["UpscaleModelLoader"]["input"]["required"]["model_name"]
    upscale_model = upscaler[0][0] if isinstance(upscaler[0], list) else upscaler[1]["options"][0]
    config = ComfyConfig(server_url=mock_server.url, upscale_model=upscale_model, **models)
    if kind in ("hires_fix", "flux"):
        config.workflows = {**config.workflows, "image": "hires_fix" if kind == "hires_fix" else "txt2img_flux"}
    image = await _upload(mock_server) if kind in ("img2img", "inpaint", "inpaint_alpha", "upscale") else None
    make = {
        "image": lambda: GenerationTask(prompt="a red fox", width=128, height=96, steps=2),
        "hires_fix": lambda: GenerationTask(prompt="a red fox", width=128, height=96, steps=2),
        "flux": lambda: GenerationTask(prompt="a red fox", width=128, height=96, steps=2),
        "inpaint_alpha": lambda: GenerationTask(
            type="inpaint", prompt="fox", width=128, height=96, steps=2, init_image=image
        ),
        "img2img": lambda: GenerationTask(
            prompt="a red fox", width=128, height=96, steps=2, init_image=image
        ),
        "inpaint": lambda: GenerationTask(
            type="inpaint", prompt="fox", width=128, height=96, steps=2, init_image=image, mask=image
        ),
        "upscale": lambda: GenerationTask(type="upscale", init_image=image, scale_by=0.5),
        "video": lambda: GenerationTask(
            type="video", prompt="fox", width=128, height=96, steps=2, frames=5, fps=8.0
        ),
        "grid": lambda: GenerationTask(type="grid", prompt="fox", width=64, height=64, steps=2, batch_size=3),
    }
    task = make[kind]()
    prompt, meta = task.to_prompt(config, info)
    entry = await _run(mock_server, prompt)
    images = _images(entry)
    sizes = [ref["pil"].size for ref in images]
    if kind == "upscale":
        assert sizes == [(96 * 4 // 2, 64 * 4 // 2)]
    elif kind == "hires_fix":
        assert sizes == [(192, 144)]
    elif kind == "grid":
        assert sizes == [(64, 64)] * 3
    elif kind == "video":
        (ref,) = images
        assert ref["filename"].endswith(".webp") and ref["pil"].size == (128, 96)
        assert getattr(ref["pil"], "n_frames", 1) == 5
        assert any(files.get("animated") == [True] for files in entry["outputs"].values())
    else:
        assert sizes == [(128, 96)]
    assert meta["type"] == task.type
