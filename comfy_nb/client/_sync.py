"""``ComfyClient``: the blocking facade, with the same method names as ``AsyncComfyClient``.

Everything runs on the library's event-loop thread (``_loop.run_sync``). In a notebook a blocking
call shows live progress (widgets update from that thread) but buttons answer only after it returns;
``submit`` returns at once, so prefer it there.
"""

from __future__ import annotations

import concurrent.futures
import os
import pathlib
from collections.abc import AsyncGenerator, Callable, Coroutine, Iterator, Mapping
from typing import Any, TypeVar

from .._display import mimebundle
from ..protocol import HistoryEntry, NodeDef
from ._async_client import AsyncComfyClient, PromptBuilder
from ._contracts import ErrorCallback, UpdateCallback
from ._job import Job
from ._kinds import ServerKind
from ._loop import run_sync
from ._models import JobStatus, Output, QueueState, ServerCapabilities

__all__ = ["BlockingJob", "ComfyClient"]

T = TypeVar("T")


class BlockingJob:
    """A ``Job`` whose ``wait``, ``result`` and ``cancel`` block instead of being awaited."""

    def __init__(self, job: Job, client: ComfyClient) -> None:
        self.async_job = job
        self.client = client

    @property
    def prompt_id(self) -> str:
        return self.async_job.prompt_id

    @property
    def status(self) -> JobStatus:
        return self.async_job.status

    @property
    def meta(self) -> dict[str, Any]:
        return self.async_job.meta

    @property
    def prompt(self) -> dict[str, Any]:
        return self.async_job.prompt

    @property
    def done(self) -> bool:
        return self.async_job.done

    def wait(self, timeout: float | None = None, *, progress: bool | None = None) -> JobStatus:
        return run_sync(self.async_job.wait(timeout, progress=progress))

    def result(self, timeout: float | None = None, *, progress: bool | None = None) -> list[Output]:
        return run_sync(self.async_job.result(timeout, progress=progress))

    def cancel(self) -> bool:
        return run_sync(self.async_job.cancel())

    def cancel_nowait(self) -> concurrent.futures.Future[bool]:
        return self.async_job.cancel_nowait()

    def subscribe(self, on_update: UpdateCallback, on_error: ErrorCallback | None = None) -> Callable[[], None]:
        return self.async_job.subscribe(on_update, on_error)

    def updates(self) -> Iterator[JobStatus]:
        """Each new status until (and including) the terminal one, blocking between them."""
        return _blocking_iter(self.async_job.updates())

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        """Notebooks show a job as its live view (``comfy_nb.widgets.JobView``) when the widgets load."""
        return mimebundle(self, include, exclude)

    def __repr__(self) -> str:
        return repr(self.async_job)


