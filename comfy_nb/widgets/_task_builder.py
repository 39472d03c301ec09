"""TaskBuilder: a form that builds a GenerationTask and queues it without blocking."""

from __future__ import annotations

import functools
import logging
import random
import threading
import typing
from collections.abc import Callable
from typing import Any

import ipywidgets as W

from .._observers import Observers
from ..client import ClientLike
from . import _bg
from ._forms import LoraStack, field_layout, lora_triples, section, set_options, status_html
from ._job_view import JobView

__all__ = ["TaskBuilder"]

log = logging.getLogger("comfy_nb.widgets")

SIZE_PRESETS: dict[str, tuple[int, int]] = {
    "512 × 512 (1:1)": (512, 512),
    "768 × 768 (1:1)": (768, 768),
    "1024 × 1024 (1:1)": (1024, 1024),
    "832 × 1216 (2:3)": (832, 1216),
    "1216 × 832 (3:2)": (1216, 832),
    "768 × 1344 (9:16)": (768, 1344),
    "1344 × 768 (16:9)": (1344, 768),
}
_CUSTOM = "custom"
_FALLBACK_TYPES = ("txt2img", "img2img", "inpaint")
_NEEDS_IMAGE = ("img2img", "inpaint", "upscale")
_NEEDS_MASK = ("inpaint",)
_MAX_SEED = 2**32 - 1
_MAX_JOB_VIEWS = 6


def _task_class() -> Any:
    from ..workflows import GenerationTask

    return GenerationTask


def _task_types() -> tuple[str, ...]:
    """The task types GenerationTask accepts (read from its ``type`` field), or a fallback."""
    try:
        cls = _task_class()
    except ImportError:
        return _FALLBACK_TYPES
    ann: Any = None
    fields = getattr(cls, "model_fields", None)
    if fields and "type" in fields:
        ann = fields["type"].annotation
    else:
        ann = typing.get_type_hints(cls).get("type") if hasattr(cls, "__annotations__") else None
    if ann is not None:
        args = typing.get_args(ann)
        if args and all(isinstance(a, str) for a in args):
            return tuple(args)
        members = getattr(ann, "__members__", None)
        if members:
            return tuple(str(m.value) for m in members.values())
    return _FALLBACK_TYPES


