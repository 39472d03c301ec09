"""A ComfyUI server URL: the one check behind the client, ``ComfyConfig.server_url`` and the config panel."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit, urlunsplit

from ..errors import ConfigError

__all__ = ["ServerUrl", "parse_server_url", "redact_url", "server_url_problem", "split_userinfo"]


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
        raise ConfigError(f"server URL {redact_url(text.strip())!r} {problem}")
    parts = urlsplit(text.strip())
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    netloc = f"{host}:{parts.port}" if parts.port else host
    path = parts.path.rstrip("/")
    auth = (parts.username or "", parts.password or "") if parts.username else None
    ws_scheme = "wss" if parts.scheme == "https" else "ws"
    return ServerUrl(f"{parts.scheme}://{netloc}{path}", f"{ws_scheme}://{netloc}{path}/ws", auth)


def split_userinfo(url: str) -> tuple[str, str | None, str | None]:
    """``(url without user:password@, user, password)``: credentials in a URL are kept as secrets."""
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed [IPv6 bracket: the URL check reports it (redacted)
        return redact_url(url), None, None
    if "@" not in parts.netloc:
        return url, None, None
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user, sep, password = userinfo.partition(":")
    clean = urlunsplit((parts.scheme, hostport, parts.path, parts.query, parts.fragment))
    return clean, unquote(user) or None, unquote(password) if sep else None


def redact_url(url: str) -> str:
    """``url`` with any ``user:password@`` shown as ``***@`` (for messages and reprs); works on URLs
    too broken to parse, since those are the ones that end up in error messages."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority = rest[:end]
    if "@" not in authority:
        return url
    return f"{scheme}{sep}***@{authority.rpartition('@')[2]}{rest[end:]}"