class ComfyClient:
    """Blocking ComfyUI client; takes the same arguments as ``AsyncComfyClient`` (``api_key=``, ``kind=``...)."""

    def __init__(self, url: str | None = None, **kwargs: Any) -> None:
        self.aclient = AsyncComfyClient(url, **kwargs)
        try:
            self._run(self.aclient.connect())
        except BaseException:
            self._run(self.aclient.aclose())  # the caller gets no object to close: release the pool
            raise

    @staticmethod
    def _run(coro: Coroutine[Any, Any, T]) -> T:
        return run_sync(coro)

    def _job(self, job: Job) -> BlockingJob:
        return BlockingJob(job, self)

    def __repr__(self) -> str:
        return repr(self.aclient).replace("AsyncComfyClient", "ComfyClient", 1)

    def __enter__(self) -> ComfyClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._run(self.aclient.aclose())

    @property
    def url(self) -> str:
        return self.aclient.url

    @property
    def auth(self) -> str | None:
        return self.aclient.auth

    @property
    def kind(self) -> ServerKind | None:
        return self.aclient.kind

    @property
    def timeout(self) -> float:
        return self.aclient.timeout

    @property
    def max_retries(self) -> int:
        return self.aclient.max_retries

    @property
    def poll_interval(self) -> float:
        return self.aclient.poll_interval

    @property
    def quiet_poll(self) -> float:
        return self.aclient.quiet_poll

    @property
    def outage_timeout(self) -> float:
        return self.aclient.outage_timeout

    @property
    def settle_time(self) -> float:
        return self.aclient.settle_time

    @property
    def ws_url(self) -> str:
        return self.aclient.ws_url

    @property
    def view_url(self) -> str:
        return self.aclient.view_url

    @property
    def max_download_size(self) -> int:
        return self.aclient.max_download_size

    @property
    def closing(self) -> bool:
        return self.aclient.closing

    @property
    def connected(self) -> bool:
        """True while the WebSocket is open."""
        return self.aclient.connected

    @property
    def client_id(self) -> str:
        return self.aclient.client_id

    @property
    def config(self) -> Any:
        return self.aclient.config

    @property
    def queue_remaining(self) -> int | None:
        return self.aclient.queue_remaining

    @property
    def jobs(self) -> dict[str, BlockingJob]:
        return {pid: self._job(job) for pid, job in self.aclient.jobs.items()}

    def spawn(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return self.aclient.spawn(coro)

    def on_queue_change(self, callback: Callable[[QueueState], Any]) -> Callable[[], None]:
        return self.aclient.on_queue_change(callback)

    def system_stats(self) -> dict[str, Any]:
        return self._run(self.aclient.system_stats())

    def object_info(self, refresh: bool = False) -> dict[str, Any]:
        return self._run(self.aclient.object_info(refresh))

    def node_defs(self, refresh: bool = False) -> dict[str, NodeDef]:
        return self._run(self.aclient.node_defs(refresh))

    def choices(self, class_type: str, input_name: str) -> list[Any]:
        return self._run(self.aclient.choices(class_type, input_name))

    def models(self, folder: str) -> list[str]:
        return self._run(self.aclient.models(folder))

    def capabilities(self, refresh: bool = False) -> ServerCapabilities:
        return self._run(self.aclient.capabilities(refresh))

    def submit(
        self,
        prompt: Mapping[str, Any] | Any,
        *,
        extra_data: Mapping[str, Any] | None = None,
        front: bool = False,
        number: float | None = None,
        partial_targets: list[str] | None = None,
        meta: Mapping[str, Any] | None = None,
        prompt_id: str | None = None,
        partner_nodes: bool = False,
    ) -> BlockingJob:
        return self._job(self._run(self.aclient.submit(
            prompt, extra_data=extra_data, front=front, number=number, partial_targets=partial_targets,
            meta=meta, prompt_id=prompt_id, partner_nodes=partner_nodes,
        )))

    def submit_task(self, task: PromptBuilder, **kwargs: Any) -> BlockingJob:
        return self._job(self._run(self.aclient.submit_task(task, **kwargs)))

    def run(self, prompt: Mapping[str, Any] | Any, *, timeout: float | None = None, **kwargs: Any) -> list[Output]:
        return self._run(self.aclient.run(prompt, timeout=timeout, **kwargs))

    def status(self, prompt_id: str) -> JobStatus:
        return self._run(self.aclient.status(prompt_id))

    def track(self, prompt_id: str) -> BlockingJob:
        return self._job(self._run(self.aclient.track(prompt_id)))

    def watch(self, prompt_id: str) -> Iterator[JobStatus]:
        return _blocking_iter(self.aclient.watch(prompt_id))

    def history(self, max_items: int | None = None, offset: int | None = None) -> dict[str, HistoryEntry]:
        return self._run(self.aclient.history(max_items, offset))

    def queue(self) -> QueueState:
        return self._run(self.aclient.queue())

    def cancel(self, prompt_id: str) -> bool:
        return self._run(self.aclient.cancel(prompt_id))

    def clear_queue(self, *, mine_only: bool = False) -> int:
        return self._run(self.aclient.clear_queue(mine_only=mine_only))

    def interrupt(self) -> None:
        self._run(self.aclient.interrupt())

    def upload_image(
        self,
        image: Any,
        *,
        name: str | None = None,
        subfolder: str = "",
        overwrite: bool = False,
        type: str = "input",
        mask_for: Output | str | None = None,
    ) -> str:
        return self._run(self.aclient.upload_image(
            image, name=name, subfolder=subfolder, overwrite=overwrite, type=type, mask_for=mask_for,
        ))

    def download(self, output: Output, *, preview: str | None = None) -> bytes:
        return self._run(self.aclient.download(output, preview=preview))

    def load_image(self, output: Output) -> Any:
        return self._run(self.aclient.load_image(output))

    def save_output(self, output: Output, directory: str | os.PathLike[str]) -> pathlib.Path:
        return self._run(self.aclient.save_output(output, directory))




def _blocking_iter(agen: AsyncGenerator[T, None]) -> Iterator[T]:
    """Iterate an async generator of the library's loop from blocking code."""
    try:
        while True:
            try:
                yield run_sync(agen.__anext__())
            except StopAsyncIteration:
                return
    finally:
        run_sync(agen.aclose())
