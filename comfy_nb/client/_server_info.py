"""What a server is and supports, read once per client (``capabilities()``)."""

from __future__ import annotations

from typing import Any

from ._models import DeviceInfo, ServerCapabilities
from ._transport import Transport, json_body, safe_json

__all__ = ["read_capabilities"]

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
