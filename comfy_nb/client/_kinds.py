"""The kinds of server one client can drive, how ``kind="auto"`` tells them apart, and what each
kind changes in the wiring (REST base, socket URL, credential headers).

- ``comfyui``: a native ComfyUI (or a proxy in front of one); the routes at the URL's root.
- ``cloud``: Comfy Cloud's ComfyUI-compatible API: REST under ``/api``, ``X-API-Key`` on every
  request, the WebSocket at ``/ws?clientId=...&token=<API key>``, downloads that redirect to a
  signed URL on another host (followed by ``Transport.download`` without any credential).
- ``v2``: a Comfy API v2 endpoint (``comfy-api-proxy``, ``/api/v2/...``); the key is its bearer key.

Detection (``detect_kind``), in order: the host ``cloud.comfy.org`` or one of its subdomains is
``cloud`` (no request); ``GET /api/v2/health`` answering 200 with ``{"status": "healthy", ...}``
(comfy-api-proxy's answer) is ``v2``; that probe answering 401/403 while an API key is given, and
``GET /api/prompt`` with ``X-API-Key`` answering 200, is ``cloud``; anything else is ``comfyui``.
A plain ComfyUI thus costs one extra request (a 404) at the first connect; an explicit kind none.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from ..errors import ConfigError, RequestInfo, ResponseInfo, ServerError
from ._socket import Socket
from ._transport import Reply, Transport

__all__ = [
    "API_KEY_HEADER",
    "CLOUD_HOST",
    "CLOUD_URL",
    "KindWiring",
    "ServerKind",
    "connect_native",
    "detect_kind",
    "kind_from_host",
    "wiring",
]

log = logging.getLogger("comfy_nb")

CLOUD_HOST = "cloud.comfy.org"
CLOUD_URL = f"https://{CLOUD_HOST}"
API_KEY_HEADER = "X-API-Key"
HEALTH_PATH = "/api/v2/health"
_CLOUD_PROBE = "/api/prompt"
_API_KEY_HINT = "check the API key (api_key= or ComfyConfig.api_key): the server refused it"


class ServerKind(str, enum.Enum):
    """A resolved server kind (compares equal to its name: ``client.kind == "cloud"``)."""

    COMFYUI = "comfyui"
    CLOUD = "cloud"
    V2 = "v2"

    def __str__(self) -> str:
        return self.value

    def __repr__(self) -> str:
        return repr(self.value)


def kind_from_host(url: str) -> ServerKind | None:
    """``CLOUD`` for Comfy Cloud's host (and its subdomains), else ``None`` (the server must be asked)."""
    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    return ServerKind.CLOUD if host == CLOUD_HOST or host.endswith("." + CLOUD_HOST) else None


@dataclass(frozen=True)
class KindWiring:
    """What a kind changes in a client: where its REST routes live, its socket URL, extra headers."""

    rest_base: str
    socket_url: str
    headers: dict[str, str]
    auth_hint: str | None
    """What a 401/403 asks the user to check (``None``: the token / password default)."""


def wiring(kind: ServerKind, *, url: str, ws_url: str, client_id: str, api_key: str | None) -> KindWiring:
    """The wiring of ``kind`` for a server at ``url`` (``ws_url`` its socket URL without a query)."""
    socket_url = f"{ws_url}?clientId={client_id}"
    if kind is ServerKind.CLOUD:
        # A URL given with Comfy Cloud's /api prefix (https://cloud.comfy.org/api) names the same server.
        url = url.removesuffix("/api")
        socket_url = f"{ws_url.removesuffix('/ws').removesuffix('/api')}/ws?clientId={client_id}"
        if not api_key:
            raise ConfigError(
                "Comfy Cloud needs an API key: pass api_key='...' (or set ComfyConfig.api_key / $COMFY_API_KEY); "
                "create one at https://platform.comfy.org"
            )
        return KindWiring(
            f"{url}/api", f"{socket_url}&token={quote(api_key, safe='')}", {API_KEY_HEADER: api_key}, _API_KEY_HINT
        )
    if kind is ServerKind.V2:
        return KindWiring(url, socket_url, {}, _API_KEY_HINT if api_key else None)
    return KindWiring(url, socket_url, {}, None)


async def detect_kind(transport: Transport, api_key: str | None) -> ServerKind:
    """Ask the server at ``transport.base_url`` what it is (the rule is in this module's docstring).

    One request for a native ComfyUI or a v2 endpoint, two for a Comfy Cloud on another host. A server
    that cannot be reached raises as any first request would (``ComfyConnectionError``/``ComfyTimeout``),
    with the transport's pool released (a failed connect leaves nothing open).
    """
    try:
        return await _ask(transport, api_key)
    except BaseException:
        await transport.release()
        raise


async def _ask(transport: Transport, api_key: str | None) -> ServerKind:
    probe = await transport.exchange("GET", HEALTH_PATH)
    if probe.status_code == 200 and _is_v2_health(probe):
        return ServerKind.V2
    if probe.status_code in (401, 403) and api_key:
        keyed = await transport.exchange("GET", _CLOUD_PROBE, headers={API_KEY_HEADER: api_key})
        if keyed.status_code == 200:
            return ServerKind.CLOUD
        if keyed.status_code in (401, 403):
            url = f"{transport.base_url}{_CLOUD_PROBE}"
            raise ServerError(
                f"{transport.base_url} refused the request with and without the API key "
                f"(GET {url} with X-API-Key answered {keyed.status_code}): {_API_KEY_HINT}, "
                "or the token/password if the server wants those; kind='comfyui'/'cloud'/'v2' skips detection",
                request=RequestInfo("GET", url),
                response=ResponseInfo.from_parts(keyed.status_code, keyed.content),
            )
    return ServerKind.COMFYUI


def _is_v2_health(reply: Reply) -> bool:
    try:
        body = reply.json()
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("status") == "healthy"


async def connect_native(socket: Socket, transport: Transport, *, websocket: bool) -> None:
    """Connect to a native or Comfy Cloud server: open the socket, or find out by HTTP whether the
    server is there at all (a clear error if not, with nothing left open)."""
    if not websocket:
        await transport.request("GET", "/prompt")
        return
    socket.start()  # the first attempt either connects or fails; either ends the wait
    await socket.first_attempt(min(10.0, transport.timeout) + 1)
    if socket.open:
        return
    try:
        await transport.request("GET", "/prompt", retries=0)
    except BaseException:
        # Not connected: stop the socket's retry loop so a later connect() starts afresh (socket
        # *and* supervisor) instead of returning early; no session left open by a failed connect.
        await socket.stop()
        await transport.release()
        raise
    log.warning(
        "comfy_nb: WebSocket to %s not available (%s); following jobs by polling",
        socket.url, socket.failure or "timed out",
    )
