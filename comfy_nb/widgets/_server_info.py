"""What the widgets say about a server: which one is in use, its device, whether it sends previews.

Read from what the server reports (``/system_stats``: version, devices, its command line), never
guessed from flags that mean something else (``supports_preview_metadata`` is about the preview
*format*, not whether previews are produced).
"""

from __future__ import annotations

import html
import ipaddress
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "caps_html",
    "device_text",
    "in_use_html",
    "kind_text",
    "location",
    "preview_method",
    "previews_text",
    "server_kind",
]

#: ComfyUI's default when ``--preview-method`` is not given (0.3.64): no sampler previews.
_DEFAULT_PREVIEW_METHOD = "none"
PREVIEW_FLAG_HINT = "start ComfyUI with --preview-method auto (or latent2rgb) to see them"
_KIND_NAMES = {"comfyui": "native ComfyUI API", "cloud": "Comfy Cloud", "v2": "Comfy API v2"}


def kind_text(kind: Any, detected: bool = False) -> str:
    """``"Comfy Cloud (detected)"``: what a client's ``kind`` means, and whether it was asked or given."""
    name = _KIND_NAMES.get(str(kind), str(kind))
    return f"{name} (detected)" if detected else name


def _system(caps: Any) -> dict[str, Any]:
    extra = getattr(caps, "extra", None) or {}
    system = extra.get("system") if isinstance(extra, dict) else None
    return system if isinstance(system, dict) else {}


def preview_method(caps: Any) -> str | None:
    """The server's ``--preview-method`` (``"none"`` when not given), or ``None`` when it does not say."""
    argv = _system(caps).get("argv")
    if not isinstance(argv, list):
        return None
    args = [str(a) for a in argv]
    for i, arg in enumerate(args):
        if arg == "--preview-method" and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("--preview-method="):
            return arg.split("=", 1)[1]
    return _DEFAULT_PREVIEW_METHOD


def server_kind(caps: Any) -> str:
    """``"comfy_nb mock (ComfyUI 0.3.64 API)"`` or ``"ComfyUI 0.3.64"``."""
    version = getattr(caps, "version", None) or "unknown version"
    argv = _system(caps).get("argv")
    if isinstance(argv, list) and argv and str(argv[0]).startswith("comfy_nb.mock"):
        return f"comfy_nb built-in mock (ComfyUI {version} API)"
    return f"ComfyUI {version}"


def location(url: str) -> str:
    """``local`` (this machine), ``private network`` or ``remote``, from the URL's host."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return "local"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return "remote"
    if ip.is_loopback:
        return "local"
    return "private network" if ip.is_private else "remote"


def _gib(n: Any) -> str:
    if not isinstance(n, (int, float)) or isinstance(n, bool) or n <= 0:
        return "?"
    return f"{n / 2**30:.1f} GiB"


def device_text(dev: Any) -> str:
    """``cpu (cpu) · RAM 22.2 GiB free of 23.5 GiB`` — VRAM for a GPU, RAM for a CPU (ComfyUI reports
    system memory in the ``vram_*`` fields of a CPU device)."""
    if dev is None:
        return "no device reported"
    memory = "RAM" if str(getattr(dev, "type", "")).lower() == "cpu" else "VRAM"
    return f"{dev.name} ({dev.type}) · {memory} {_gib(dev.vram_free)} free of {_gib(dev.vram_total)}"


def previews_text(caps: Any) -> str:
    method = preview_method(caps)
    if method is None:
        return "previews: not reported by the server"
    if method == "none":
        return f"previews off (--preview-method none): {PREVIEW_FLAG_HINT}"
    return f"previews on (--preview-method {method})"


def in_use_html(url: str, auth: str | None, caps: Any = None, kind: Any = None) -> str:
    """The one line that says which server the client talks to; never a secret, only whether there is one."""
    parts = [url, location(url)]
    if caps is not None:
        parts.insert(1, server_kind(caps))
    if kind is not None and str(kind) != "comfyui":
        parts.insert(1, kind_text(kind))
    parts.append(f"auth: {auth}" if auth else "no auth")
    text = " · ".join(parts)
    return f'<div class="cnb-in-use-line"><b>In use:</b> {html.escape(text)}</div>'


def caps_html(caps: Any, kind: str | None = None) -> str:
    """The Test connection result: server, API kind (``kind_text``), device, previews and supported features
    (``caps`` None: a server that does not report them, such as a Comfy API v2 endpoint)."""

    def yes(b: Any) -> str:
        return "✓" if b else "✗"

    devices = list(getattr(caps, "devices", ()) or ())
    rows = [
        ("Server", server_kind(caps) if caps is not None else "does not report its version, devices or features"),
        *([("API", kind)] if kind else []),
    ]
    if caps is not None:
        rows += [
            ("Device", device_text(devices[0] if devices else None)),
            ("Previews", previews_text(caps)),
            ("Supports", (f"preview metadata {yes(getattr(caps, 'supports_preview_metadata', False))} · "
                          f"jobs API {yes(getattr(caps, 'jobs_api', False))} · "
                          f"targeted interrupt {yes(getattr(caps, 'targeted_interrupt', False))}")),
        ]
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
    return (f'<div class="cnb-caps"><span class="cnb-status cnb-status-ok" '
            f'style="color:var(--jp-success-color1,#388e3c)">Connected</span>'
            f'<table class="cnb-caps-table">{body}</table></div>')
