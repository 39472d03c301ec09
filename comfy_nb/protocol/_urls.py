"""A ComfyUI server URL: the one check behind the client, ``ComfyConfig.server_url`` and the config panel."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..errors import ConfigError

__all__ = ["ServerUrl", "parse_server_url", "server_url_problem"]


@dataclass(frozen=True)
class ServerUrl:
    """Where a server answers: the HTTP base (may carry a path behind a proxy) and its ``/ws`` socket."""

    http: str
    ws: str
    auth: tuple[str, str] | None
    """``(user, password)`` from ``http://user:pw@host``, when the URL carries them."""

    def __repr__(self) -> str:  # the userinfo is a secret
        return f"ServerUrl(http={self.http!r}, ws={self.ws!r}{', auth=***' if self.auth else ''})"


def server_url_problem(text: str) -> str | None:
    """What is wrong with ``text`` as a server URL, as the end of "server URL '...' <problem>", or None."""
    text = text.strip()
    if not text:
        return "is empty: write it as http://host:port, e.g. http://127.0.0.1:8188"
    if "://" not in text:
        return "has no scheme: write it as http://host:port (or https:// behind a proxy)"
    if any(c.isspace() for c in text):
        return "contains spaces"
    try:
        parts = urlsplit(text)
    except ValueError as exc:
        return f"is not a valid URL ({exc})"
    if parts.scheme not in ("http", "https"):
        return f"must start with http:// or https:// (got {parts.scheme}://)"
    host = parts.hostname
    if not host:
        return "has no host name"
    try:
        port = parts.port
    except ValueError:
        return "has an invalid port (use 1 to 65535)"
    if port == 0:
        return "has an invalid port (use 1 to 65535)"
    if parts.query or parts.fragment:
        return "must not have a query (?…) or fragment (#…)"
    if ":" in host or host.replace(".", "").isdigit():
        try:
            ipaddress.ip_address(host)
        except ValueError:
            return f"has an invalid IP address {host}"
    elif not all(label and len(label) < 64 and label.replace("-", "").replace("_", "").isalnum()
                 for label in host.split(".")):
        return f"has an invalid host name {host}"
    return None


def parse_server_url(text: str) -> ServerUrl:
    """The HTTP base, socket URL and URL credentials of a server, or ``ConfigError`` saying how to fix it."""
    problem = server_url_problem(text)
    if problem is not None:
        raise ConfigError(f"server URL {text.strip()!r} {problem}")
    parts = urlsplit(text.strip())
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    netloc = f"{host}:{parts.port}" if parts.port else host
    path = parts.path.rstrip("/")
    auth = (parts.username or "", parts.password or "") if parts.username else None
    ws_scheme = "wss" if parts.scheme == "https" else "ws"
    return ServerUrl(f"{parts.scheme}://{netloc}{path}", f"{ws_scheme}://{netloc}{path}/ws", auth)
