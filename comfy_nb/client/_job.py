"""``Job``: a handle on one submitted prompt, updated by the client as events arrive."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import AsyncGenerator, Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import ComfyTimeout, ExecutionError, JobCancelled, JobLost
from ._models import JobState, JobStatus, Output
from ._tracker import JobTracker

if TYPE_CHECKING:
    from ._async_client import AsyncComfyClient

__all__ = ["Job", "raise_for_status"]

log = logging.getLogger("comfy_nb")

UpdateCallback = Callable[[JobStatus], Any]
ErrorCallback = Callable[[BaseException], Any]


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
        self._subscribers: list[tuple[UpdateCallback, ErrorCallback | None]] = []
        self.meta: dict[str, Any] = dict(meta or {})
        """The parameters that made this job (prompt, seed, sampler, ...), for galleries and records."""
        self.foreign = False
        """True for a prompt submitted elsewhere and only followed by this client."""
        self.vanished = 0

    @property
    def prompt_id(self) -> str:
        return self._tracker.prompt_id

    @property
    def status(self) -> JobStatus:
        return self._tracker.status

    @property
    def prompt(self) -> dict[str, Any]:
        """The API graph this job runs (``{}`` for a prompt followed from elsewhere); do not modify it."""
        return self._tracker.prompt

    @property
    def done(self) -> bool:
        return self._tracker.status.terminal

    @property
    def client(self) -> AsyncComfyClient:
        return self._client

    def _notify(self) -> None:
        status = self._tracker.status
        for callback, on_error in tuple(self._subscribers):
            try:
                callback(status)
            except Exception as exc:  # a broken subscriber must not break the client
                if on_error is not None:
                    try:
                        on_error(exc)
                    except Exception:
                        log.exception("on_error callback of job %s raised", self.prompt_id)
                else:
                    log.exception("subscriber of job %s raised", self.prompt_id)
        if status.terminal:
            self._done.set()

    def subscribe(self, on_update: UpdateCallback, on_error: ErrorCallback | None = None) -> Callable[[], None]:
        """Call ``on_update(status)`` on every change; returns a function that stops it."""
        entry = (on_update, on_error)
        self._subscribers.append(entry)

        def unsubscribe() -> None:
            try:
                self._subscribers.remove(entry)
            except ValueError:
                pass

        return unsubscribe

    async def wait(self, timeout: float | None = None) -> JobStatus:
        """Wait for a terminal state; raises only ``ComfyTimeout``."""
        if not self.done:
            try:
                await asyncio.wait_for(self._done.wait(), timeout)
            except asyncio.TimeoutError:
                raise ComfyTimeout(
                    f"prompt {self.prompt_id} did not finish within {timeout} s "
                    f"(state {self.status.state.value}, progress {self.status.progress:.0f}%)"
                ) from None
        return self.status

    async def result(self, timeout: float | None = None) -> list[Output]:
        """The outputs; raises ``ExecutionError``, ``JobCancelled`` or ``JobLost`` when there are none."""
        return raise_for_status(await self.wait(timeout))

    async def cancel(self) -> bool:
        """Remove the prompt from the queue, or interrupt it if it is running."""
        return await self._client.cancel(self.prompt_id)

    def cancel_nowait(self) -> concurrent.futures.Future[bool]:
        """Ask for cancellation from any thread (a button handler) without waiting."""
        return self._client.spawn(self.cancel())

    async def updates(self) -> AsyncGenerator[JobStatus, None]:
        """Each new status until (and including) the terminal one."""
        queue: asyncio.Queue[JobStatus] = asyncio.Queue()
        unsubscribe = self.subscribe(queue.put_nowait)
        try:
            status = self.status
            yield status
            while not status.terminal:
                status = await queue.get()
                yield status
        finally:
            unsubscribe()

    def _ipython_display_(self) -> None:
        from IPython.display import display

        from ..widgets import JobView

        display(JobView(self))  # type: ignore[no-untyped-call]

    def __repr__(self) -> str:
        st = self.status
        return f"Job(prompt_id={self.prompt_id!r}, state={st.state.value!r}, progress={st.progress:.0f})"
