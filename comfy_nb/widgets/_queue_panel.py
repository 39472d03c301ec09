"""QueuePanel: the server's running and pending prompts, pushed from WebSocket status messages."""

from __future__ import annotations

import pathlib
import threading
from typing import Any

import anywidget
import traitlets as t

from ..client import ClientLike
from . import _bg
from ._throttle import DEFAULT_INTERVAL, Throttle
from ._util import css, short, stop_following

__all__ = ["QueuePanel"]

_STATIC = pathlib.Path(__file__).parent / "static"
_MAX_ROWS = 200


class QueuePanel(anywidget.AnyWidget):
    """Live running / pending list with per-row cancel and "clear pending".

    Updates come from ``client.on_queue_change`` (the client refreshes the queue when the server's
    WebSocket reports a status change); there is no polling. ``refresh()`` asks once.

    Parameters
    ----------
    client:
        An ``AsyncComfyClient`` or ``ComfyClient``.
    """

    _esm = _STATIC / "queue_panel.js"
    _css = css("queue_panel.css")

    running : t.List[Any] = t.List([]).tag(sync=True)
    """list[dict]: ``{prompt_id, number, mine, label}`` of running prompts."""
    pending : t.List[Any] = t.List([]).tag(sync=True)
    """list[dict]: pending prompts in run order (first 200)."""
    pending_total = t.Int(0).tag(sync=True)
    """int: number of pending prompts (may exceed the rows sent)."""
    message = t.Unicode("").tag(sync=True)
    """str: the last action's result or error."""
    cancelling : t.List[Any] = t.List([]).tag(sync=True)
    """list[str]: prompt ids whose cancel is in flight."""

    def __init__(self, client: ClientLike) -> None:
        super().__init__()
        self._client = client
        self._lock = threading.Lock()
        self._throttle: Throttle[Any] = Throttle(self._apply, interval=DEFAULT_INTERVAL)
        self._unsubscribe = client.on_queue_change(self._on_queue)
        self.on_msg(self._on_front_msg)
        self.refresh()

    def refresh(self) -> Any:
        """Fetch the queue once (in the background); returns a Future."""
        fut = _bg.call(self._client, "queue")
        _bg.on_done(fut, self._on_queue, lambda exc: setattr(self, "message", f"Could not read the queue: {exc}"))
        return fut

    def cancel(self, prompt_id: str) -> Any:
        """Cancel one prompt (running or pending); returns a Future of the client's answer."""
        with self._lock:
            self.cancelling = [*self.cancelling, prompt_id]
        fut = _bg.call(self._client, "cancel", prompt_id)

        def _done(ok: Any) -> None:
            with self._lock:
                self.cancelling = [p for p in self.cancelling if p != prompt_id]
            if not ok:
                self.message = "That prompt had already finished."
            self.refresh()  # one read after our own action (the server may not broadcast a removal)

        _bg.on_done(fut, _done, lambda exc: self._failed("cancel", exc, prompt_id))
        return fut

    def clear(self) -> Any:
        """Remove every pending prompt (running ones keep running); returns a Future of the count."""
        fut = _bg.call(self._client, "clear_queue")

        def _done(n: Any) -> None:
            self.message = f"Cleared {n} pending prompt{'s' if n != 1 else ''}." if isinstance(n, int) else "Cleared."
            self.refresh()

        _bg.on_done(fut, _done, lambda exc: self._failed("clear", exc))
        return fut

    def flush(self) -> None:
        """Show the latest queue now (the panel otherwise catches up within ~55 ms)."""
        self._throttle.flush()

    def close(self) -> None:
        """Stop listening to queue changes and close the widget."""
        stop_following(self)
        super().close()

    def __repr__(self) -> str:
        return "QueuePanel()"

    # -- internals --------------------------------------------------------------------------
    def _failed(self, what: str, exc: BaseException, prompt_id: str | None = None) -> None:
        if prompt_id is not None:
            with self._lock:
                self.cancelling = [p for p in self.cancelling if p != prompt_id]
        self.message = f"Could not {what}: {exc}"

    def _on_queue(self, q: Any) -> None:
        self._throttle.push(q)

    def _row(self, entry: Any, jobs: Any) -> dict[str, Any]:
        job = jobs.get(entry.prompt_id) if hasattr(jobs, "get") else None
        meta = getattr(job, "meta", None) or {}
        label = short(str(meta.get("prompt") or ""), 80)
        return {"prompt_id": str(entry.prompt_id), "number": entry.number, "mine": bool(entry.mine), "label": label}

    def _apply(self, q: Any) -> None:
        jobs = self._client.jobs
        with self._lock, self.hold_sync():
            self.running = [self._row(e, jobs) for e in q.running]
            self.pending = [self._row(e, jobs) for e in q.pending[:_MAX_ROWS]]
            self.pending_total = len(q.pending)

    def _on_front_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if not isinstance(content, dict):
            return
        kind = content.get("type")
        if kind == "cancel" and isinstance(content.get("prompt_id"), str):
            self.cancel(content["prompt_id"])
        elif kind == "clear":
            self.clear()
        elif kind == "refresh":
            self.refresh()
