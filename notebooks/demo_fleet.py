"""Stand-ins for a self-hosted fleet's Comfy API v2 endpoint, used by 07_cloud_and_fleets.ipynb.

``start_v2_endpoint`` runs ``comfy-api-proxy`` (PyPI; Comfy-Org's proxy that serves the Comfy API v2
in front of a ComfyUI) on a background thread on 127.0.0.1, built the way its ``run`` command builds
it, with a bearer token. With a real fleet you run ``comfy-api-proxy run --comfyui URL --token T``
beside each ComfyUI instead.
"""

from __future__ import annotations

import asyncio
import threading

from aiohttp import web

__all__ = ["start_v2_endpoint"]


def start_v2_endpoint(comfyui_url: str, token: str) -> str:
    """Serve the Comfy API v2 for ``comfyui_url`` on 127.0.0.1 (a daemon thread); return its URL."""
    from comfy_api_proxy.app import make_app
    from comfy_api_proxy.auth import make_bearer_auth_middleware
    from comfy_api_proxy.middleware import make_origin_only_middleware

    ready = threading.Event()
    found: list[str] = []
    failed: list[BaseException] = []

    async def serve() -> None:
        app = make_app(comfyui_url, middlewares=[make_origin_only_middleware([]), make_bearer_auth_middleware(token)])
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        try:
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
        except OSError as exc:
            failed.append(exc)
            ready.set()
            return
        found.append(f"http://127.0.0.1:{runner.addresses[0][1]}")
        ready.set()
        await asyncio.Event().wait()  # serve until the kernel exits (daemon thread)

    threading.Thread(target=lambda: asyncio.run(serve()), name="comfy-api-proxy", daemon=True).start()
    if not ready.wait(30):
        raise RuntimeError("comfy-api-proxy did not start within 30 s")
    if failed:
        raise failed[0]
    return found[0]
