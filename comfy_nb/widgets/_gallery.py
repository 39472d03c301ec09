"""Gallery: paginated thumbnails of outputs with their parameters, a lightbox, and Save."""

from __future__ import annotations

import functools
import logging
import pathlib
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeGuard

import anywidget
import traitlets as t

from ..client import ClientLike, JobLike, JobStatus, Output
from . import _bg
from ._images import LRU, SAFE_MIMES, fetch_thumbnail, mime_for
from ._throttle import DEFAULT_INTERVAL, Throttle
from ._util import css, meta_params

__all__ = ["Gallery"]

log = logging.getLogger("comfy_nb.widgets")
_STATIC = pathlib.Path(__file__).parent / "static"
_SHOWN_KINDS = ("image", "animated", "video", "audio", "file")
_MAX_FULL_BYTES = 64 * 1024 * 1024
_MAX_INFLIGHT = 4


@dataclass(frozen=True)
class _Entry:
    output: Output
    params: dict[str, Any]
    client: ClientLike | None

    @property
    def key(self) -> tuple[str, str, str]:
        o = self.output
        return (str(o.folder_type), str(o.subfolder), str(o.filename))


class Gallery(anywidget.AnyWidget):
    """Thumbnails of outputs (newest first), paginated, with parameters, enlarge and save.

    Parameters
    ----------
    outputs_or_jobs:
        Jobs (unfinished ones are added when they complete), ``Output`` objects, or a mix.
    client:
        The client used to download outputs that do not come from a job.
    page_size:
        Thumbnails per page (only the visible page is fetched).
    thumb_size:
        Longest side of a thumbnail, in pixels (capped to 64..256).
    cache_size:
        How many thumbnails to keep in memory (least recently used are dropped).
    """

    _esm = _STATIC / "gallery.js"
    _css = css("gallery.css")

    items : t.List[Any] = t.List([]).tag(sync=True)
    """list[dict]: the visible page: ``{index, kind, filename, mime, thumb, params}``."""
    page = t.Int(0).tag(sync=True)
    """int: zero-based page shown."""
    page_count = t.Int(1).tag(sync=True)
    """int: number of pages."""
    total = t.Int(0).tag(sync=True)
    """int: number of outputs."""
    selected = t.Int(-1).tag(sync=True)
    """int: index of the enlarged output, -1 when none."""
    detail = t.Dict({}).tag(sync=True)
    """dict: the enlarged output's ``{index, kind, filename, mime, params}``."""
    full = t.Bytes(b"").tag(sync=True)
    """bytes: the enlarged output's full file (fetched on demand)."""
    full_mime = t.Unicode("").tag(sync=True)
    """str: mime type of ``full``."""
    save_dir = t.Unicode("outputs").tag(sync=True)
    """str: default folder for the Save button."""
    message = t.Unicode("").tag(sync=True)
    """str: the last save / load message."""

    def __init__(
        self,
        outputs_or_jobs: Any = (),
        client: ClientLike | None = None,
        *,
        page_size: int = 24,
        thumb_size: int = 192,
        cache_size: int = 256,
    ) -> None:
        super().__init__()
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        self._client = client
        self._page_size = page_size
        self._thumb_size = max(64, min(256, int(thumb_size)))
        self._lock = threading.RLock()
        self._entries: list[_Entry] = []
        self._thumbs: LRU[tuple[str, str, str], str] = LRU(cache_size)
        self._want: deque[int] = deque()
        self._inflight: set[tuple[str, str, str]] = set()
        self._failed: set[tuple[str, str, str]] = set()
        self._watches: dict[int, Any] = {}
        self._refresh: Throttle[None] = Throttle(lambda _v: self._render_page(), interval=DEFAULT_INTERVAL)
        self.on_msg(self._on_front_msg)
        self.add(outputs_or_jobs)

    # -- public API -------------------------------------------------------------------------
    def add(self, job_or_outputs: Any) -> None:
        """Add a job (its outputs appear when it completes), an ``Output``, or an iterable of them."""
        if job_or_outputs is None:
            return
        if _is_job(job_or_outputs):
            self._add_job(job_or_outputs)
        elif _is_output(job_or_outputs):
            self._add_outputs([job_or_outputs], {}, self._client)
        elif isinstance(job_or_outputs, Iterable) and not isinstance(job_or_outputs, (str, bytes)):
            loose: list[Any] = []
            for item in job_or_outputs:
                if _is_output(item):
                    loose.append(item)
                else:
                    if loose:
                        self._add_outputs(loose, {}, self._client)
                        loose = []
                    self.add(item)
            if loose:
                self._add_outputs(loose, {}, self._client)
        else:
            raise TypeError(f"Gallery.add() takes a Job, an Output or an iterable of them, not {type(job_or_outputs).__name__}")

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def outputs(self) -> list[Any]:
        """All outputs, in the order they were added."""
        with self._lock:
            return [e.output for e in self._entries]

    def params(self, index: int) -> dict[str, Any]:
        """The parameters shown beside output ``index``."""
        with self._lock:
            return dict(self._entries[index].params)

    def show_page(self, page: int) -> None:
        """Show page ``page`` (zero-based, clamped) and fetch its thumbnails."""
        with self._lock:
            self.page = max(0, min(page, self._pages() - 1))
        self._render_page()

    def enlarge(self, index: int) -> None:
        """Enlarge output ``index``: fetch the full file on demand."""
        with self._lock:
            entry = self._entries[index]
        out = entry.output
        mime = mime_for(out.filename)
        with self.hold_sync():
            self.selected = index
            self.detail = {"index": index, "kind": out.kind, "filename": out.filename, "mime": mime,
                           "params": entry.params}
            self.full, self.full_mime = b"", ""
        client = entry.client
        if client is None or mime not in SAFE_MIMES:
            return
        fut = _bg.call(client, "download", out)

        def _got(data: bytes) -> None:
            if self.selected != index:
                return
            if len(data) > _MAX_FULL_BYTES:
                self.message = f"{out.filename} is too large to show here ({len(data) // 2**20} MiB); save it instead"
                return
            with self.hold_sync():
                self.full, self.full_mime = data, mime

        _bg.on_done(fut, _got, lambda exc: setattr(self, "message", f"Could not load {out.filename}: {exc}"))

    def close_detail(self) -> None:
        """Close the enlarged view and drop the full image from memory."""
        with self.hold_sync():
            self.selected = -1
            self.detail = {}
            self.full, self.full_mime = b"", ""

    def save(self, index: int, directory: str | pathlib.Path | None = None) -> Any:
        """Save output ``index`` into ``directory`` (default ``save_dir``); returns a Future of the path."""
        with self._lock:
            entry = self._entries[index]
        if entry.client is None:
            raise ValueError("this gallery has no client to download with: pass client=...")
        target = pathlib.Path(directory if directory is not None else self.save_dir).expanduser()
        fut = _bg.call(entry.client, "save_output", entry.output, target)
        name = entry.output.filename
        _bg.on_done(fut, lambda p: setattr(self, "message", f"Saved {name} → {p}"),
                    lambda exc: setattr(self, "message", f"Could not save {name}: {exc}"))
        return fut

    def close(self) -> None:
        """Stop following jobs and close the widget."""
        watches = getattr(self, "_watches", {})
        for unsub in list(watches.values()):
            unsub()
        watches.clear()
        if hasattr(self, "_refresh"):
            self._refresh.close()
        super().close()

    def __repr__(self) -> str:
        n = len(getattr(self, "_entries", ()))
        return f"Gallery({n} output{'s' if n != 1 else ''})"

    # -- internals --------------------------------------------------------------------------
    def _add_job(self, job: JobLike) -> None:
        client = job.client or self._client
        if job.status.terminal:
            self._add_finished(job, job.status, client)
            return
        key = id(job)

        def _on_update(st: JobStatus) -> None:
            if st.terminal:
                with self._lock:
                    unsub = self._watches.pop(key, None)
                if unsub is not None:
                    unsub()
                    self._add_finished(job, st, client)

        with self._lock:
            self._watches[key] = job.subscribe(_on_update)
        if job.done:  # finished while we subscribed
            _on_update(job.status)

    def _add_finished(self, job: JobLike, st: JobStatus, client: ClientLike | None) -> None:
        if str(getattr(st.state, "value", st.state)) != "completed":
            return
        self._add_outputs(list(st.outputs), meta_params(job.meta), client)

    def _add_outputs(self, outputs: list[Output], params: dict[str, Any], client: ClientLike | None) -> None:
        added = False
        with self._lock:
            for out in outputs:
                if getattr(out, "kind", "") in _SHOWN_KINDS:
                    self._entries.append(_Entry(out, params, client))
                    added = True
        if added:
            self._refresh.push(None)

    def _pages(self) -> int:
        return max(1, -(-len(self._entries) // self._page_size))

    def _render_page(self) -> None:
        with self._lock:
            n = len(self._entries)
            pages = self._pages()
            page = min(self.page, pages - 1)
            start = page * self._page_size
            # newest first: display position p shows entry n-1-p
            indices = [n - 1 - p for p in range(start, min(n, start + self._page_size))]
            items = []
            self._want.clear()
            for i in indices:
                e = self._entries[i]
                thumb = self._thumbs.get(e.key, "")
                if not thumb and e.output.kind in ("image", "animated") and e.key not in self._failed:
                    self._want.append(i)
                items.append({"index": i, "kind": e.output.kind, "filename": e.output.filename,
                              "mime": mime_for(e.output.filename), "thumb": thumb, "params": e.params})
            with self.hold_sync():
                self.total = n
                self.page_count = pages
                self.page = page
                self.items = items
        self._pump()

    def _pump(self) -> None:
        """Start thumbnail downloads for the visible page, at most ``_MAX_INFLIGHT`` at a time."""
        while True:
            with self._lock:
                if len(self._inflight) >= _MAX_INFLIGHT or not self._want:
                    return
                entry = self._entries[self._want.popleft()]
                if entry.key in self._inflight or entry.key in self._thumbs or entry.client is None:
                    continue
                self._inflight.add(entry.key)
            fut = fetch_thumbnail(entry.client, entry.output, self._thumb_size)
            _bg.on_done(fut, functools.partial(self._thumb_done, entry),
                        functools.partial(self._thumb_failed, entry))

    def _thumb_failed(self, entry: _Entry, exc: BaseException) -> None:
        self._thumb_done(entry, "", exc)

    def _thumb_done(self, entry: _Entry, url: str, exc: BaseException | None = None) -> None:
        with self._lock:
            self._inflight.discard(entry.key)
            if url:
                self._thumbs[entry.key] = url
            else:
                self._failed.add(entry.key)
                if exc is not None:
                    log.warning("thumbnail of %s failed: %s", entry.output.filename, exc)
        self._refresh.push(None)
        self._pump()

    def _on_front_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if not isinstance(content, dict):
            return
        kind = content.get("type")
        try:
            if kind == "page":
                self.show_page(int(content.get("page", 0)))
            elif kind == "open":
                self.enlarge(int(content["index"]))
            elif kind == "close":
                self.close_detail()
            elif kind == "save":
                directory = content.get("directory") or None
                self.save(int(content["index"]), str(directory) if directory else None)
        except (KeyError, IndexError, ValueError, TypeError) as exc:
            self.message = f"Cannot do that: {exc}"


def _is_job(x: object) -> TypeGuard[JobLike]:
    return hasattr(x, "subscribe") and hasattr(x, "status") and hasattr(x, "prompt_id")


def _is_output(x: Any) -> bool:
    return hasattr(x, "filename") and hasattr(x, "kind") and hasattr(x, "folder_type")
