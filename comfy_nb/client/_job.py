"""``Job``: a handle on one submitted prompt, updated by the client as events arrive."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import AsyncGenerator, Callable, Mapping
from typing import Any, Protocol

from .._display import mimebundle
from .._observers import Observers
from ..errors import ClientClosed, ComfyTimeout, ExecutionError, JobCancelled, JobLost, NodeInputError
from ..protocol import HistoryEntry, PreviewImage, ProgressText, ServerMessage
from ._console import follow_job
from ._contracts import ClientLike, ErrorCallback, UpdateCallback
from ._models import JobState, JobStatus, Output
from ._tracker import JobTracker

__all__ = ["Job", "JobFeed", "JobOwner", "raise_for_status"]


def raise_for_status(status: JobStatus) -> list[Output]:
    """The outputs of a completed job, or the error that says why there are none."""
    if status.state is JobState.COMPLETED:
        return list(status.outputs)
    if status.state is JobState.CANCELLED:
        raise JobCancelled(status.prompt_id)
    error = status.error
    if error is not None and error.exception_type is None:
        raise JobLost(status.prompt_id, error.message)
    if error is not None:
        raise ExecutionError(
            status.prompt_id,
            node_id=error.node_id,
            node_type=error.class_type,
            exception_type=error.exception_type or "Error",
            exception_message=error.message,
            traceback=list(error.traceback),
        )
    raise JobLost(status.prompt_id, f"prompt {status.prompt_id} has not finished (state {status.state.value})")


async def status_updates(
    subscribe: Callable[[UpdateCallback, ErrorCallback | None], Callable[[], None]],
    current: Callable[[], JobStatus],
    closed: Callable[[], ClientClosed | None],
) -> AsyncGenerator[JobStatus, None]:
    """The ``updates()`` of a job (``Job``, ``PoolJob``): its status now, then each change until the terminal
    one; ``ClientClosed`` once its owner closes with the job unfinished."""
    queue: asyncio.Queue[JobStatus | BaseException] = asyncio.Queue()
    unsubscribe = subscribe(queue.put_nowait, queue.put_nowait)
    try:
        status = current()
        yield status
        while not status.terminal:
            error = closed()
            if error is not None and queue.empty():
                raise ClientClosed(error.message)
            item = await queue.get()
            if isinstance(item, ClientClosed):
                raise ClientClosed(item.message)
            if isinstance(item, BaseException):
                continue  # our own queue.put_nowait cannot raise; nothing else reports here
            status = item
            yield status
    finally:
        unsubscribe()


def _resolve(waiter: asyncio.Future[bool], value: bool) -> None:
    if not waiter.done():
        waiter.set_result(value)


class JobOwner(ClientLike, Protocol):
    """What a ``Job`` needs from the client that follows it (the client never reaches into the job)."""

    async def cancel(self, prompt_id: str) -> bool: ...


class JobFeed:
    """The writing end of a ``Job``, held by whoever follows the prompt (``_follower.Follower``).

    Each change is applied to the job's ``JobTracker`` and delivered to subscribers; the terminal
    status exactly once, then nothing. Every method returns whether the status changed.
    """

    def __init__(self, tracker: JobTracker) -> None:
        self._tracker = tracker
        self._waiters: list[asyncio.Future[bool]] = []
        """Callers of ``ended``; resolved when the job ends or the client closes."""
        self.subscribers: Observers[JobStatus] = Observers(f"subscriber of job {tracker.prompt_id}")
        self._held = False
        """True while ``submit`` still handles the server's answer: changes are delivered after it."""
        self._ended = False
        """True once the terminal status was delivered: nothing is delivered after it."""
        self.closed: ClientClosed | None = None

    @property
    def prompt_id(self) -> str:
        return self._tracker.prompt_id

    @property
    def status(self) -> JobStatus:
        return self._tracker.status

    @property
    def prompt(self) -> dict[str, Any]:
        return self._tracker.prompt

    @property
    def done(self) -> bool:
        return self._tracker.status.terminal

    def outputs_missing(self) -> bool:
        return self._tracker.outputs_missing()

    def _changed(self, changed: bool) -> bool:
        if changed:
            self._deliver()
        return changed

    def _deliver(self) -> None:
        if self._held or self._ended:
            return
        status = self._tracker.status
        if status.terminal:
            self._ended = True
        self.subscribers.notify(status)
        if status.terminal:
            self._wake_waiters()

    def apply(self, msg: ServerMessage) -> bool:
        return self._changed(self._tracker.apply(msg))

    def apply_preview(self, preview: PreviewImage) -> bool:
        return self._changed(self._tracker.apply_preview(preview))

    def apply_text(self, text: ProgressText) -> bool:
        return self._changed(self._tracker.apply_text(text))

    def apply_history(self, entry: HistoryEntry) -> bool:
        return self._changed(self._tracker.apply_history(entry))

    def set_queue_position(self, position: int | None) -> bool:
        return self._changed(self._tracker.set_queue_position(position))

    def set_node_errors(self, errors: tuple[NodeInputError, ...]) -> bool:
        return self._changed(self._tracker.set_node_errors(errors))

    def cancel(self) -> bool:
        return self._changed(self._tracker.cancel())

    def fail(self, message: str) -> bool:
        return self._changed(self._tracker.fail(message))

    def hold(self) -> None:
        self._held = True

    def release(self) -> None:
        """End the hold ``submit`` put on deliveries and deliver what changed meanwhile."""
        self._held = False
        self._deliver()

    def close(self, client_url: str) -> None:
        """The client was closed with this job unfinished: release every waiter with ``ClientClosed``.

        The job keeps its last status (it may still run on the server); subscribers get the error
        through ``on_error`` once.
        """
        if self.done or self.closed is not None:
            return
        self.closed = ClientClosed(
            f"the client for {client_url} was closed while prompt {self.prompt_id} was unfinished "
            f"(state {self.status.state.value}); it may still run on the server: follow it again with "
            f"client.track({self.prompt_id!r}) on an open client"
        )
        self.subscribers.fail(self.closed)
        self._wake_waiters()

    async def ended(self, timeout: float | None) -> bool:
        """Wait until the job has ended or the client closed; False when ``timeout`` passed first.

        A future of our own rather than ``asyncio.wait_for`` on an event: before Python 3.12 that wraps
        the wait in a task, and the end then reaches the waiter three event-loop turns after its socket
        message instead of one (on every job's critical path).
        """
        if self.done or self.closed is not None:
            return True
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[bool] = loop.create_future()
        self._waiters.append(waiter)
        timer = loop.call_later(timeout, _resolve, waiter, False) if timeout is not None else None
        try:
            return await waiter
        finally:
            if timer is not None:
                timer.cancel()
            self._waiters.remove(waiter)

    def _wake_waiters(self) -> None:
        for waiter in self._waiters:
            _resolve(waiter, True)


