"""The normalised views a UI needs: job status, outputs, queue, server capabilities.

Frozen dataclasses (not pydantic) because a ``JobStatus`` snapshot is made for every WebSocket event
and must be cheap; they are safe to hand to any thread.
"""

from __future__ import annotations

import operator
import posixpath
from dataclasses import dataclass, field, fields
from enum import Enum
from typing import Any
from urllib.parse import urlencode

from ..errors import NodeInputError

__all__ = [
    "DeviceInfo",
    "ErrorInfo",
    "JobState",
    "JobStatus",
    "NodeRef",
    "Output",
    "Preview",
    "QueueEntry",
    "QueueState",
    "ServerCapabilities",
    "outputs_from_ui",
]


class JobState(str, Enum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self._value_ in _TERMINAL_VALUES  # read several times per socket event: a set lookup

    def __str__(self) -> str:
        return self.value


_TERMINAL_VALUES = frozenset({"completed", "failed", "cancelled"})


@dataclass(frozen=True, slots=True)
class NodeRef:
    """A node of the running graph as a person recognises it."""

    id: str
    class_type: str | None = None
    title: str | None = None

    @property
    def label(self) -> str:
        return self.title or self.class_type or self.id


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """Why a job failed: the node and the exception the server reported."""

    message: str
    node_id: str | None = None
    class_type: str | None = None
    exception_type: str | None = None
    traceback: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Preview:
    """The latest preview image of a running job."""

    data: bytes
    mime: str
    node_id: str | None = None

    def __repr__(self) -> str:
        return f"Preview(mime={self.mime!r}, bytes={len(self.data)}, node_id={self.node_id!r})"


_VIDEO_EXT = {".mp4", ".webm", ".mov", ".mkv", ".avi", ".m4v"}
_AUDIO_EXT = {".wav", ".mp3", ".flac", ".ogg", ".opus", ".m4a"}
_ANIMATED_EXT = {".gif"}


@dataclass(frozen=True, slots=True)
class Output:
    """One thing a job produced: a file on the server (or a text value)."""

    kind: str
    """``image``, ``video``, ``audio``, ``animated``, ``text``, ``latent`` or ``file``."""
    filename: str
    subfolder: str = ""
    folder_type: str = "output"
    node_id: str = ""
    url: str = ""
    text: str | None = None
    asset_id: str = ""
    """The asset's id on a Comfy API v2 endpoint (``url`` is then a short-lived link to it); empty on ComfyUI."""

    @property
    def is_file(self) -> bool:
        return self.kind != "text"

    def view_params(self) -> dict[str, str]:
        return {"filename": self.filename, "subfolder": self.subfolder, "type": self.folder_type}

    @property
    def path(self) -> str:
        """``subfolder/filename`` as the server names it (what ``LoadImage`` accepts for inputs)."""
        return posixpath.join(self.subfolder, self.filename) if self.subfolder else self.filename


def _file_kind(filename: str, default: str, animated: bool) -> str:
    ext = posixpath.splitext(filename)[1].lower()
    if ext in _VIDEO_EXT:
        return "video"
    if ext in _AUDIO_EXT:
        return "audio"
    if animated or ext in _ANIMATED_EXT:
        return "animated"
    return default


_KEY_KIND = {"images": "image", "gifs": "animated", "audio": "audio", "video": "video", "videos": "video",
             "latents": "latent"}


def outputs_from_ui(node_id: str, ui: dict[str, Any], view_url: str) -> list[Output]:
    """Turn one node's UI payload (``executed.output`` or history ``outputs[node]``) into Outputs."""
    out: list[Output] = []
    animated_flags = ui.get("animated")
    animated = bool(animated_flags and isinstance(animated_flags, list) and animated_flags[0])
    for key, items in ui.items():
        if key == "animated" or not isinstance(items, list):
            continue
        if key == "text":
            out.extend(Output(kind="text", filename="", node_id=node_id, text=str(t)) for t in items)
            continue
        default = _KEY_KIND.get(key, "file")
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("filename"), str):
                continue
            filename = item["filename"]
            subfolder = str(item.get("subfolder") or "")
            folder_type = str(item.get("type") or "output")
            query = urlencode({"filename": filename, "subfolder": subfolder, "type": folder_type})
            out.append(
                Output(
                    kind=_file_kind(filename, default, animated and default == "image"),
                    filename=filename,
                    subfolder=subfolder,
                    folder_type=folder_type,
                    node_id=node_id,
                    url=f"{view_url}?{query}",
                )
            )
    return out


