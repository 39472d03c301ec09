"""How ``comfy_nb/mock/nodes.json`` is derived from the captured ``object_info.json``.

Run ``python tests/mock/catalog_source.py`` to regenerate it; ``test_catalog.py`` checks the
package data still matches the capture (facts kept, prose stripped).
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

from captures import FIXTURES

CATALOG = pathlib.Path(__file__).resolve().parents[2] / "comfy_nb" / "mock" / "nodes.json"

CLASSES = ["CheckpointLoaderSimple", "VAELoader", "LoraLoader", "LoraLoaderModelOnly", "CLIPTextEncode", "EmptyLatentImage", "KSampler", "KSamplerAdvanced", "VAEDecode", "VAEEncode", "VAEEncodeForInpaint", "InpaintModelConditioning", "SetLatentNoiseMask", "LatentUpscale", "LatentUpscaleBy", "ImageScale", "ImageScaleBy", "UpscaleModelLoader", "ImageUpscaleWithModel", "LoadImage", "LoadImageMask", "SaveImage", "PreviewImage", "SaveAnimatedWEBP", "SaveAnimatedPNG", "EmptyImage", "ImageInvert", "ImageBlur", "ImageOnlyCheckpointLoader", "SVD_img2vid_Conditioning", "VideoLinearCFGGuidance", "EmptyHunyuanLatentVideo", "RepeatLatentBatch", "SaveImageWebsocket", "PrimitiveInt", "PrimitiveFloat", "PrimitiveString", "GetImageSize", "ImageQuantize", "SlowProgressImage", "UNETLoader", "CLIPLoader", "DualCLIPLoader", "ModelSamplingSD3", "EmptySD3LatentImage", "FluxGuidance", "ConditioningZeroOut"]

# Inputs whose options the mock fills at run time (model files, input-dir images).
DYNAMIC = {
    ("CheckpointLoaderSimple", "ckpt_name"),
    ("ImageOnlyCheckpointLoader", "ckpt_name"),
    ("VAELoader", "vae_name"),
    ("LoraLoader", "lora_name"),
    ("LoraLoaderModelOnly", "lora_name"),
    ("UpscaleModelLoader", "model_name"),
    ("UNETLoader", "unet_name"),
    ("CLIPLoader", "clip_name"),
    ("DualCLIPLoader", "clip_name1"),
    ("DualCLIPLoader", "clip_name2"),
    ("LoadImage", "image"),
    ("LoadImageMask", "image"),
}


def strip_prose(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: strip_prose(v) for k, v in value.items() if k != "tooltip"}
    if isinstance(value, list):
        return [strip_prose(v) for v in value]
    return value


def derive() -> dict[str, Any]:
    info = json.loads((FIXTURES / "object_info.json").read_text())
    out: dict[str, Any] = {}
    for name in CLASSES:
        node = strip_prose(info[name])
        node["description"] = ""
        if "output_tooltips" in node:
            node["output_tooltips"] = [None] * len(node["output_tooltips"])
        for section in ("required", "optional"):
            for input_name, spec in (node["input"].get(section) or {}).items():
                if (name, input_name) in DYNAMIC:
                    if isinstance(spec[0], list):
                        spec[0] = []
                    else:
                        spec[1]["options"] = []
        if name == "SlowProgressImage":
            node["category"] = "testing/mock"
            node["python_module"] = "comfy_nb.mock"
        out[name] = node
    return out


if __name__ == "__main__":
    CATALOG.write_text(json.dumps(derive(), indent=1) + "\n")
    print(f"wrote {CATALOG}")
