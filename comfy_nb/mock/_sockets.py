"""The mock's WebSocket side: the sockets by client id and the one outbox every message leaves through, in order.

``Sockets`` is the executor's ``Outbox``. A single publisher task drains the outbox, so frames reach a
socket in the order they were sent, and ``faults`` can stall or drop sockets between them.
"""

from __future__ import annotations

import asyncio
import collections
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import WSMsgType, web

from ..protocol import encode_preview_image, encode_preview_with_metadata, encode_progress_text
from ._faults import Faults, ServerStats

__all__ = ["Sockets"]


@dataclass
class _Socket:
    ws: web.WebSocketResponse
    sid: str
    transport: asyncio.BaseTransport | None
    metadata: bool = False


class Sockets:
    """Connected sockets (``/ws``) and the outbox to them; one per server incarnation."""

    def __init__(self, faults: Faults, stats: ServerStats) -> None:
        self.faults = faults
        self.stats = stats
        self._sockets: dict[str, _Socket] = {}
        self._outbox: collections.deque[tuple[str | bytes, str | None]] = collections.deque()
        self._outbox_event = asyncio.Event()
        self._publisher: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ the outbox

    def send(self, event: str, data: dict[str, Any], sid: str | None) -> None:
        self.send_frame(json.dumps({"type": event, "data": data}), sid)

    def send_frame(self, payload: str | bytes, sid: str | None) -> None:
        """Queue one frame as it is (text or binary) for ``sid``, or for every socket when ``None``."""
        self._outbox.append((payload, sid))
        self._outbox_event.set()

    def send_text(self, node_id: str, text: str) -> None:
        self.send_frame(encode_progress_text(node_id, text), None)

    def wants_metadata(self, sid: str | None) -> bool:
        if sid is None:
            return False
        sock = self._sockets.get(sid)
        return sock is not None and sock.metadata

    def send_preview(
        self, image: bytes, mime: str, sid: str | None, prompt_id: str | None, node_id: str | None
    ) -> None:
        if prompt_id is not None and node_id is not None:
            frame = encode_preview_with_metadata(image, mime=mime, prompt_id=prompt_id, node_id=node_id)
        else:
            frame = encode_preview_image(image, mime)
        self.send_frame(frame, sid)

    async def _publish(self) -> None:
        outbox = self._outbox
        faults = self.faults
        while True:
            while not outbox:
                self._outbox_event.clear()
                await self._outbox_event.wait()
            stall = faults.stall_remaining("sockets")
            if stall > 0:
                await asyncio.sleep(stall)
                continue
            payload, sid = outbox.popleft()
            if sid is not None:
                sock = self._sockets.get(sid)
                if sock is not None:
                    await self._deliver(sock, payload)
            elif self._sockets:
                for sock in list(self._sockets.values()):
                    await self._deliver(sock, payload)

    async def _deliver(self, sock: _Socket, payload: str | bytes) -> None:
        ws = sock.ws
        if ws.closed:
            return
        try:
            if isinstance(payload, str):
                await ws.send_str(payload)
            else:
                await ws.send_bytes(payload)
        except (ConnectionError, RuntimeError):
            return
        self.stats.ws_messages += 1
        drop, cid = self.faults.count_message(sock.sid)
        if drop:
            self.drop(cid)

    def drop(self, client_id: str | None = None) -> None:
        """Abort connections (no close frame), like a network failure."""
        for sock in list(self._sockets.values()):
            if client_id is None or sock.sid == client_id:
                self.stats.sockets_dropped += 1
                if sock.transport is not None:
                    sock.transport.abort()  # type: ignore[attr-defined]

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._publisher = asyncio.get_running_loop().create_task(self._publish(), name="comfy-nb-mock-publisher")

    async def stop(self) -> None:
        if self._publisher is not None:
            self._publisher.cancel()
            try:
                await self._publisher
            except (asyncio.CancelledError, Exception):
                pass
        for sock in list(self._sockets.values()):
            if sock.transport is not None:
                sock.transport.abort()  # type: ignore[attr-defined]
        self._sockets.clear()

    # ------------------------------------------------------------------ the /ws endpoint

    async def serve(
        self,
        request: web.Request,
        greeting: Callable[[str], list[dict[str, Any]]],
        features: dict[str, Any],
    ) -> web.StreamResponse:
        """One socket's life: the greeting messages for its client id, the feature-flag exchange, the close."""
        sid = request.rel_url.query.get("clientId") or uuid.uuid4().hex
        ws = web.WebSocketResponse(max_msg_size=0)
        # Counted before the handshake answer: a client that saw its socket open (in another thread)
        # must find it counted.
        self.stats.ws_connects += 1
        await ws.prepare(request)
        sock = _Socket(ws, sid, request.transport)
        self._sockets[sid] = sock  # a reused clientId replaces the entry without closing the old socket
        try:
            for message in greeting(sid):
                await ws.send_str(json.dumps(message))
            first = True
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    try:
                        data = json.loads(msg.data)
                    except ValueError:
                        continue
                    if first and isinstance(data, dict) and data.get("type") == "feature_flags":
                        flags = data.get("data") or {}
                        sock.metadata = isinstance(flags, dict) and bool(flags.get("supports_preview_metadata"))
                        await ws.send_str(json.dumps({"type": "feature_flags", "data": features}))
                    first = False
                elif msg.type == WSMsgType.ERROR:
                    break
        except (ConnectionError, RuntimeError, asyncio.CancelledError):
            pass
        finally:
            # like the real server: whatever is registered under this sid goes, even a newer socket
            self._sockets.pop(sid, None)
        return ws
