"""What the layers above the client program against: any job (``JobLike``) and either client (``ClientLike``).

Widgets and experiments accept a ``Job`` (async client), a ``BlockingJob`` (blocking client) or a
pool's ``PoolJob``; they only use the members below, so mypy checks that all three have them.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, Protocol, TypeVar

from ..protocol import NodeDef
from ._models import JobStatus, QueueState

__all__ = ["ClientLike", "ErrorCallback", "JobLike", "PromptBuilder", "UpdateCallback"]

T = TypeVar("T")

UpdateCallback = Callable[[JobStatus], Any]
ErrorCallback = Callable[[BaseException], Any]


class PromptBuilder(Protocol):
    """What ``submit_task`` needs from a task: an API graph plus the parameters to record."""

    def to_prompt(
        self, config: Any, node_defs: dict[str, NodeDef] | None
    ) -> tuple[dict[str, Any], dict[str, Any]]: ...


class ClientLike(Protocol):
    """The synchronous part that ``AsyncComfyClient`` and the blocking ``ComfyClient`` share.

    Widgets call everything else by name in the background (``widgets._bg.call``), awaiting a
    coroutine on the client's loop or running a blocking method on a thread, whichever it is.
    """

    @property
    def url(self) -> str: ...

    @property
    def config(self) -> Any: ...

    @property
    def jobs(self) -> Mapping[str, JobLike]:
        """The jobs this client follows, by prompt id."""
        ...

    def spawn(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Run ``coro`` on the client's event loop from any thread."""
        ...

    def on_queue_change(self, callback: Callable[[QueueState], Any]) -> Callable[[], None]:
        """Call ``callback(queue)`` whenever the server's queue changes; returns a function that stops it."""
        ...


class JobLike(Protocol):
    """The part of a job that is the same for ``Job``, ``BlockingJob`` and ``PoolJob``.

    ``wait``/``result``/``cancel`` are left out on purpose: they are coroutines on async jobs and block
    on ``BlockingJob``. ``cancel_nowait`` is the form that works from any thread for all of them.
    """

    @property
    def prompt_id(self) -> str: ...

    @property
    def status(self) -> JobStatus:
        """A snapshot any thread may read."""
        ...

    @property
    def done(self) -> bool: ...

    @property
    def client(self) -> ClientLike:
        """The client the job's outputs are downloaded from."""
        ...

    @property
    def meta(self) -> Mapping[str, Any]:
        """The parameters that made the job (prompt, seed, ...), for galleries and records."""
        ...

    def subscribe(self, on_update: UpdateCallback, on_error: ErrorCallback | None = None) -> Callable[[], None]:
        """Call ``on_update(status)`` on every change; returns a function that stops it."""
        ...

    def cancel_nowait(self) -> concurrent.futures.Future[bool]:
        """Ask for cancellation without waiting (a button handler)."""
        ...
