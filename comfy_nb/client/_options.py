"""The client's constructor arguments resolved once: explicit arguments, then the config, then the
environment (``COMFY_URL``, ``COMFY_TOKEN``, ``COMFY_API_KEY``), each checked with an error that says
how to fix it."""

from __future__ import annotations

import base64
import os
import ssl
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .._secrets import reveal as _secret
from ..config import check_kind, check_max_retries, check_secret_header, check_timeout
from ..errors import ConfigError
from ..protocol import parse_server_url
from ._kinds import CLOUD_URL, ServerKind, kind_from_host

__all__ = ["DEFAULT_URL", "ClientOptions", "resolve_options"]

DEFAULT_URL = "http://127.0.0.1:8188"


@dataclass(frozen=True)
class ClientOptions:
    url: str
    ws_url: str
    headers: dict[str, str]
    """Every header sent on each request and the socket upgrade (credentials included: never shown)."""
    timeout: float
    max_retries: int
    client_id: str
    api_key: str | None
    """The Comfy API key (never shown); sent only as the resolved kind says."""
    kind: ServerKind | None
    """The kind when known without asking the server (explicit, or Comfy Cloud's host), else ``None``."""


def resolve_options(
    url: str | None,
    *,
    token: str | None,
    username: str | None,
    password: str | None,
    headers: Mapping[str, str] | None,
    config: Any,
    api_key: str | None,
    kind: Any,
    timeout: float | None,
    max_retries: int | None,
    client_id: str | None,
    verify: Any,
    polling: tuple[tuple[str, float], ...],
    max_download_size: Any,
) -> ClientOptions:
    if config is not None:
        url = url or getattr(config, "server_url", None)
        token = token or _secret(getattr(config, "token", None))
        username = username or getattr(config, "username", None)
        password = password or _secret(getattr(config, "password", None))
        headers = {**dict(getattr(config, "headers", None) or {}), **dict(headers or {})}
        api_key = api_key or _secret(getattr(config, "api_key", None))
        if kind == "auto":
            kind = getattr(config, "kind", None) or "auto"
        if timeout is None:
            timeout = getattr(config, "timeout", None)
        if max_retries is None:
            max_retries = getattr(config, "max_retries", None)
    kind = check_kind(kind)
    server = parse_server_url(str(url or os.environ.get("COMFY_URL") or (CLOUD_URL if kind == "cloud" else DEFAULT_URL)))
    url_auth = server.auth
    if token is None and username is None and url_auth is None:
        token = os.environ.get("COMFY_TOKEN") or None
    api_key = _secret(api_key) or os.environ.get("COMFY_API_KEY") or None
    if api_key is not None:
        check_secret_header(api_key, "the API key")
    if headers is not None and not isinstance(headers, Mapping):
        raise ConfigError(f"headers must be a dict of header names to values, not {type(headers).__name__}")
    for name in headers or {}:
        if not isinstance(name, str) or not name or not all(33 <= ord(c) <= 126 and c != ":" for c in name):
            raise ConfigError(f"header name {name!r} is not a valid HTTP header name (printable ASCII, no ':')")
    sent: dict[str, str] = {
        k: check_secret_header(_secret(v) or "", f"header {k!r}") for k, v in (headers or {}).items()
    }
    for what, given in (("username", username), ("password", password)):
        if given is not None and not isinstance(given, str):
            raise ConfigError(f"{what} must be a string, not {type(given).__name__}")
    if not isinstance(verify, (bool, str, ssl.SSLContext)):
        raise ConfigError(
            f"verify must be True, False, a CA bundle path or an ssl.SSLContext, not {type(verify).__name__}"
        )
    if token:
        sent["Authorization"] = f"Bearer {check_secret_header(token, 'the token')}"
    elif username is not None or url_auth is not None:
        user, pw = (username or "", password or "") if username is not None else url_auth or ("", "")
        raw = base64.b64encode(f"{user}:{pw}".encode()).decode("ascii")
        sent["Authorization"] = f"Basic {raw}"
    timeout = 30.0 if timeout is None else check_timeout(timeout)
    max_retries = 3 if max_retries is None else check_max_retries(max_retries)
    for name, value in polling:
        check_timeout(value, name)
    if isinstance(max_download_size, bool) or not isinstance(max_download_size, int) or max_download_size <= 0:
        raise ConfigError(f"max_download_size must be a positive number of bytes (got {max_download_size!r})")
    if client_id is not None and (not isinstance(client_id, str) or not client_id.isprintable()
                                  or not client_id.isascii() or "&" in client_id or " " in client_id):
        raise ConfigError("client_id must be printable ASCII without spaces or '&' (it goes in the socket URL)")
    known = ServerKind(kind) if kind != "auto" else kind_from_host(server.http)
    return ClientOptions(
        server.http, server.ws, sent, timeout, max_retries, client_id or uuid.uuid4().hex, api_key, known
    )