class Job:
    """One prompt submitted through an ``AsyncComfyClient``.

    ``status`` is a snapshot that any thread may read. Callbacks given to ``subscribe`` run on the
    client's event loop; keep them quick (widgets only set traits there).
    """

    def __init__(self, owner: JobOwner, feed: JobFeed, meta: Mapping[str, Any] | None = None) -> None:
        self._owner = owner
        self._feed = feed
        self.meta: dict[str, Any] = dict(meta or {})
        """The parameters that made this job (prompt, seed, sampler, ...), for galleries and records."""

    @property
    def prompt_id(self) -> str:
        return self._feed.prompt_id

    @property
    def status(self) -> JobStatus:
        return self._feed.status

    @property
    def prompt(self) -> dict[str, Any]:
        """The API graph this job runs (``{}`` for a prompt followed from elsewhere); do not modify it."""
        return self._feed.prompt

    @property
    def done(self) -> bool:
        return self._feed.done

    @property
    def client(self) -> JobOwner:
        return self._owner

    def subscribe(self, on_update: UpdateCallback, on_error: ErrorCallback | None = None) -> Callable[[], None]:
        """Call ``on_update(status)`` on every change; returns a function that stops it.

        A callback that raises is logged, or handed to ``on_error``; it never stops the client.
        """
        return self._feed.subscribers.add(on_update, on_error)

    async def wait(self, timeout: float | None = None, *, progress: bool | None = None) -> JobStatus:
        """Wait for a terminal state; raises ``ComfyTimeout``, or ``ClientClosed`` if the client is closed.

        ``progress``: draw a text progress line on stderr while waiting (default: when stderr is a
        terminal outside a notebook; ``True`` also shows the end of a job that had already finished).
        """
        if progress and self.done:
            follow_job(self, progress)()
        if not self.done:
            stop_drawing = follow_job(self, progress)
            try:
                if not await self._feed.ended(timeout):
                    raise ComfyTimeout(
                        f"prompt {self.prompt_id} did not finish within {timeout} s "
                        f"(state {self.status.state.value}, progress {self.status.progress:.0f}%)"
                    )
            finally:
                stop_drawing()
        closed = self._feed.closed
        if not self.done and closed is not None:
            raise ClientClosed(closed.message)
        return self.status

    async def result(self, timeout: float | None = None, *, progress: bool | None = None) -> list[Output]:
        """The outputs; raises ``ExecutionError``, ``JobCancelled`` or ``JobLost`` when there are none."""
        return raise_for_status(await self.wait(timeout, progress=progress))

    async def cancel(self) -> bool:
        """Remove the prompt from the queue, or interrupt it if it is running."""
        return await self._owner.cancel(self.prompt_id)

    def cancel_nowait(self) -> concurrent.futures.Future[bool]:
        """Ask for cancellation from any thread (a button handler) without waiting."""
        return self._owner.spawn(self.cancel())

    def updates(self) -> AsyncGenerator[JobStatus, None]:
        """Each new status until (and including) the terminal one; ``ClientClosed`` if the client closes."""
        return status_updates(self.subscribe, lambda: self.status, lambda: self._feed.closed)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        """Notebooks show a job as its live view (``comfy_nb.widgets.JobView``) when the widgets load."""
        return mimebundle(self, include, exclude)

    def __repr__(self) -> str:
        st = self.status
        return f"Job(prompt_id={self.prompt_id!r}, state={st.state.value!r}, progress={st.progress:.0f})"
