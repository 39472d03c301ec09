"""GraphView: the workflow as a node graph, lit live by its job (what ComfyUI's canvas shows)."""

from __future__ import annotations

import functools
import logging
import pathlib
import threading
from collections.abc import Mapping
from typing import Any

import anywidget
import traitlets as t

from . import _bg
from ._graph_model import build_graph, diff_states, job_summary, node_states
from ._images import fetch_thumbnail
from ._throttle import DEFAULT_INTERVAL, Throttle
from ._util import css, stop_following

__all__ = ["GraphView"]

log = logging.getLogger("comfy_nb.widgets")
_STATIC = pathlib.Path(__file__).parent / "static"
_THUMB_SIDE = 96
_MAX_THUMBS = 64


class GraphView(anywidget.AnyWidget):
    """The API graph of a job or a workflow as boxes and links; a job's nodes light up as it runs.

    Parameters
    ----------
    source:
        A ``Job`` / ``BlockingJob`` (live states), a ``Workflow`` or an API-format dict (not running).
    ui_layout:
        ``{node_id: (x, y, w, h)}`` boxes to draw at (a ``Workflow`` from a UI save brings its own);
        without them the graph is laid out in layers, left to right.
    height:
        Height of the canvas in pixels.

    The graph is sent once (the ``graph`` trait) with every node's state (``base``); after that states
    travel as numbered patches holding only the nodes that changed, at most ~20 per second. ``base`` is
    sent again only when the job ends or when the browser missed a patch and asks for it.
    """

    _esm = _STATIC / "graph_view.js"
    _css = css("graph_view.css")

    graph = t.Dict({}).tag(sync=True)
    """dict: ``{nodes, edges, bounds, layout}`` as built by ``_graph_model.build_graph``."""
    title = t.Unicode("").tag(sync=True)
    """str: the header (workflow name or the job's prompt)."""
    height = t.Int(460).tag(sync=True)
    """int: canvas height in pixels."""
    base = t.Dict({}).tag(sync=True)
    """dict: ``{seq, nodes, job}``: every node's state as of patch ``seq``."""

    def __init__(self, source: Any, *, ui_layout: Mapping[str, Any] | None = None, height: int = 460) -> None:
        prompt, name, layout = _graph_source(source)  # a bad source fails before any comm opens
        graph = build_graph(prompt, ui_layout if ui_layout is not None else layout)
        self._ids = [n["id"] for n in graph["nodes"]]
        self._job: Any = source if _is_job(source) else None
        status = self._job.status if self._job is not None else None
        self._states = node_states(self._ids, status)
        self._summary = job_summary(status)
        self._seq = 0
        # the graph and every node's state travel with the widget itself: no view can miss them
        super().__init__(graph=graph, title=name, height=int(height),
                         base={"seq": 0, "nodes": self._states, "job": self._summary})
        self._lock = threading.Lock()
        self._unsubscribe: Any = None
        self._thumbs: dict[str, str] = {}
        self._thumbs_started: set[str] = set()
        self._last_status: Any = status
        self.patches_sent = 0
        """How many state patches went to the browser (for tests and the traffic benchmark)."""
        self._throttle: Throttle[Any] = Throttle(self._apply, interval=DEFAULT_INTERVAL)
        self.on_msg(self._on_front_msg)
        if self._job is not None and status is not None:
            self._fetch_thumbs(status)
            if not status.terminal:
                self._unsubscribe = self._job.subscribe(self._on_status)
                if self._job.status.terminal:  # finished while subscribing
                    self._on_status(self._job.status)

    @property
    def job(self) -> Any:
        """The job this view follows, or None for a workflow."""
        return self._job

    @property
    def node_states(self) -> dict[str, dict[str, Any]]:
        """The latest state of every node, as sent to the browser (a copy)."""
        with self._lock:
            return {k: dict(v) for k, v in self._states.items()}

    # -- client side -------------------------------------------------------------------------
    def _on_status(self, status: Any) -> None:
        self._throttle.push(status, final=bool(status.terminal))

    def _apply(self, status: Any) -> None:
        """Send the nodes whose state changed since the last patch (runs at most ~20 times per second)."""
        with self._lock:
            ended = status is not None and status.terminal and not self._summary.get("terminal")
            self._last_status = status
            states = node_states(self._ids, status, self._thumbs)
            summary = job_summary(status)
            changed = diff_states(self._states, states)
            job_changed = summary != self._summary
            self._states, self._summary = states, summary
            if ended:  # the whole final state once: what a view opened later (or a saved notebook) shows
                self._seq += 1
                self.base = {"seq": self._seq, "nodes": states, "job": summary}
            elif changed or job_changed:
                self._seq += 1
                self.patches_sent += 1
                self.send({"type": "patch", "seq": self._seq, "nodes": changed, "job": summary})
        if status is not None:
            self._fetch_thumbs(status)
            if status.terminal and self._unsubscribe is not None:
                self._unsubscribe()
                self._unsubscribe = None

    def _fetch_thumbs(self, status: Any) -> None:
        client = getattr(self._job, "client", None)
        if client is None:
            return
        for out in status.outputs:
            nid = str(out.node_id)
            if out.kind not in ("image", "animated") or nid in self._thumbs_started:
                continue
            if len(self._thumbs_started) >= _MAX_THUMBS:
                return
            self._thumbs_started.add(nid)
            fut = fetch_thumbnail(client, out, _THUMB_SIDE)
            _bg.on_done(fut, functools.partial(self._set_thumb, nid), _log_thumb_error)

    def _set_thumb(self, node_id: str, url: str) -> None:
        if not url:
            return
        with self._lock:
            self._thumbs[node_id] = url
            status = self._last_status
        self._throttle.push(status)  # through the throttle: thumbnails share the rate limit

    # -- front end ---------------------------------------------------------------------------
    def _on_front_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if isinstance(content, dict) and content.get("type") == "resync":  # the browser missed a patch
            with self._lock:
                self.base = {"seq": self._seq, "nodes": self._states, "job": self._summary}

    def close(self) -> None:
        """Stop following the job and close the widget."""
        stop_following(self)
        super().close()

    def __repr__(self) -> str:
        graph = getattr(self, "graph", None) or {}
        parts = [f"nodes={len(graph.get('nodes', ()))}", f"links={len(graph.get('edges', ()))}"]
        summary = getattr(self, "_summary", None) or {}
        if summary.get("state", "idle") != "idle":
            parts.append(f"state={summary['state']!r}")
            counts: dict[str, int] = {}
            for st in (getattr(self, "_states", None) or {}).values():
                counts[st["state"]] = counts.get(st["state"], 0) + 1
            parts.extend(f"{k}={counts[k]}" for k in sorted(counts))
        return f"GraphView({', '.join(parts)})"


