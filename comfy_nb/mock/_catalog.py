"""The mock's node catalog: ``nodes.json`` (facts from a real ``/object_info``) plus live combos."""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any

from ..protocol import MODEL_INPUTS, family_of

__all__ = ["DEFAULT_MODELS", "IMAGE_EXTENSIONS", "MODEL_FOLDERS", "Catalog"]

DEFAULT_MODELS: dict[str, list[str]] = {
    "checkpoints": ["sd15-mock.safetensors", "sdxl-mock.safetensors", "v1-5-pruned-emaonly-fp16.safetensors"],
    "diffusion_models": ["flux1-dev.safetensors", "wan2.1_t2v_1.3B_fp16.safetensors"],
    "text_encoders": ["clip_l.safetensors", "t5xxl_fp16.safetensors", "umt5_xxl_fp8_e4m3fn_scaled.safetensors"],
    "vae": ["ae.safetensors", "vae-ft-mse-mock.safetensors", "wan_2.1_vae.safetensors"],
    "loras": ["detail-mock.safetensors", "style-ink-mock.safetensors"],
    "upscale_models": ["4x-mock.pth"],
}
"""The mock's files; each has the family its name says (``protocol.family_of``). The default
SD1.5, Flux and Wan files have the names the templates load, as on an install that followed the official ones."""

ModelFiles = Mapping[str, "Sequence[str] | Mapping[str, str | None]"]
"""``{folder: [file names]}``, or ``{folder: {file name: family}}`` to give files a family their names do not say."""

# ``GET /models`` of a stock install, in its order.
MODEL_FOLDERS: tuple[str, ...] = (
    "checkpoints",
    "configs",
    "loras",
    "vae",
    "text_encoders",
    "diffusion_models",
    "clip_vision",
    "style_models",
    "embeddings",
    "diffusers",
    "vae_approx",
    "controlnet",
    "gligen",
    "upscale_models",
    "custom_nodes",
    "hypernetworks",
    "photomaker",
    "classifiers",
    "model_patches",
    "audio_encoders",
)

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".apng"})

# (class, input) → model folder whose files fill the combo.
_MODEL_COMBOS: dict[tuple[str, str], str] = {
    (cls, name): MODEL_INPUTS[name]
    for cls, name in (
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
    )
}
_INPUT_COMBOS: tuple[tuple[str, str], ...] = (("LoadImage", "image"), ("LoadImageMask", "image"))


def _set_options(spec: list[Any], options: list[str]) -> None:
    if isinstance(spec[0], list):
        spec[0] = list(options)
    else:
        spec[1]["options"] = list(options)


def _load_base() -> dict[str, Any]:
    text = resources.files("comfy_nb.mock").joinpath("nodes.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


class Catalog:
    """``/object_info`` as the mock serves it: static definitions, model files, input-dir images."""

    def __init__(self, models: ModelFiles, input_dir: str) -> None:
        self.models = {k: sorted(v) for k, v in models.items()}
        self._families = {
            (folder, name): family
            for folder, files in models.items()
            if isinstance(files, Mapping)
            for name, family in files.items()
        }
        self.input_dir = input_dir
        self._base = _load_base()
        for (cls, name), folder in _MODEL_COMBOS.items():
            options = list(self.models.get(folder, []))
            if cls == "VAELoader":
                options.append("pixel_space")
            _set_options(self._base[cls]["input"]["required"][name], options)
        self._input_key: tuple[int, int] | None = None
        self._dirty = True
        self._input_files: list[str] = []

    def family(self, folder: str, name: str) -> str | None:
        """A file's model family: the one it was given, else the one its name says."""
        if (folder, name) in self._families:
            return self._families[folder, name]
        return family_of(name, folder)

    def invalidate(self) -> None:
        self._dirty = True

    def _refresh_inputs(self) -> None:
        try:
            st = os.stat(self.input_dir)
            key = (st.st_mtime_ns, st.st_ino)
        except OSError:
            key = (0, 0)
        if not self._dirty and key == self._input_key:
            return
        self._input_key = key
        self._dirty = False
        try:
            names = [
                e.name
                for e in os.scandir(self.input_dir)
                if e.is_file() and os.path.splitext(e.name)[1].lower() in IMAGE_EXTENSIONS
            ]
        except OSError:
            names = []
        self._input_files = sorted(names)
        for cls, name in _INPUT_COMBOS:
            _set_options(self._base[cls]["input"]["required"][name], self._input_files)

    def object_info(self) -> dict[str, Any]:
        """The live catalog (shared; callers must not mutate it)."""
        self._refresh_inputs()
        return self._base

    def one(self, class_type: str) -> dict[str, Any]:
        info = self.object_info().get(class_type)
        return {} if info is None else {class_type: copy.deepcopy(info)}

    def input_files(self) -> set[str]:
        """Every file under ``input/`` as a ``/``-separated relative path (for LoadImage checks)."""
        out: set[str] = set()
        for root, _dirs, files in os.walk(self.input_dir):
            rel = os.path.relpath(root, self.input_dir)
            for f in files:
                out.add(f if rel == "." else f"{rel.replace(os.sep, '/')}/{f}")
        return out

    def input_types(self, class_type: str) -> dict[str, str]:
        """Declared input name → type (``INT``, ``IMAGE``, ``COMBO``...) for coercion; hidden as ``HIDDEN``."""
        info = self._base.get(class_type) or {}
        out: dict[str, str] = {}
        for section in ("required", "optional"):
            for name, spec in ((info.get("input") or {}).get(section) or {}).items():
                head = spec[0] if isinstance(spec, list) and spec else "*"
                out[name] = "COMBO" if isinstance(head, list) else str(head)
        for name in ((info.get("input") or {}).get("hidden") or {}):
            out[name] = "HIDDEN"
        return out

    def is_output(self, class_type: str) -> bool:
        return bool((self._base.get(class_type) or {}).get("output_node"))
