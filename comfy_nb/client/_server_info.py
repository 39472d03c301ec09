"""Reads of what a server is and holds: its capabilities (read once per client), queue and history."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from ..errors import ComfyError, JobLost, ProtocolError, ServerError, WorkflowError
from ..protocol import ExecutionStartMessage, HistoryEntry, NodeDef, QueueSnapshot, parse_node_defs
from ._models import DeviceInfo, JobStatus, QueueEntry, QueueState, ServerCapabilities
from ._tracker import JobTracker
from ._transport import Transport, json_body, safe_json

__all__ = ["ServerInfo", "read_capabilities", "read_history", "read_history_entry", "read_queue", "read_status"]

log = logging.getLogger("comfy_nb")

_TARGETED_INTERRUPT_SINCE = (0, 3, 60)
"""``/interrupt {prompt_id}`` landed upstream in 2025 (ComfyUI PR #9607); older servers ignore the body."""


class ServerInfo:
    """What the server is and offers, with the per-client caches (node definitions, capabilities)."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport
        self._object_info: dict[str, Any] | None = None
        self._node_defs: dict[str, NodeDef] | None = None
        self.known_capabilities: ServerCapabilities | None = None
        """The capabilities if already read (never a request)."""

    async def system_stats(self) -> dict[str, Any]:
        body = await self._transport.get_json("/system_stats")
        if not isinstance(body, dict):
            raise ServerError(f"GET {self._transport.base_url}/system_stats did not return a JSON object")
        return body

    async def object_info(self, refresh: bool = False) -> dict[str, Any]:
        """Every node definition (cached per client; ``refresh=True`` re-reads it)."""
        if self._object_info is None or refresh:
            body = await self._transport.get_json("/object_info")
            if not isinstance(body, dict):
                raise ServerError(f"GET {self._transport.base_url}/object_info did not return a JSON object")
            self._object_info = body
            self._node_defs = None
        return self._object_info

    async def node_defs(self, refresh: bool = False) -> dict[str, NodeDef]:
        info = await self.object_info(refresh)
        if self._node_defs is None or refresh:
            self._node_defs = parse_node_defs(info)
        return self._node_defs

    async def choices(self, class_type: str, input_name: str) -> list[Any]:
        """The allowed values of a combo input, e.g. ``choices("KSampler", "sampler_name")``."""
        defs = await self.node_defs()
        node = defs.get(class_type)
        if node is None:
            raise WorkflowError(f"the server has no node class {class_type!r}")
        spec = node.input(input_name)
        if spec is None:
            raise WorkflowError(
                f"node class {class_type!r} has no input {input_name!r}; it has: {', '.join(node.inputs)}"
            )
        return list(spec.options or [])

    async def models(self, folder: str) -> list[str]:
        """File names in a model folder (``checkpoints``, ``loras``, ``vae``, ``upscale_models``...)."""
        response = await self._transport.request("GET", f"/models/{folder}", ok=(200, 404))
        if response.status_code == 404:
            folders = await self._transport.get_json("/models")
            names = ", ".join(map(str, folders)) if isinstance(folders, list) else "(no list)"
            raise ComfyError(f"the server has no model folder {folder!r}; it has: {names}")
        body = json_body(response, "GET", f"{self._transport.base_url}/models/{folder}")
        return [str(x) for x in body] if isinstance(body, list) else []

    async def capabilities(self, refresh: bool = False) -> ServerCapabilities:
        """Version, devices and what the server supports (previews, jobs API, targeted interrupt)."""
        if self.known_capabilities is not None and not refresh:
            return self.known_capabilities
        self.known_capabilities = await read_capabilities(self._transport, await self.system_stats())
        return self.known_capabilities


async def read_capabilities(transport: Transport, stats: dict[str, Any]) -> ServerCapabilities:
    """Version and devices from ``/system_stats``, flags from ``/features``, whether ``/api/jobs`` exists."""
    features: dict[str, Any] = {}
    response = await transport.request("GET", "/features", ok=(200, 404), retries=1)
    if response.status_code == 200:
        body = json_body(response, "GET", f"{transport.base_url}/features")
        features = body if isinstance(body, dict) else {}
    jobs = await transport.request("GET", "/api/jobs", params={"limit": 1}, ok=(200, 400, 404, 405), retries=0)
    jobs_api = jobs.status_code == 200 and "jobs" in safe_json(jobs)
    system: dict[str, Any] = stats["system"] if isinstance(stats.get("system"), dict) else {}
    version = _text_or_none(system.get("comfyui_version"))
    devices: list[Any] = stats["devices"] if isinstance(stats.get("devices"), list) else []
    upload_limit = features.get("max_upload_size")
    return ServerCapabilities(
        version=version,
        python_version=_text_or_none(system.get("python_version")),
        pytorch_version=_text_or_none(system.get("pytorch_version")),
        devices=tuple(
            DeviceInfo(str(d.get("name")), str(d.get("type")), _int_or_none(d.get("vram_total")),
                       _int_or_none(d.get("vram_free")))
            for d in devices
            if isinstance(d, dict)
        ),
        supports_preview_metadata=features.get("supports_preview_metadata") is True,
        max_upload_size=_int_or_none(upload_limit),
        targeted_interrupt=_version_tuple(version) >= _TARGETED_INTERRUPT_SINCE,
        jobs_api=jobs_api,
        extra={"features": features, "system": system},
    )


def _version_tuple(version: str | None) -> tuple[int, ...]:
    out: list[int] = []
    for part in (version or "").split("."):
        digits = "".join(ch for ch in part if ch.isdigit())
        if not digits:
            break
        out.append(int(digits))
    return tuple(out)


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


async def read_history_entry(transport: Transport, pid: str) -> HistoryEntry | None:
    body = await transport.get_json(f"/history/{quote(pid, safe='')}")
    if not isinstance(body, dict):
        raise ProtocolError(f"GET {transport.base_url}/history/{pid} did not return a JSON object")
    entry = body.get(pid)
    return None if entry is None else HistoryEntry.from_wire(entry, f"the history entry of {pid}")


async def read_history(transport: Transport, max_items: int | None, offset: int | None) -> dict[str, HistoryEntry]:
    params = {k: v for k, v in (("max_items", max_items), ("offset", offset)) if v is not None}
    body = await transport.get_json("/history", params)
    if not isinstance(body, dict):
        raise ProtocolError(f"GET {transport.base_url}/history did not return a JSON object")
    entries = {}
    for pid, value in body.items():
        try:
            entries[pid] = HistoryEntry.from_wire(value)
        except ProtocolError as exc:
            log.debug("comfy_nb: skipped history entry %s: %s", pid, exc)
    return entries


async def read_queue(transport: Transport, client_id: str) -> QueueState:
    snap = QueueSnapshot.from_wire(await transport.get_json("/queue"))

    def entry(item: Any) -> QueueEntry:
        return QueueEntry(item.prompt_id, item.number, item.client_id, item.client_id == client_id)

    return QueueState(tuple(entry(i) for i in snap.running), tuple(entry(i) for i in snap.pending))


async def read_status(transport: Transport, prompt_id: str, client_id: str, view_url: str) -> JobStatus:
    """A prompt's status from the server alone: its history entry, else its place in the queue."""
    entry = await read_history_entry(transport, prompt_id)
    if entry is not None:
        tracker = JobTracker(prompt_id, prompt=entry.api_prompt, view_url=view_url)
        tracker.apply_history(entry)
        return tracker.status
    queue = await read_queue(transport, client_id)
    tracker = JobTracker(prompt_id, view_url=view_url)
    if any(e.prompt_id == prompt_id for e in queue.running):
        tracker.apply(ExecutionStartMessage(prompt_id=prompt_id))
    elif prompt_id in queue:
        tracker.set_queue_position(queue.position(prompt_id))
    else:
        raise JobLost(prompt_id, f"prompt {prompt_id} is in neither the queue nor the history of {transport.base_url}")
    return tracker.status