def _is_job(source: Any) -> bool:
    return callable(getattr(source, "subscribe", None)) and hasattr(source, "status")


def _graph_source(source: Any) -> tuple[Mapping[str, Any], str, Mapping[str, Any] | None]:
    """``(api graph, title, ui layout)`` of a job, a workflow or an API dict; clear errors otherwise."""
    from ..errors import WorkflowError

    if _is_job(source):
        prompt = getattr(source, "prompt", None)
        if not prompt:
            raise WorkflowError(
                f"job {getattr(source, 'prompt_id', '?')} has no graph to draw: it was submitted elsewhere "
                "and only followed by this client; draw its workflow with GraphView(workflow) instead"
            )
        meta = getattr(source, "meta", None) or {}
        return prompt, str(meta.get("prompt") or meta.get("title") or ""), None
    to_api = getattr(source, "to_api", None)
    if callable(to_api):
        return to_api(), str(getattr(source, "name", "") or ""), getattr(source, "ui_layout", None)
    if isinstance(source, Mapping) and source and all(isinstance(v, Mapping) for v in source.values()):
        return source, "", None
    raise WorkflowError(
        f"GraphView draws a Job, a Workflow or an API-format dict, not {type(source).__name__}"
    )


def _log_thumb_error(exc: BaseException) -> None:
    log.warning("graph thumbnail failed: %s", exc)
