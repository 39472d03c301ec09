"""``Job``: a handle on one submitted prompt, updated by the client as events arrive."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import AsyncGenerator, Callable, Mapping
from typing import TYPE_CHECKING, Any

from .._display import mimebundle
from .._observers import Observers
from ..errors import ClientClosed, ComfyTimeout, ExecutionError, JobCancelled, JobLost
from ._console import follow_job
from ._contracts import ErrorCallback, UpdateCallback
from ._models import JobState, JobStatus, Output
from ._tracker import JobTracker

if TYPE_CHECKING:
    from ._async_client import AsyncComfyClient

__all__ = ["Job", "raise_for_status"]


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


class Job:
    """One prompt submitted through an ``AsyncComfyClient``.

    ``status`` is a snapshot that any thread may read. Callbacks given to ``subscribe`` run on the
    client's event loop; keep them quick (widgets only set traits there).
    """

    def __init__(self, client: AsyncComfyClient, tracker: JobTracker, meta: Mapping[str, Any] | None = None) -> None:
        self._client = client
        self._tracker = tracker
        self._done = asyncio.Event()
        self._subscribers: Observers[JobStatus] = Observers(f"subscriber of job {tracker.prompt_id}")
        self.meta: dict[str, Any] = dict(meta or {})
        """The parameters that made this job (prompt, seed, sampler, ...), for galleries and records."""
        self.foreign = False
        """True for a prompt submitted elsewhere and only followed by this client."""
        self.vanished = 0
        self.heard = False
        """True once the socket brought an event for this prompt (so the server has it)."""
        self._held = False
        """True while ``submit`` still handles the server's answer: changes are delivered after it."""
        self._ended = False
        """True once the terminal status was delivered: nothing is delivered after it."""
        self._closed: ClientClosed | None = None

    @property
    def prompt_id(self) -> str:
        return self._tracker.prompt_id

    @property
    def status(self) -> JobStatus:
        return self._tracker.status

    @property
    def done(self) -> bool:
        return self._tracker.status.terminal

    @property
    def client(self) -> AsyncComfyClient:
        return self._client

    def _notify(self) -> None:
        """Deliver the current status to subscribers; the terminal one exactly once, then nothing."""
        if self._held or self._ended:
            return
        status = self._tracker.status
        if status.terminal:
            self._ended = True
        self._subscribers.notify(status)
        if status.terminal:
            self._done.set()

    def _hold(self) -> None:
        self._held = True

    def _release(self) -> None:
        """End the hold ``submit`` put on deliveries and deliver what changed meanwhile."""
        self._held = False
        self._notify()

    def _close(self, client_url: str) -> None:
        """The client was closed with this job unfinished: release every waiter with ``ClientClosed``.

        The job keeps its last status (it may still run on the server); subscribers get the error
        through ``on_error`` once.
        """
        if self.done or self._closed is not None:
            return
        self._closed = ClientClosed(
            f"the client for {client_url} was closed while prompt {self.prompt_id} was unfinished "
            f"(state {self.status.state.value}); it may still run on the server: follow it again with "
            f"client.track({self.prompt_id!r}) on an open client"
        )
        self._subscribers.fail(self._closed)
        self._done.set()

    def subscribe(self, on_update: UpdateCallback, on_error: ErrorCallback | None = None) -> Callable[[], None]:
        """Call ``on_update(status)`` on every change; returns a function that stops it.

        A callback that raises is logged, or handed to ``on_error``; it never stops the client.
        """
        return self._subscribers.add(on_update, on_error)

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
                await asyncio.wait_for(self._done.wait(), timeout)
            except asyncio.TimeoutError:
                raise ComfyTimeout(
                    f"prompt {self.prompt_id} did not finish within {timeout} s "
                    f"(state {self.status.state.value}, progress {self.status.progress:.0f}%)"
                ) from None
            finally:
                stop_drawing()
        if not self.done and self._closed is not None:
            raise ClientClosed(self._closed.message)
        return self.status

    async def result(self, timeout: float | None = None, *, progress: bool | None = None) -> list[Output]:
        """The outputs; raises ``ExecutionError``, ``JobCancelled`` or ``JobLost`` when there are none."""
        return raise_for_status(await self.wait(timeout, progress=progress))

    async def cancel(self) -> bool:
        """Remove the prompt from the queue, or interrupt it if it is running."""
        return await self._client.cancel(self.prompt_id)

    def cancel_nowait(self) -> concurrent.futures.Future[bool]:
        """Ask for cancellation from any thread (a button handler) without waiting."""
        return self._client.spawn(self.cancel())

    async def updates(self) -> AsyncGenerator[JobStatus, None]:
        """Each new status until (and including) the terminal one; ``ClientClosed`` if the client closes."""
        queue: asyncio.Queue[JobStatus | BaseException] = asyncio.Queue()
        unsubscribe = self.subscribe(queue.put_nowait, queue.put_nowait)
        try:
            status = self.status
            yield status
            while not status.terminal:
                if self._closed is not None and queue.empty():
                    raise ClientClosed(self._closed.message)
                item = await queue.get()
                if isinstance(item, ClientClosed):
                    raise ClientClosed(item.message)
                if isinstance(item, BaseException):
                    continue  # our own queue.put_nowait cannot raise; nothing else reports here
                status = item
                yield status
        finally:
            unsubscribe()

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        """Notebooks show a job as its live view (``comfy_nb.widgets.JobView``) when the widgets load."""
        return mimebundle(self, include, exclude)

    def __repr__(self) -> str:
        st = self.status
        return f"Job(prompt_id={self.prompt_id!r}, state={st.state.value!r}, progress={st.progress:.0f})"
