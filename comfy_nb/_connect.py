"""``comfy_nb.connect()``: the one call a notebook starts with."""

from __future__ import annotations

import os
import threading
from typing import Any

from .client import ComfyClient
from .config import KindSetting

__all__ = ["connect"]

_mock_lock = threading.Lock()
_mock: Any = None


def _builtin_mock(step_delay: float) -> str:
    """Start (once per process) the built-in mock server and return its URL."""
    global _mock
    with _mock_lock:
        if _mock is None:
            from .mock import MockServer

            _mock = MockServer(step_delay=step_delay).start()
        return str(_mock.url)


def connect(
    url: str | None = None,
    *,
    config: Any = None,
    api_key: str | None = None,
    kind: KindSetting = "auto",
    mock_step_delay: float = 0.05,
    **kwargs: Any,
) -> ComfyClient:
    """A blocking client for ``url``, else ``$COMFY_URL``, else the saved config's server.

    ``api_key`` and ``kind`` as for ``AsyncComfyClient`` (``kind="cloud"`` alone means
    ``https://cloud.comfy.org``). With no server at all, the built-in mock ComfyUI is started on
    127.0.0.1 and a one-line notice says so, so every notebook runs without a GPU or a server.
    """
    if config is None and url is None and not os.environ.get("COMFY_URL"):
        from .config import ComfyConfig

        saved = ComfyConfig.load()
        if saved.is_configured:
            config = saved
    url = url or os.environ.get("COMFY_URL") or (getattr(config, "server_url", None) if config else None)
    if not url and kind != "cloud":  # Comfy Cloud's own URL is the client's default for that kind
        url = _builtin_mock(mock_step_delay)
        print(f"comfy_nb: no server configured, so the built-in mock ComfyUI was started at {url} (no GPU, fake models)")
    return ComfyClient(url, config=config, api_key=api_key, kind=kind, **kwargs)