@dataclass(frozen=True, slots=True)
class JobStatus:
    """A snapshot of one prompt's state, normalised for display."""

    prompt_id: str
    state: JobState = JobState.QUEUED
    queue_position: int | None = None
    """Prompts ahead of this one; ``None`` once running (or when not known yet)."""
    progress: float = 0.0
    """0-100 over the whole workflow, never going backwards; 100 only when completed."""
    current_node: NodeRef | None = None
    total_nodes: int = 0
    completed_nodes: int = 0
    step: int | None = None
    steps: int | None = None
    outputs: tuple[Output, ...] = ()
    error: ErrorInfo | None = None
    node_errors: tuple[NodeInputError, ...] = ()
    preview: Preview | None = None
    text: str | None = None
    """The latest progress text a node sent (binary event 3)."""
    executed_nodes: frozenset[str] = frozenset()
    """Ids of the nodes that ran to the end in this job (what a graph view shows as done)."""
    cached_nodes: frozenset[str] = frozenset()
    """Ids of the nodes the server took from its cache (``execution_cached``) instead of running."""
    queued_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    eta: float | None = None
    """Seconds the job is likely still to run, as of this snapshot (``None`` when unknown or over)."""

    @property
    def terminal(self) -> bool:
        return self.state.terminal

    @property
    def elapsed(self) -> float | None:
        """Seconds spent running (so far, or in all once finished)."""
        if self.started_at is None:
            return None
        end = self.finished_at
        if end is None:
            import time

            end = time.time()
        return max(0.0, end - self.started_at)

    def __repr__(self) -> str:
        parts = [f"prompt_id={self.prompt_id!r}", f"state={self.state.value!r}", f"progress={self.progress:.0f}"]
        if self.queue_position is not None:
            parts.append(f"queue_position={self.queue_position}")
        if self.current_node is not None and not self.terminal:
            parts.append(f"node={self.current_node.label!r}")
        if self.outputs:
            parts.append(f"outputs={len(self.outputs)}")
        if self.error is not None:
            parts.append(f"error={self.error.message!r}")
        return f"JobStatus({', '.join(parts)})"


_STATUS_FIELDS = {f.name: i for i, f in enumerate(fields(JobStatus))}
_status_values = operator.attrgetter(*_STATUS_FIELDS)


def evolve_status(status: JobStatus, **changes: Any) -> JobStatus:
    """``dataclasses.replace`` for the snapshot made on every socket event, at about half its cost
    (positional arguments, no per-field checks: every field of ``JobStatus`` is an init field)."""
    values = list(_status_values(status))
    for name, value in changes.items():
        values[_STATUS_FIELDS[name]] = value
    return JobStatus(*values)


@dataclass(frozen=True, slots=True)
class QueueEntry:
    prompt_id: str
    number: float
    client_id: str | None = None
    mine: bool = False


@dataclass(frozen=True, slots=True)
class QueueState:
    """The server's queue: ``pending`` is in the order the server will run it."""

    running: tuple[QueueEntry, ...] = ()
    pending: tuple[QueueEntry, ...] = ()

    def position(self, prompt_id: str) -> int | None:
        """Prompts ahead of ``prompt_id`` (the running one counts), or ``None`` if not pending."""
        for i, entry in enumerate(self.pending):
            if entry.prompt_id == prompt_id:
                return i + len(self.running)
        return None

    @property
    def remaining(self) -> int:
        return len(self.running) + len(self.pending)

    def __contains__(self, prompt_id: object) -> bool:
        return any(e.prompt_id == prompt_id for e in self.running + self.pending)

    def __repr__(self) -> str:
        return f"QueueState(running={len(self.running)}, pending={len(self.pending)})"


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    name: str
    type: str
    vram_total: int | None = None
    vram_free: int | None = None


@dataclass(frozen=True)
class ServerCapabilities:
    """What a server is and what it supports, read from ``/system_stats`` and ``/features``."""

    version: str | None
    python_version: str | None = None
    pytorch_version: str | None = None
    devices: tuple[DeviceInfo, ...] = ()
    supports_preview_metadata: bool = False
    max_upload_size: int | None = None
    targeted_interrupt: bool = False
    jobs_api: bool = False
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