class TaskBuilder(W.VBox):  # type: ignore[misc]
    """Build a generation task and queue it; new jobs appear below (and in an attached Gallery).

    Parameters
    ----------
    client:
        An ``AsyncComfyClient`` or ``ComfyClient``; samplers, schedulers and models come from it.
    gallery:
        Optional ``Gallery`` that receives every queued job.
    show_jobs:
        Show a JobView per queued job under the form (default True).
    """

    def __init__(self, client: ClientLike, *, gallery: Any = None, show_jobs: bool = True) -> None:
        self._client = client
        self._gallery = gallery
        self._lock = threading.Lock()
        self._job_listeners: Observers[Any] = Observers("on_job listener")
        self.jobs: list[Any] = []
        """Jobs queued from this builder, oldest first."""
        self._init_image: str | None = None
        self._mask: str | None = None
        self._show_jobs = show_jobs
        config = client.config
        lab = {"description_width": "80px"}

        types = _task_types()
        self.type = W.Dropdown(options=list(types), value=types[0], description="Task", style=lab,
                               layout=field_layout("220px"))
        self.prompt = W.Textarea(placeholder="Prompt", layout=W.Layout(width="100%", height="64px"))
        self.negative = W.Textarea(placeholder="Negative prompt", layout=W.Layout(width="100%", height="40px"))
        self.size = W.Dropdown(options=[*SIZE_PRESETS, _CUSTOM], value="512 × 512 (1:1)", description="Size",
                               style=lab, layout=field_layout("260px"))
        self.width = W.BoundedIntText(512, min=64, max=8192, step=8, description="W", style={"description_width": "18px"},
                                      layout=field_layout("100px"))
        self.height = W.BoundedIntText(512, min=64, max=8192, step=8, description="H", style={"description_width": "18px"},
                                       layout=field_layout("100px"))
        self.seed = W.BoundedIntText(0, min=0, max=_MAX_SEED, description="Seed", style=lab,
                                     layout=field_layout("200px"))
        self.seed_mode = W.ToggleButtons(options=["fixed", "random", "increment"], value="random",
                                         style={"button_width": "auto"}, tooltips=[
                                             "same seed every time", "a new random seed per job",
                                             "seed + 1 per job"])
        self.seed_mode.add_class("cnb-seed-mode")
        self.steps = W.BoundedIntText(20, min=1, max=1000, description="Steps", style=lab, layout=field_layout("150px"))
        self.cfg = W.BoundedFloatText(7.0, min=0.0, max=100.0, step=0.5, description="CFG", style=lab,
                                      layout=field_layout("150px"))
        self.denoise = W.FloatSlider(1.0, min=0.0, max=1.0, step=0.01, description="Denoise", style=lab,
                                     layout=field_layout("300px"))
        self.sampler = W.Dropdown(description="Sampler", style=lab, layout=field_layout("260px"))
        self.scheduler = W.Dropdown(description="Scheduler", style=lab, layout=field_layout("260px"))
        set_options(self.sampler, ["euler"], keep="euler")
        set_options(self.scheduler, ["normal"], keep="normal")
        ckpt = getattr(config, "checkpoint", None) if config is not None else None
        vae = getattr(config, "vae", None) if config is not None else None
        self.checkpoint = W.Dropdown(description="Checkpoint", style=lab, layout=field_layout("420px"))
        self.vae = W.Dropdown(description="VAE", style=lab, layout=field_layout("420px"))
        set_options(self.checkpoint, [], keep=ckpt, allow_none=True)
        set_options(self.vae, [], keep=vae, allow_none=True)
        self.loras = LoraStack((), lora_triples(getattr(config, "loras", None)) if config is not None else [])
        self.init_upload = W.FileUpload(accept="image/*", multiple=False, description="Init image",
                                        layout=field_layout("150px"))
        self.mask_upload = W.FileUpload(accept="image/*", multiple=False, description="Mask",
                                        layout=field_layout("150px"))
        self.init_status = W.HTML("")
        self.mask_status = W.HTML("")
        self.batch = W.BoundedIntText(1, min=1, max=64, description="Batch count", style={"description_width": "80px"},
                                      layout=field_layout("150px"))
        self.queue_button = W.Button(description="Queue", button_style="primary", icon="play",
                                     layout=field_layout("110px"))
        self.queue_button.add_class("cnb-queue-button")
        self.status = W.HTML("")
        self.status.add_class("cnb-builder-status")
        self.job_box = W.VBox([])
        self.job_box.add_class("cnb-builder-jobs")

        self._image_row = W.HBox([self.init_upload, self.init_status, self.mask_upload, self.mask_status,
                                  self.denoise], layout=W.Layout(align_items="center", flex_flow="row wrap"))
        self.size.observe(self._on_size, "value")
        self.width.observe(self._on_dims, "value")
        self.height.observe(self._on_dims, "value")
        self.type.observe(lambda _c: self._on_type(), "value")
        self.init_upload.observe(lambda c: self._on_upload(c, "init"), "value")
        self.mask_upload.observe(lambda c: self._on_upload(c, "mask"), "value")
        self.queue_button.on_click(lambda _b: self.queue())

        children = [
            W.HBox([self.type, self.size, self.width, self.height], layout=W.Layout(flex_flow="row wrap")),
            self.prompt,
            self.negative,
            self._image_row,
            W.HBox([self.seed, self.seed_mode], layout=W.Layout(flex_flow="row wrap", align_items="center")),
            W.HBox([self.steps, self.cfg], layout=W.Layout(flex_flow="row wrap")),
            W.HBox([self.sampler, self.scheduler], layout=W.Layout(flex_flow="row wrap")),
            self.checkpoint,
            self.vae,
            section("LoRAs"),
            self.loras,
            W.HBox([self.batch, self.queue_button, self.status],
                   layout=W.Layout(align_items="center", flex_flow="row wrap")),
            self.job_box,
        ]
        super().__init__(children, layout=W.Layout(max_width="820px"))
        self.add_class("cnb-task-builder")
        self._on_type()
        self.refresh_choices()

    # -- public API -------------------------------------------------------------------------
    @property
    def client(self) -> ClientLike:
        return self._client

    def on_job(self, fn: Callable[[Any], None]) -> None:
        """Call ``fn(job)`` for every job this builder queues (on a background thread)."""
        self._job_listeners.add(fn)

    def refresh_choices(self) -> None:
        """Load samplers, schedulers and models from the server (in the background)."""
        fill: list[tuple[str, tuple[Any, ...], Callable[[Any], None]]] = [
            ("choices", ("KSampler", "sampler_name"), lambda v: set_options(self.sampler, list(v))),
            ("choices", ("KSampler", "scheduler"), lambda v: set_options(self.scheduler, list(v))),
            # no preselection: "(none)" lets the workflow pick a checkpoint of its own model family
            ("models", ("checkpoints",), lambda v: set_options(self.checkpoint, list(v), allow_none=True)),
            ("models", ("vae",), lambda v: set_options(self.vae, list(v), allow_none=True)),
            ("models", ("loras",), lambda v: setattr(self.loras, "names", list(v))),
        ]
        for method, args, apply in fill:
            try:
                fut = _bg.call(self._client, method, *args)
            except Exception as exc:  # client not connected
                self.status.value = status_html(f"Cannot read the server's lists: {exc}", "error")
                return
            _bg.on_done(fut, apply, functools.partial(_log_list_error, args))

    @property
    def task(self) -> Any:
        """The GenerationTask the form describes now (seed as shown)."""
        return self._build(int(self.seed.value))

    def queue(self) -> list[Any]:
        """Queue ``batch count`` jobs without blocking; returns the Futures of the submitted jobs."""
        n = int(self.batch.value)
        seeds = self._next_seeds(n)
        try:
            tasks = [self._build(s) for s in seeds]
        except Exception as exc:  # invalid field combination
            self.status.value = status_html(f"Invalid task: {exc}", "error")
            return []
        self.status.value = status_html(f"Queueing {n} job{'s' if n != 1 else ''}…")
        futures = []
        for task in tasks:
            try:
                fut = _bg.call(self._client, "submit_task", task)
            except Exception as exc:
                self.status.value = status_html(f"Could not queue: {exc}", "error")
                break
            _bg.on_done(fut, self._queued, self._queue_failed)
            futures.append(fut)
        return futures

    def __repr__(self) -> str:
        return (f"TaskBuilder(type={self.type.value!r}, size={self.width.value}x{self.height.value}, "
                f"steps={self.steps.value}, cfg={self.cfg.value}, sampler={self.sampler.value!r})")

    # -- internals --------------------------------------------------------------------------
    def _queue_failed(self, exc: BaseException) -> None:
        self.status.value = status_html(f"Could not queue: {exc}", "error")

    def _next_seeds(self, n: int) -> list[int]:
        mode = self.seed_mode.value
        base = int(self.seed.value)
        if mode == "fixed":
            return [base] * n
        if mode == "increment":
            seeds = [(base + i) % (_MAX_SEED + 1) for i in range(n)]
            self.seed.value = (base + n) % (_MAX_SEED + 1)
            return seeds
        seeds = [random.randint(0, _MAX_SEED) for _ in range(n)]
        self.seed.value = seeds[-1]
        return seeds

    def _build(self, seed: int) -> Any:
        cls = _task_class()
        fields: dict[str, Any] = {
            "type": self.type.value,
            "prompt": self.prompt.value,
            # what the box shows is what runs: empty means no negative prompt, not the template's
            "negative_prompt": self.negative.value,
            "width": int(self.width.value),
            "height": int(self.height.value),
            "seed": seed,
            "steps": int(self.steps.value),
            "cfg_scale": float(self.cfg.value),
            "sampler": self.sampler.value,
            "scheduler": self.scheduler.value,
            "checkpoint": self.checkpoint.value or None,
            "vae": self.vae.value or None,
            "loras": self.loras.value,
        }
        if self.type.value in _NEEDS_IMAGE:
            fields["init_image"] = self._init_image
            fields["denoise"] = float(self.denoise.value)
        if self.type.value in _NEEDS_MASK:
            fields["mask"] = self._mask
        return cls(**fields)

    def _queued(self, job: Any) -> None:
        with self._lock:
            self.jobs.append(job)
            count = len(self.jobs)
        self.status.value = status_html(f"Queued {count} job{'s' if count != 1 else ''} so far.", "ok")
        if self._show_jobs:
            view = JobView(job)
            with self._lock:
                kids = (view, *self.job_box.children)
                for old in kids[_MAX_JOB_VIEWS:]:
                    old.close()
                self.job_box.children = kids[:_MAX_JOB_VIEWS]
        if self._gallery is not None:
            self._gallery.add(job)
        self._job_listeners.notify(job)

    def _on_size(self, change: Any) -> None:
        preset = SIZE_PRESETS.get(change["new"])
        if preset is not None:
            with self.width.hold_trait_notifications(), self.height.hold_trait_notifications():
                self.width.value, self.height.value = preset

    def _on_dims(self, _change: Any) -> None:
        dims = (int(self.width.value), int(self.height.value))
        name = next((k for k, v in SIZE_PRESETS.items() if v == dims), _CUSTOM)
        if self.size.value != name:
            self.size.value = name

    def _on_type(self) -> None:
        t = self.type.value
        needs_image = t in _NEEDS_IMAGE
        self._image_row.layout.display = "flex" if needs_image else "none"
        self.mask_upload.layout.display = "" if t in _NEEDS_MASK else "none"
        self.mask_status.layout.display = "" if t in _NEEDS_MASK else "none"
        if needs_image and self.denoise.value == 1.0:
            self.denoise.value = 0.75
        elif not needs_image:
            self.denoise.value = 1.0

    def _on_upload(self, change: Any, which: str) -> None:
        files = change["new"]
        if not files:
            return
        f = files[0]
        name = str(f.get("name") or "upload.png")
        data = bytes(f.get("content") or b"")
        label = self.init_status if which == "init" else self.mask_status
        label.value = status_html(f"Uploading {name}…")
        try:
            fut = _bg.call(self._client, "upload_image", data, name=name)
        except Exception as exc:
            label.value = status_html(f"Upload failed: {exc}", "error")
            return

        def _ok(server_name: Any) -> None:
            if which == "init":
                self._init_image = str(server_name)
            else:
                self._mask = str(server_name)
            label.value = status_html(f"✓ {server_name}", "ok")

        _bg.on_done(fut, _ok, lambda exc: setattr(label, "value", status_html(f"Upload failed: {exc}", "error")))

    def set_image(self, which: str, server_name: str | None) -> None:
        """Use an image already on the server as the init image (``"init"``) or mask (``"mask"``)."""
        if which == "init":
            self._init_image = server_name
            self.init_status.value = status_html(f"✓ {server_name}", "ok") if server_name else ""
        elif which == "mask":
            self._mask = server_name
            self.mask_status.value = status_html(f"✓ {server_name}", "ok") if server_name else ""
        else:
            raise ValueError("which must be 'init' or 'mask'")


def _log_list_error(what: Any, exc: BaseException) -> None:
    log.info("could not load %s: %s", what, exc)
