"""One prompt's run: its state (what executed, what the cache holds, the UI outputs) and the messages
it sends, to its client or to everyone, in the order and shapes of ComfyUI's executor."""

from __future__ import annotations

import time
from typing import Any, Protocol

from ._cache import CacheEntry

__all__ = ["Outbox", "Run", "now_ms"]


class Outbox(Protocol):
    """Where the executor's messages go: the server's sockets (one client id, or everyone for ``None``)."""

    def send(self, event: str, data: dict[str, Any], sid: str | None) -> None: ...

    def send_text(self, node_id: str, text: str) -> None: ...

    def send_preview(
        self, image: bytes, mime: str, sid: str | None, prompt_id: str | None, node_id: str | None
    ) -> None: ...

    def wants_metadata(self, sid: str | None) -> bool:
        """True when that socket asked for previews with metadata (a feature flag)."""
        ...


def now_ms() -> int:
    return int(time.time() * 1000)


class Run:
    """One prompt's execution state and its messages."""

    def __init__(self, outbox: Outbox, item: list[Any]) -> None:
        self.outbox = outbox
        self.number, self.prompt_id, self.prompt, self.extra_data, self.outputs_to_execute = item[:5]
        cid = self.extra_data.get("client_id") if isinstance(self.extra_data, dict) else None
        self.client_id: str | None = cid if isinstance(cid, str) else None
        self.interrupted = False
        self.last_node_id: str | None = None
        self.cache: dict[Any, CacheEntry] = {}
        self.messages: list[list[Any]] = []
        self.nodes_state: dict[str, dict[str, Any]] = {}
        self.ui_outputs: dict[str, Any] = {}
        self.meta: dict[str, Any] = {}
        self.executed: list[str] = []
        self.sigs: dict[str, Any] = {}
        self.order: list[str] = []

    # messages -----------------------------------------------------------------

    def add_message(self, event: str, data: dict[str, Any], broadcast: bool) -> None:
        data["timestamp"] = now_ms()
        self.messages.append([event, data])
        if self.client_id is not None or broadcast:
            self.outbox.send(event, data, self.client_id)

    def to_client(self, event: str, data: dict[str, Any]) -> None:
        if self.client_id is not None:
            self.outbox.send(event, data, self.client_id)

    def _state(self, node_id: str) -> dict[str, Any]:
        st = self.nodes_state.get(node_id)
        if st is None:
            st = {
                "value": 0.0,
                "max": 1.0,
                "state": "running",
                "node_id": node_id,
                "prompt_id": self.prompt_id,
                "display_node_id": node_id,
                "parent_node_id": None,
                "real_node_id": node_id,
            }
            self.nodes_state[node_id] = st
        return st

    def _send_state(self) -> None:
        self.outbox.send("progress_state", {"prompt_id": self.prompt_id, "nodes": self.nodes_state}, self.client_id)

    def progress_start(self, node_id: str) -> None:
        self._state(node_id)
        self._send_state()

    def progress_finish(self, node_id: str) -> None:
        st = self._state(node_id)
        st["state"] = "finished"
        st["value"] = st["max"]
        self._send_state()

    def progress_update(
        self, node_id: str, value: int | float, total: int | float, preview: bytes | None, mime: str
    ) -> None:
        st = self._state(node_id)
        st["value"] = value
        st["max"] = total
        st["state"] = "running"
        self._send_state()
        progress = {"value": value, "max": total, "prompt_id": self.prompt_id, "node": node_id}
        if preview is None:
            self.outbox.send("progress", progress, self.client_id)
            return
        if self.outbox.wants_metadata(self.client_id):
            self.outbox.send_preview(preview, mime, self.client_id, self.prompt_id, node_id)
            self.outbox.send("progress", progress, self.client_id)
        else:
            self.outbox.send("progress", progress, self.client_id)
            self.outbox.send_preview(preview, mime, self.client_id, None, None)

    def record_ui(self, node_id: str, ui: dict[str, Any]) -> None:
        self.ui_outputs[node_id] = ui
        self.meta[node_id] = {
            "node_id": node_id,
            "display_node": node_id,
            "parent_node": None,
            "real_node_id": node_id,
        }
        self.to_client(
            "executed", {"node": node_id, "display_node": node_id, "output": ui, "prompt_id": self.prompt_id}
        )
