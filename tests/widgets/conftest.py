"""Widget test helpers: a recording comm (ipywidgets' DummyComm pattern) and contract-sized fakes."""

from __future__ import annotations

import asyncio
import concurrent.futures
import io
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any, ClassVar

import comm
import ipykernel.comm
import ipywidgets.widgets.widget as ipw_widget
import pytest
from ipywidgets import Widget
from PIL import Image

from comfy_nb.client import JobState, JobStatus, NodeRef, Output, Preview, QueueEntry, QueueState


class RecordingComm:
    """ipywidgets' test DummyComm, plus a log of every ``send`` shared by all comms."""

    comm_id = "a-b-c-d"
    kernel = "Truthy"
    log: ClassVar[list[tuple[int, dict[str, Any]]]] = []  # shared by every comm on purpose

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.messages: list[dict[str, Any]] = []
        self.sent_at: list[float] = []
        """``time.monotonic()`` of each ``send``, beside ``messages``."""
        self.handler: Callable[[dict[str, Any]], None] | None = None

    def open(self, *args: Any, **kwargs: Any) -> None:
        pass

    def on_msg(self, handler: Any) -> None:
        self.handler = handler

    def send(self, data: Any = None, buffers: Any = None, **kwargs: Any) -> None:
        self.messages.append(data)
        self.sent_at.append(time.monotonic())
        RecordingComm.log.append((id(self), data))

    def close(self, *args: Any, **kwargs: Any) -> None:
        pass


@pytest.fixture(autouse=True)
def recording_comm(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[RecordingComm]]:
    RecordingComm.log = []
    monkeypatch.setattr(comm, "create_comm", lambda **kw: RecordingComm())
    monkeypatch.setattr(comm, "get_comm_manager", lambda **kw: {})
    monkeypatch.setattr(ipykernel.comm.comm, "BaseComm", RecordingComm)
    monkeypatch.setattr(ipw_widget, "Comm", RecordingComm, raising=False)
    yield RecordingComm


def state_updates(widget: Widget) -> list[dict[str, Any]]:
    """The ``update`` messages a widget sent (state dicts)."""
    return [m["state"] for m in widget.comm.messages if isinstance(m, dict) and m.get("method") == "update"]


def update_times(widget: Widget) -> list[float]:
    """When each of ``state_updates(widget)`` was sent (monotonic seconds)."""
    return [t for m, t in zip(widget.comm.messages, widget.comm.sent_at, strict=True)
            if isinstance(m, dict) and m.get("method") == "update"]


def front_msg(widget: Widget, content: dict[str, Any]) -> None:
    """Deliver a custom message from the 'front end' to the widget, as the kernel would."""
    widget.comm.handler({"content": {"data": {"method": "custom", "content": content}}, "buffers": []})


def front_update(widget: Widget, state: dict[str, Any]) -> None:
    """A state change typed in the browser (ipywidgets does not echo it back)."""
    widget.comm.handler({"content": {"data": {"method": "update", "state": state, "buffer_paths": []}},
                         "buffers": []})


def wait_for(cond: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll ``cond`` (with a short event wait, not a fixed sleep) until truthy or fail."""
    deadline = time.monotonic() + timeout
    ev = threading.Event()
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        ev.wait(0.01)


def png_bytes(w: int = 64, h: int = 48, color: tuple[int, int, int] = (200, 30, 30), fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), color).save(buf, fmt)
    return buf.getvalue()


class LoopThread:
    """An event loop on a background thread: where a real client runs its callbacks."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="fake-client-loop")
        self.thread.start()

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        done = threading.Event()

        def run() -> None:
            try:
                fn(*args, **kwargs)
            finally:
                done.set()

        self.loop.call_soon_threadsafe(run)
        assert done.wait(5)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


class FakeJob:
    """Just the Job contract surface; ``emit`` runs subscribers on the loop thread."""

    def __init__(self, client: FakeClient, prompt_id: str = "p1", meta: dict[str, Any] | None = None) -> None:
        self.client = client
        self.prompt_id = prompt_id
        self.meta = dict(meta or {"prompt": "a red fox", "seed": 7, "sampler": "euler", "steps": 20, "cfg": 7.0,
                                   "model": "sd15.safetensors"})
        self.status = JobStatus(prompt_id=prompt_id, queued_at=1000.0)
        self._subs: list[Callable[[JobStatus], None]] = []
        self.cancel_calls = 0

    @property
    def done(self) -> bool:
        return self.status.terminal

    def subscribe(self, cb: Callable[[JobStatus], None], on_error: Any = None) -> Callable[[], None]:
        self._subs.append(cb)
        return lambda: self._subs.remove(cb) if cb in self._subs else None

    def emit(self, **changes: Any) -> None:
        self.status = replace(self.status, **changes)
        st = self.status
        for cb in tuple(self._subs):
            cb(st)

    def cancel_nowait(self) -> concurrent.futures.Future[bool]:
        self.cancel_calls += 1
        fut: concurrent.futures.Future[bool] = concurrent.futures.Future()
        fut.set_result(True)
        return fut


class FakeClient:
    """Async client contract surface served from memory on a background loop."""

    def __init__(self, loop: LoopThread) -> None:
        self._loop = loop
        self.files: dict[str, bytes] = {}
        self.queue_listeners: list[Callable[[QueueState], None]] = []
        self.jobs: dict[str, FakeJob] = {}
        self.queue_state = QueueState()
        self.cancelled: list[str] = []
        self.downloads: list[tuple[str, str | None]] = []
        self.saved: list[tuple[str, str]] = []
        self.config = None
        self.url = "http://fake"

    def spawn(self, coro: Any) -> concurrent.futures.Future[Any]:
        return asyncio.run_coroutine_threadsafe(coro, self._loop.loop)

    def on_queue_change(self, cb: Callable[[QueueState], None]) -> Callable[[], None]:
        self.queue_listeners.append(cb)
        return lambda: self.queue_listeners.remove(cb)

    def push_queue(self, q: QueueState) -> None:
        self.queue_state = q
        for cb in tuple(self.queue_listeners):
            self._loop.call(cb, q)

    async def queue(self) -> QueueState:
        return self.queue_state

    async def cancel(self, prompt_id: str) -> bool:
        self.cancelled.append(prompt_id)
        return True

    async def clear_queue(self) -> int:
        n = len(self.queue_state.pending)
        self.queue_state = QueueState(running=self.queue_state.running)
        return n

    async def download(self, output: Output, *, preview: str | None = None) -> bytes:
        self.downloads.append((output.filename, preview))
        return self.files[output.filename]

    async def save_output(self, output: Output, directory: Any) -> Any:
        import pathlib

        p = pathlib.Path(directory) / output.filename
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(self.files[output.filename])
        self.saved.append((output.filename, str(directory)))
        return p

    def add_image(self, name: str, data: bytes | None = None) -> Output:
        self.files[name] = data if data is not None else png_bytes()
        return Output(kind="image" if not name.endswith((".mp4", ".webm")) else "video", filename=name)


@pytest.fixture
def loop_thread() -> Iterator[LoopThread]:
    lt = LoopThread()
    yield lt
    lt.stop()


@pytest.fixture
def fake_client(loop_thread: LoopThread) -> FakeClient:
    return FakeClient(loop_thread)


__all__ = [
    "FakeClient", "FakeJob", "JobState", "LoopThread", "NodeRef", "Preview", "QueueEntry", "QueueState",
    "front_msg", "png_bytes", "state_updates", "wait_for",
]
