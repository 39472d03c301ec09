"""Node behaviour on real pixels: pictures, files, metadata, pipelines; plus the catalog and the CLI."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from typing import Any

import httpx
from _mockwire import Http, Recorder
from captures import capture
from catalog_source import CATALOG, derive
from PIL import Image

from comfy_nb.mock import MockServer

MODELFREE = capture("workflow_modelfree_api.json")


def txt2img(seed: int, text: str = "a red fox", *, sampler: str = "euler", size: int = 64, lora: bool = False) -> dict[str, Any]:
    model: list[Any] = ["4", 0]
    clip: list[Any] = ["4", 1]
    graph: dict[str, Any] = {
        "3": {"class_type": "KSampler", "inputs": {"seed": seed, "steps": 4, "cfg": 7.0, "sampler_name": sampler, "scheduler": "normal", "denoise": 1.0, "model": model, "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}},
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd15-mock.safetensors"}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": size, "height": size, "batch_size": 1}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": text, "clip": clip}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": clip}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "sweep/img", "images": ["8", 0]}},
    }
    if lora:
        graph["10"] = {"class_type": "LoraLoader", "inputs": {"model": ["4", 0], "clip": ["4", 1], "lora_name": "detail-mock.safetensors", "strength_model": 1.0, "strength_clip": 1.0}}
        graph["3"]["inputs"]["model"] = ["10", 0]
        graph["6"]["inputs"]["clip"] = ["10", 1]
    return graph


async def _run(server: MockServer, prompt: dict[str, Any], **extra: Any) -> tuple[dict[str, Any], Recorder]:
    async with Recorder(server.url) as ws, Http(server.url) as http:
        pid = await http.submit(prompt, ws.client_id, **extra)
        await ws.wait_done(pid)
        entry = await http.history(pid)
    assert entry["status"]["status_str"] == "success", entry["status"]
    return entry, ws


async def _image(server: MockServer, ref: dict[str, Any]) -> Image.Image:
    async with httpx.AsyncClient(base_url=server.url) as c:
        r = await c.get("/view", params=ref)
        assert r.status_code == 200
        img = Image.open(io.BytesIO(r.content))
        img.load()
        return img


async def test_modelfree_workflow_gives_the_real_picture(mock_server: MockServer) -> None:
    entry, _ = await _run(mock_server, MODELFREE, extra_data={"extra_pnginfo": {"workflow": {"last_node_id": 6}}})
    saved = await _image(mock_server, entry["outputs"]["5"]["images"][0])
    assert saved.size == (96, 96)
    assert saved.convert("RGB").getextrema() == ((0, 0), (255, 255), (255, 255))  # red, inverted: cyan
    assert json.loads(saved.text["prompt"]) == MODELFREE  # type: ignore[attr-defined]
    assert json.loads(saved.text["workflow"]) == {"last_node_id": 6}  # type: ignore[attr-defined]
    preview = await _image(mock_server, entry["outputs"]["6"]["images"][0])
    assert preview.size == (64, 64) and preview.getpixel((0, 0)) == (0, 255, 255)


async def test_seed_sweep_gives_different_pictures_and_same_seed_the_same(fresh_mock: MockServer) -> None:
    pictures = []
    for seed in (1, 2, 3):
        entry, ws = await _run(fresh_mock, txt2img(seed))
        pictures.append((await _image(fresh_mock, entry["outputs"]["9"]["images"][0])).tobytes())
    assert len(set(pictures)) == 3
    progress = [m for m in ws.texts() if m["type"] == "progress"]
    assert [(p["data"]["value"], p["data"]["max"], p["data"]["node"]) for p in progress] == [(i, 4, "3") for i in range(1, 5)]
    assert sum(1 for m in ws.messages if isinstance(m, bytes)) == 4
    # same parameters again from a fresh server: the very same picture
    with MockServer() as other:
        entry, _ = await _run(other, txt2img(1))
        assert (await _image(other, entry["outputs"]["9"]["images"][0])).tobytes() == pictures[0]
    names = [entry["outputs"]["9"]["images"][0] for entry in [entry]]
    assert names[0]["subfolder"] == "sweep" and names[0]["filename"] == "img_00001_.png"


async def test_prompt_sampler_and_lora_change_the_picture(mock_server: MockServer) -> None:
    async def pic(prompt: dict[str, Any]) -> bytes:
        entry, _ = await _run(mock_server, prompt)
        return (await _image(mock_server, entry["outputs"]["9"]["images"][0])).tobytes()

    base = await pic(txt2img(7))
    assert await pic(txt2img(7, "a blue whale")) != base
    assert await pic(txt2img(7, sampler="dpmpp_2m")) != base
    assert await pic(txt2img(7, lora=True)) != base


async def test_img2img_inpaint_upscale_pipeline(mock_server: MockServer) -> None:
    graph: dict[str, Any] = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "example.png"}},
        "2": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sdxl-mock.safetensors"}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "a castle", "clip": ["2", 1]}},
        "4": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["2", 1]}},
        "5": {"class_type": "ImageScale", "inputs": {"image": ["1", 0], "upscale_method": "bilinear", "width": 64, "height": 64, "crop": "center"}},
        "6": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0xFFFFFF}},
        "7": {"class_type": "LoadImageMask", "inputs": {"image": "example.png", "channel": "red"}},
        "8": {"class_type": "VAEEncodeForInpaint", "inputs": {"pixels": ["5", 0], "vae": ["2", 2], "mask": ["7", 0], "grow_mask_by": 2}},
        "9": {"class_type": "KSamplerAdvanced", "inputs": {"model": ["2", 0], "add_noise": "enable", "noise_seed": 3, "steps": 6, "cfg": 5.0, "sampler_name": "euler", "scheduler": "karras", "positive": ["3", 0], "negative": ["4", 0], "latent_image": ["8", 0], "start_at_step": 2, "end_at_step": 10000, "return_with_leftover_noise": "disable"}},
        "10": {"class_type": "VAEDecode", "inputs": {"samples": ["9", 0], "vae": ["2", 2]}},
        "11": {"class_type": "UpscaleModelLoader", "inputs": {"model_name": "4x-mock.pth"}},
        "12": {"class_type": "ImageUpscaleWithModel", "inputs": {"upscale_model": ["11", 0], "image": ["10", 0]}},
        "13": {"class_type": "ImageScaleBy", "inputs": {"image": ["12", 0], "upscale_method": "area", "scale_by": 0.5}},
        "14": {"class_type": "SaveImage", "inputs": {"images": ["13", 0], "filename_prefix": "pipe"}},
        "15": {"class_type": "GetImageSize", "inputs": {"image": ["13", 0]}},
        "16": {"class_type": "ImageQuantize", "inputs": {"image": ["6", 0], "colors": 4, "dither": "none"}},
        "17": {"class_type": "PreviewImage", "inputs": {"images": ["16", 0]}},
    }
    entry, ws = await _run(mock_server, graph)
    out = await _image(mock_server, entry["outputs"]["14"]["images"][0])
    assert out.size == (128, 128)
    assert [m["data"]["value"] for m in ws.texts() if m["type"] == "progress" and m["data"]["node"] == "9"] == [1, 2, 3, 4]


async def test_latent_ops_and_animated_outputs(mock_server: MockServer) -> None:
    graph: dict[str, Any] = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd15-mock.safetensors"}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "waves", "clip": ["21", 0]}},
        "3": {"class_type": "EmptyHunyuanLatentVideo", "inputs": {"width": 32, "height": 32, "length": 9, "batch_size": 1}},
        "4": {"class_type": "KSampler", "inputs": {"seed": 5, "steps": 2, "cfg": 6.0, "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0, "model": ["23", 0], "positive": ["2", 0], "negative": ["2", 0], "latent_image": ["3", 0]}},
        "5": {"class_type": "VAEDecode", "inputs": {"samples": ["4", 0], "vae": ["22", 0]}},
        "20": {"class_type": "UNETLoader", "inputs": {"unet_name": "wan2.1_t2v_1.3B_fp16.safetensors", "weight_dtype": "default"}},
        "21": {"class_type": "CLIPLoader", "inputs": {"clip_name": "umt5_xxl_fp8_e4m3fn_scaled.safetensors", "type": "wan"}},
        "22": {"class_type": "VAELoader", "inputs": {"vae_name": "wan_2.1_vae.safetensors"}},
        "23": {"class_type": "ModelSamplingSD3", "inputs": {"model": ["20", 0], "shift": 8.0}},
        "6": {"class_type": "SaveAnimatedWEBP", "inputs": {"images": ["5", 0], "filename_prefix": "vid/anim", "fps": 8.0, "lossless": False, "quality": 80, "method": "default"}},
        "7": {"class_type": "SaveAnimatedPNG", "inputs": {"images": ["5", 0], "filename_prefix": "vid/apng", "fps": 8.0, "compress_level": 4}},
        "8": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "9": {"class_type": "RepeatLatentBatch", "inputs": {"samples": ["8", 0], "amount": 2}},
        "10": {"class_type": "LatentUpscaleBy", "inputs": {"samples": ["9", 0], "upscale_method": "bilinear", "scale_by": 1.5}},
        "11": {"class_type": "LatentUpscale", "inputs": {"samples": ["10", 0], "upscale_method": "bilinear", "width": 48, "height": 0, "crop": "disabled"}},
        "12": {"class_type": "VAEDecode", "inputs": {"samples": ["11", 0], "vae": ["1", 2]}},
        "13": {"class_type": "SaveImage", "inputs": {"images": ["12", 0], "filename_prefix": "batch"}},
    }
    entry, _ = await _run(mock_server, graph)
    for node, ext in (("6", ".webp"), ("7", ".png")):
        out = entry["outputs"][node]
        assert out["animated"] == [True] and out["images"][0]["filename"].endswith(ext)
        assert out["images"][0]["subfolder"] == "vid"
        img = await _image(mock_server, out["images"][0])
        assert getattr(img, "n_frames", 1) == 9
    batch = entry["outputs"]["13"]["images"]
    assert [b["filename"] for b in batch] == ["batch_00001_.png", "batch_00002_.png"]
    assert (await _image(mock_server, batch[0])).size == (48, 48)


async def test_svd_video_pipeline() -> None:
    graph: dict[str, Any] = {
        "1": {"class_type": "ImageOnlyCheckpointLoader", "inputs": {"ckpt_name": "svd_xt-mock.safetensors"}},
        "2": {"class_type": "LoadImage", "inputs": {"image": "example.png"}},
        "3": {"class_type": "SVD_img2vid_Conditioning", "inputs": {"clip_vision": ["1", 1], "init_image": ["2", 0], "vae": ["1", 2], "width": 64, "height": 48, "video_frames": 4, "motion_bucket_id": 127, "fps": 6, "augmentation_level": 0.0}},
        "4": {"class_type": "VideoLinearCFGGuidance", "inputs": {"model": ["1", 0], "min_cfg": 1.0}},
        "5": {"class_type": "KSampler", "inputs": {"seed": 1, "steps": 2, "cfg": 2.5, "sampler_name": "euler", "scheduler": "karras", "denoise": 1.0, "model": ["4", 0], "positive": ["3", 0], "negative": ["3", 1], "latent_image": ["3", 2]}},
        "6": {"class_type": "VAEDecode", "inputs": {"samples": ["5", 0], "vae": ["1", 2]}},
        "7": {"class_type": "SaveAnimatedWEBP", "inputs": {"images": ["6", 0], "filename_prefix": "svd", "fps": 6.0, "lossless": False, "quality": 80, "method": "default"}},
        "8": {"class_type": "PrimitiveInt", "inputs": {"value": 3}},
        "9": {"class_type": "PrimitiveString", "inputs": {"value": "x"}},
        "10": {"class_type": "PrimitiveFloat", "inputs": {"value": 0.5}},
        "11": {"class_type": "EmptyImage", "inputs": {"width": ["8", 0], "height": 4, "batch_size": 1, "color": 0}},
        "12": {"class_type": "SaveImageWebsocket", "inputs": {"images": ["11", 0]}},
    }
    with MockServer(models={"checkpoints": ["svd_xt-mock.safetensors"]}) as server:
        entry, ws = await _run(server, graph)
        img = await _image(server, entry["outputs"]["7"]["images"][0])
        assert img.size == (64, 48) and getattr(img, "n_frames", 1) == 4
        png = [m for m in ws.messages if isinstance(m, bytes) and m[:8] == b"\x00\x00\x00\x01\x00\x00\x00\x02"]
        assert [Image.open(io.BytesIO(m[8:])).size for m in png] == [(3, 4)]


def test_catalog_matches_capture_without_prose() -> None:
    shipped = json.loads(CATALOG.read_text())
    assert shipped == derive()
    text = CATALOG.read_text()
    assert '"tooltip"' not in text
    assert all(v["description"] == "" for v in shipped.values())
    assert shipped["SlowProgressImage"]["category"] == "testing/mock"


def test_cli_runs_in_foreground(tmp_path: Any) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "comfy_nb.mock", "--port", "0", "--step-delay", "0", "--output-dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        url = line.split(" on ", 1)[1].split()[0]
        assert url.startswith("http://127.0.0.1:")
        r = httpx.post(url + "/prompt", json={"prompt": MODELFREE})
        assert r.status_code == 200
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()



def test_grey_masks_load_like_rgb_ones(mock_server: MockServer) -> None:
    """LoadImageMask converts any mode to RGBA first (as the real node does), so an inpaint with a
    one-channel white mask repaints the picture just like an RGB one."""
    import numpy as np
    from PIL import Image

    from comfy_nb import ComfyClient
    from comfy_nb.workflows import GenerationTask

    blue = (176, 196, 222)
    with ComfyClient(mock_server.url) as client:
        base = client.upload_image(Image.new("RGB", (64, 64), blue), name="grey-base.png", overwrite=True)
        for mask in (np.full((64, 64), 255, np.uint8), np.full((64, 64, 3), 255, np.uint8)):
            name = client.upload_image(mask, name=f"grey-mask-{mask.ndim}.png", overwrite=True)
            task = GenerationTask(type="inpaint", prompt="a full moon", init_image=base, mask=name,
                                  width=64, height=64, steps=2, seed=1)
            (out,) = client.submit_task(task).result(timeout=60)
            pixels = np.asarray(client.load_image(out).convert("RGB"))
            assert (pixels != np.array(blue)).any(), f"{mask.ndim}-D mask repainted nothing"
