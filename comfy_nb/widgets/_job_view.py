"""JobView: the live view of one job (what a ``Job`` shows as the last line of a cell)."""

from __future__ import annotations

import functools
import logging
import pathlib
import threading
import time
from collections.abc import Callable
from typing import Any

import anywidget
import traitlets as t

from ..client import JobLike, JobStatus, Output
from . import _bg
from ._images import downscale, fetch_thumbnail, mime_for
from ._throttle import DEFAULT_INTERVAL, Throttle
from ._util import css, meta_params, short, state_name, stop_following

__all__ = ["JobView"]

log = logging.getLogger("comfy_nb.widgets")
_STATIC = pathlib.Path(__file__).parent / "static"
_PREVIEW_SIDE = 256
_THUMB_SIDE = 160
_MAX_OUTPUT_THUMBS = 8


class JobView(anywidget.AnyWidget):
    """Live state of one job: progress, node steps, preview, timing, cancel, error, outputs.

    Parameters
    ----------
    job:
        A ``Job`` (async client), ``BlockingJob`` (blocking client) or ``PoolJob`` (server pool).
    """

    _esm = _STATIC / "job_view.js"
    _css = css("job_view.css")

    title = t.Unicode("").tag(sync=True)
    """str: the prompt (from ``job.meta``), shown as the header; default ``""``."""
    state = t.Unicode("queued").tag(sync=True)
    """str: queued | running | completed | failed | cancelled."""
    queue_position = t.Int(None, allow_none=True).tag(sync=True)
    """int | None: prompts ahead of this one while queued."""
    progress = t.Float(0.0).tag(sync=True)
    """float: whole-workflow progress, 0..100."""
    node = t.Unicode("").tag(sync=True)
    """str: the running node's name (title or class type)."""
    step = t.Int(0).tag(sync=True)
    """int: current step of the running node."""
    steps = t.Int(0).tag(sync=True)
    """int: steps of the running node (0 when it reports none)."""
    nodes_done = t.Int(0).tag(sync=True)
    """int: nodes finished."""
    nodes_total = t.Int(0).tag(sync=True)
    """int: nodes to run."""
    elapsed = t.Float(None, allow_none=True).tag(sync=True)
    """float | None: seconds running at the last update (the front end keeps counting)."""
    eta = t.Float(None, allow_none=True).tag(sync=True)
    """float | None: estimated seconds remaining."""
    preview = t.Bytes(b"").tag(sync=True)
    """bytes: the latest preview, downscaled to 256 px."""
    preview_mime = t.Unicode("").tag(sync=True)
    """str: mime type of ``preview``."""
    error = t.Dict({}).tag(sync=True)
    """dict: ``{node, class_type, type, message}`` when the job failed."""
    outputs : t.List[Any] = t.List([]).tag(sync=True)
    """list[dict]: ``{kind, filename, thumb}`` per output once completed."""
    cancel_requested = t.Bool(False).tag(sync=True)
    """bool: the Cancel button was pressed."""
    notice = t.Unicode("").tag(sync=True)
    """str: a hint about what the server does, e.g. why no preview moves."""
    graph_available = t.Bool(False).tag(sync=True)
    """bool: the job's graph is known, so the Graph toggle is shown."""
    graph_ref = t.Unicode("").tag(sync=True)
    """str: ``anywidget:<model id>`` of the job's GraphView once the Graph toggle asked for it."""

    def __init__(self, job: JobLike) -> None:
        super().__init__(graph_available=bool(getattr(job, "prompt", None)))
        self._job = job
        self._lock = threading.RLock()  # a thumbnail already fetched is set from inside _apply
        self._preview_src: object = None
        self._thumbs_started = False
        self._got_preview = False
        self._last_step_node: str | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._graph: Any = None
        meta = job.meta
        self.title = str(meta.get("prompt") or meta.get("title") or "")
        self._throttle: Throttle[JobStatus] = Throttle(self._apply, interval=DEFAULT_INTERVAL)
        self._apply(job.status)
        self._unsubscribe = job.subscribe(self._on_status) if not job.status.terminal else None
        if self._unsubscribe is not None and job.status.terminal:  # finished while subscribing
            self._on_status(job.status)
        self.on_msg(self._on_front_msg)

    @property
    def job(self) -> JobLike:
        """The job this view follows."""
        return self._job

    # -- client side -------------------------------------------------------------------------
    def _on_status(self, status: JobStatus) -> None:
        # a node's last step goes out at once (once), so "step n/n" shows before the next node replaces it
        node = status.current_node
        last_step = False
        if node is not None and (status.steps or 0) > 1 and status.step == status.steps:
            last_step = node.id != self._last_step_node
            self._last_step_node = node.id
        self._throttle.push(status, final=bool(status.terminal) or last_step)

    def _apply(self, st: JobStatus) -> None:
        """Copy a JobStatus snapshot into the traits (runs at most ~20 times per second)."""
        with self._lock, self.hold_sync():
            state = state_name(st.state)
            self.state = state
            self.queue_position = st.queue_position if state == "queued" else None
            self.progress = float(st.progress)
            cur = st.current_node
            self.node = "" if cur is None or st.terminal else str(cur.title or cur.class_type or cur.id)
            self.step = int(st.step or 0)
            self.steps = int(st.steps or 0)
            self.nodes_done = int(st.completed_nodes or 0)
            self.nodes_total = int(st.total_nodes or 0)
            elapsed = _elapsed(st)
            self.elapsed = elapsed
            eta = getattr(st, "eta", None)
            self.eta = float(eta) if state == "running" and eta is not None else None
            if st.preview is not None and st.preview is not self._preview_src and not st.terminal:
                self._preview_src = st.preview
                self._got_preview = True
                try:
                    data, mime = downscale(st.preview.data, _PREVIEW_SIDE)
                except ValueError:
                    data, mime = b"", ""
                self.preview, self.preview_mime = data, mime
            self.notice = _preview_notice(self.step, self._got_preview) if state == "running" else ""
            err = st.error
            if err is not None:
                self.error = {
                    "node": str(err.node_id or ""),
                    "class_type": str(err.class_type or ""),
                    "type": str(err.exception_type or ""),
                    "message": str(err.message or ""),
                }
            elif state == "failed" and st.node_errors:
                ne = st.node_errors[0]
                self.error = {"node": str(getattr(ne, "node_id", "") or ""), "class_type": "",
                              "type": "validation", "message": str(ne)}
            if state == "completed" and not self._thumbs_started:
                self._thumbs_started = True
                self._show_outputs(tuple(st.outputs))
        if st.terminal and self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def _show_outputs(self, outputs: tuple[Output, ...]) -> None:
        files = [o for o in outputs if getattr(o, "kind", "") != "text"]
        texts = [o for o in outputs if getattr(o, "kind", "") == "text"]
        self.outputs = [
            {"kind": o.kind, "filename": o.filename, "thumb": "", "mime": mime_for(o.filename)} for o in files
        ] + [{"kind": "text", "filename": "", "thumb": "", "mime": "", "text": short(o.text or "", 500)}
             for o in texts]
        client = self._job.client
        for i, out in enumerate(files[:_MAX_OUTPUT_THUMBS]):
            if out.kind not in ("image", "animated"):
                continue
            fut = fetch_thumbnail(client, out, _THUMB_SIDE)
            _bg.on_done(fut, functools.partial(self._set_thumb, i), _log_thumb_error)

    def _set_thumb(self, index: int, url: str) -> None:
        with self._lock:
            outs = [dict(o) for o in self.outputs]
            if index < len(outs):
                outs[index]["thumb"] = url
                self.outputs = outs

    # -- front end ---------------------------------------------------------------------------
    def _on_front_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if isinstance(content, dict) and content.get("type") == "cancel":
            self.cancel()
        elif isinstance(content, dict) and content.get("type") == "graph":
            self.graph_view()

    def graph_view(self) -> Any:
        """The job's ``GraphView`` (what the Graph toggle shows), made on first use."""
        if self._graph is None and getattr(self._job, "prompt", None):
            from ._graph_view import GraphView

            self._graph = GraphView(self._job, height=360)
            self.graph_ref = f"anywidget:{self._graph.model_id}"
        return self._graph

    def cancel(self) -> Any:
        """Ask the server to stop this job (what the Cancel button does); never blocks."""
        if self._job.status.terminal:
            return None
        self.cancel_requested = True
        return self._job.cancel_nowait()

    def flush(self) -> None:
        """Show the latest status now (the view otherwise catches up within ~55 ms)."""
        self._throttle.flush()

    def close(self) -> None:
        """Stop following the job and close the widget."""
        stop_following(self)
        graph = getattr(self, "_graph", None)  # close() also runs from __del__ of a half-made view
        if graph is not None:
            graph.close()
        super().close()

    def __repr__(self) -> str:
        meta = getattr(getattr(self, "_job", None), "meta", None) or {}
        params = meta_params(meta)
        parts = [f"{k}={v!r}" for k, v in params.items() if k in ("prompt", "steps", "sampler")]
        return f"JobView({', '.join(parts)})"


def _elapsed(st: JobStatus) -> float | None:
    if st.started_at is None:
        return None
    end = st.finished_at if st.finished_at is not None else time.time()
    return max(0.0, float(end) - float(st.started_at))


def _preview_notice(step: int, got_preview: bool) -> str:
    """Say why no image moves: a node stepped a few times and the server sent no preview."""
    if got_preview or step < 2:
        return ""
    return ("No previews from the server: ComfyUI sends sampler previews only when started with "
            "--preview-method auto (or latent2rgb); its default is none.")


def _log_thumb_error(exc: BaseException) -> None:
    log.warning("thumbnail failed: %s", exc)
