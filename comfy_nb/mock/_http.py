"""Answers and request checks every mock route shares (the real server's JSON, its bare 500, its Origin rule)."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlparse

from aiohttp import web

__all__ = ["Handler", "json_response", "origin_refused", "read_json", "server_error"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_INTERNAL_ERROR = "500 Internal Server Error\n\nServer got itself in trouble"


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=json.dumps(data).encode("utf-8"), status=status, content_type="application/json", charset="utf-8"
    )


def server_error() -> web.Response:
    """What aiohttp answers when a real route raises (a malformed body, a missing key)."""
    return web.Response(status=500, text=_INTERNAL_ERROR, content_type="text/plain")


async def read_json(request: web.Request) -> Any:
    """``await request.json()`` as the real routes do it; raises ValueError on a malformed body."""
    text = await request.text()
    return json.loads(text)


def _is_loopback(host: str) -> bool:
    if host.startswith("["):
        host = host[1:].split("]", 1)[0]
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def origin_refused(request: web.Request) -> bool:
    """The real server's check against cross-origin requests to a loopback host (a browser on another site)."""
    host = request.headers.get("Host")
    origin = request.headers.get("Origin")
    if not host or not origin or not _is_loopback(host):
        return False
    origin_netloc = urlparse(origin).netloc.lower()
    host_netloc = host.lower()
    host_has_port = ":" in host_netloc.rsplit("]", 1)[-1]
    origin_has_port = ":" in origin_netloc.rsplit("]", 1)[-1]
    if host_has_port and not origin_has_port:
        host_netloc = host_netloc.rsplit(":", 1)[0]
    elif origin_has_port and not host_has_port:
        origin_netloc = origin_netloc.rsplit(":", 1)[0]
    return host_netloc != origin_netloc
