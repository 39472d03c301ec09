"""Reads of what a server is and holds: its capabilities (read once per client), queue and history."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from ..errors import ProtocolError
from ..protocol import HistoryEntry, QueueSnapshot
from ._models import DeviceInfo, QueueEntry, QueueState, ServerCapabilities
from ._transport import Transport, json_body, safe_json

__all__ = ["read_capabilities", "read_history", "read_history_entry", "read_queue"]

log = logging.getLogger("comfy_nb")

_TARGETED_INTERRUPT_SINCE = (0, 3, 60)
"""``/interrupt {prompt_id}`` landed upstream in 2025 (ComfyUI PR #9607); older servers ignore the body."""


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
