"""The server's queue as pushed to listeners: the socket's ``status`` messages say it changed, one
coalesced ``/queue`` read says how (queue positions of our jobs, ``on_queue_change`` callbacks)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from .._observers import Observers
from ..errors import ComfyError
from ..protocol import StatusMessage
from ._follower import Follower
from ._models import QueueState

__all__ = ["QueueWatch"]

log = logging.getLogger("comfy_nb")


class QueueWatch:
    """Reads ``/queue`` after status messages, only when someone needs it: bursts coalesce, at most a
    few reads a second, and a change that arrives during a read is never lost (it causes one more)."""

    def __init__(
        self, read_queue: Callable[[], Awaitable[QueueState]], follower: Follower, live: Callable[[], bool]
    ) -> None:
        self._read_queue = read_queue
        self._follower = follower
        self._live = live
        """False before the client connects and while it closes: no read is started then."""
        self._listeners: Observers[QueueState] = Observers("queue listener")
        self._task: asyncio.Task[None] | None = None
        self._dirty = False
        self.remaining: int | None = None
        """``queue_remaining`` of the last status message (None before the first)."""

    def add(self, callback: Callable[[QueueState], Any]) -> Callable[[], None]:
        return self._listeners.add(callback)

    def on_status(self, msg: StatusMessage) -> None:
        self.remaining = msg.queue_remaining
        self.schedule()

    def _wanted(self) -> bool:
        """Whether anyone needs ``/queue`` read: a listener, or a job of ours that may have prompts
        ahead of it (with at most one prompt on the server, a queued job of ours has none)."""
        if len(self._listeners):
            return True
        if self.remaining is not None and self.remaining <= 1:
            return False
        return self._follower.any_queued()

    def schedule(self) -> None:
        if not self._live() or not self._wanted():
            return
        self._dirty = True
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._refresh())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass

    async def _refresh(self) -> None:
        while self._dirty:
            self._dirty = False
            await asyncio.sleep(0.05)  # coalesce a burst of status broadcasts into one read
            if not self._wanted():  # the jobs started meanwhile: nothing to show
                return
            try:
                state = await self._read_queue()
            except ComfyError as exc:  # unreachable or malformed: the next status message retries
                log.debug("comfy_nb: queue refresh failed: %s", exc)
                return
            self._follower.queue_read(state)
            self._listeners.notify(state)
            await asyncio.sleep(0.2)  # rate limit: the next read starts no sooner
