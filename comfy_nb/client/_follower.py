"""The follower: every piece of follow-state of one client's jobs, and how each job is brought to its end.

How a job is followed (see the protocol reference, §14):

1. Outputs come from ``executed`` messages; a job ends at ``executing {node: null}`` (or at
   ``execution_error`` / ``execution_interrupted``). History is read only when the socket was lost
   while the job ran (a *gap*), so a normal job costs exactly one HTTP request (the submit).
2. When the socket reopens, every unfinished job is reconciled from ``/queue`` and ``/history``.
   With no socket at all, or a socket that has been silent for a while, the same reconciliation runs
   as polling, so no job can hang and no completion is lost. A prompt gone from both queue and
   history ends ``failed`` (the server restarted); so does every job of a server unreachable for
   ``outage_timeout``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ..errors import ComfyError, ProtocolError
from ..protocol import (
    ExecutingMessage,
    ExecutionStartMessage,
    FeatureFlagsMessage,
    HistoryEntry,
    PreviewImage,
    ProgressMessage,
    ProgressStateMessage,
    ProgressText,
    StatusMessage,
    UnknownMessage,
    decode_binary_frame,
    parse_message,
)
from ._job import Job, JobFeed
from ._models import JobState, QueueState
from ._retry import retry_delay

__all__ = ["FollowSettings", "Follower"]

log = logging.getLogger("comfy_nb")


@dataclass
class FollowSettings:
    """The client's polling settings (it may change them after construction)."""

    url: str
    poll_interval: float
    quiet_poll: float
    outage_timeout: float
    max_retries: int
    settle_time: float = 10.0
    """Seconds a Comfy API v2 job's doubtful end (a lone ``expired``) is read again before it is believed."""


@dataclass(eq=False)
class _Followed:
    """One unfinished job and what the follower knows about how it is heard."""

    job: Job
    feed: JobFeed
    foreign: bool = False
    """A prompt submitted elsewhere and only followed here: always polled."""
    heard: bool = False
    """The socket brought an event for it (so the server has it)."""
    gap: bool = False
    """Messages may have been missed (no socket for a while): its outputs must come from history."""
    vanished: int = 0
    """Reconciliations in a row that found it in neither queue nor history."""
    submitting: bool = False
    """Its POST (and retries) is in flight: the server may not have it yet, so it cannot vanish."""


class Follower:
    """Owns the unfinished jobs of one client and everything known about hearing them."""

    def __init__(
        self,
        settings: FollowSettings,
        *,
        read_queue: Callable[[], Awaitable[QueueState]],
        read_history: Callable[[str], Awaitable[HistoryEntry | None]],
        socket_open: Callable[[], bool],
        reconnect_socket: Callable[[], Awaitable[None]],
        background: Callable[[Awaitable[None]], None],
        on_status: Callable[[StatusMessage], None],
    ) -> None:
        self.settings = settings
        self._read_queue = read_queue
        self._read_history = read_history
        self._socket_open = socket_open
        self._reconnect_socket = reconnect_socket
        self._background = background
        self._on_status = on_status
        self._followed: dict[str, _Followed] = {}
        self._running_pid: str | None = None
        """The prompt the server runs now (unlabelled previews and replays belong to it)."""
        self._last_event = 0.0
        self._unreachable_since: float | None = None
        self.closing = False

    # ------------------------------------------------------------------ the registry

    @property
    def jobs(self) -> dict[str, Job]:
        return {pid: f.job for pid, f in self._followed.items()}

    def get(self, prompt_id: str) -> Job | None:
        followed = self._followed.get(prompt_id)
        return None if followed is None else followed.job

    def follow(self, job: Job, feed: JobFeed, *, foreign: bool = False, submitting: bool = False) -> None:
        """Start following a job; a submitted one before its POST (its events may come first)."""
        gap = not self._socket_open()  # no socket now: events may be missed, so the end is read from history
        self._followed[job.prompt_id] = _Followed(job, feed, foreign=foreign, gap=gap, submitting=submitting)
        if submitting:
            self._last_event = time.monotonic()  # a new job gives the socket time to speak before polling

    def submitted(self, prompt_id: str, accepted: bool) -> None:
        """The POST for a job is answered (or failed: then the job is forgotten)."""
        followed = self._followed.get(prompt_id)
        if followed is None:
            return
        followed.submitting = False
        if not accepted or followed.feed.done:
            del self._followed[prompt_id]

    def heard(self, prompt_id: str) -> bool:
        followed = self._followed.get(prompt_id)
        return followed is not None and followed.heard

    def forget(self, prompt_id: str) -> None:
        self._followed.pop(prompt_id, None)

    def cancelled(self, prompt_id: str) -> bool:
        """The prompt left the queue without running: its job ends cancelled (True if it did now)."""
        followed = self._followed.get(prompt_id)
        if followed is None or not followed.feed.cancel():
            return False
        self.forget(prompt_id)
        return True

    def queue_read(self, state: QueueState) -> None:
        for followed in list(self._followed.values()):
            followed.feed.set_queue_position(state.position(followed.job.prompt_id))

    def any_queued(self) -> bool:
        return any(f.feed.status.state is JobState.QUEUED for f in self._followed.values())

    def close(self, client_url: str) -> None:
        """Release every waiter of an unfinished job with ``ClientClosed`` and forget them all."""
        self.closing = True
        for followed in list(self._followed.values()):
            followed.feed.close(client_url)
        self._followed.clear()

    # ------------------------------------------------------------------ the socket

    def socket_opened(self, reconnected: bool) -> None:
        if reconnected or any(f.gap for f in self._followed.values()):
            self._background(self.reconcile("socket reconnected"))

    def socket_lost(self) -> None:
        for followed in self._followed.values():
            followed.gap = True

    def on_frame(self, frame: str | bytes) -> None:
        """Apply one socket frame; nothing in it may raise (a malformed one is logged and dropped)."""
        if isinstance(frame, bytes):
            self._on_binary(frame)
            return
        try:
            msg = parse_message(frame)
        except ProtocolError as exc:
            log.debug("comfy_nb: ignored a malformed message: %s", exc)
            return
        if isinstance(msg, StatusMessage):
            self._on_status(msg)
            return
        if isinstance(msg, (UnknownMessage, FeatureFlagsMessage)):  # the server's flags change nothing we do
            return
        pid = msg.prompt_id
        if isinstance(msg, (ExecutionStartMessage, ProgressMessage, ProgressStateMessage)):
            self._running_pid = pid  # unlabelled previews (binary event 1) belong to this prompt
        elif isinstance(msg, ExecutingMessage):
            if pid is None:  # the replay a reconnect gets: it is about the running prompt
                if msg.node is None:
                    return  # an end marker must name its prompt: this one cannot be attributed
                pid = self._running_pid
            elif msg.node is None and pid == self._running_pid:
                self._running_pid = None
        followed = self._followed.get(pid) if pid is not None else None
        if followed is None:
            return
        followed.heard = True
        self._last_event = time.monotonic()
        finished = isinstance(msg, ExecutingMessage) and msg.node is None
        if finished and (followed.gap or followed.feed.outputs_missing()):
            # Messages may have been missed (a lost socket), or the end marker came before any
            # `executed` (reordered): the outputs come from history, read once.
            self._background(self._finish_from_history(followed))
            return
        followed.feed.apply(msg)
        self._forget_if_done(followed)

    def _on_binary(self, frame: bytes) -> None:
        try:
            decoded = decode_binary_frame(frame)
        except ProtocolError as exc:
            log.debug("comfy_nb: ignored a malformed binary frame: %s", exc)
            return
        if isinstance(decoded, PreviewImage):
            followed = self._followed.get(decoded.prompt_id or self._running_pid or "")
            if followed is not None and followed.feed.apply_preview(decoded):
                self._last_event = time.monotonic()
        elif isinstance(decoded, ProgressText):
            followed = self._followed.get(self._running_pid or "")
            if followed is not None:
                followed.feed.apply_text(decoded)

    # ------------------------------------------------------------------ history

    def _forget_if_done(self, followed: _Followed) -> None:
        if followed.feed.done and self._followed.get(followed.job.prompt_id) is followed:
            del self._followed[followed.job.prompt_id]

    def _apply_history(self, followed: _Followed, entry: HistoryEntry) -> bool:
        """Bring a job up to date from its history entry (the record of last resort); True if it ended."""
        followed.feed.apply_history(entry)
        followed.gap = False
        self._forget_if_done(followed)
        return followed.feed.done

    async def _finish_from_history(self, followed: _Followed) -> None:
        """A job ended while messages may have been missed: its outputs come from history."""
        for attempt in range(self.settings.max_retries + 3):
            if followed.feed.done or self.closing:
                return
            try:
                entry = await self._read_history(followed.job.prompt_id)
            except ComfyError as exc:  # a transient fault (unreachable, malformed): try again
                log.debug("comfy_nb: history of %s: %s", followed.job.prompt_id, exc)
                entry = None
            if entry is not None and self._apply_history(followed, entry):
                return
            await asyncio.sleep(retry_delay(attempt))
        # Still nothing after retries: the supervisor's reconciliation takes over.

    # ------------------------------------------------------------------ reconciliation

    async def supervise(self) -> None:
        """Poll ``/queue`` and ``/history`` when the socket cannot be trusted to tell us everything."""
        while not self.closing:
            await asyncio.sleep(self.settings.poll_interval)
            unfinished = [f for f in self._followed.values() if not f.feed.done]
            if not unfinished:
                continue
            quiet = time.monotonic() - self._last_event
            try:
                if not self._socket_open():
                    await self.reconcile("no socket")
                elif any(f.foreign for f in unfinished) or quiet >= self.settings.quiet_poll:
                    await self.reconcile("socket quiet")
            except Exception:  # a bug must not end the one loop that makes sure jobs end
                log.warning("comfy_nb: reconciliation with %s failed; retrying", self.settings.url, exc_info=True)

    async def reconcile(self, reason: str) -> None:
        # Jobs whose submit is still in flight are skipped: the server may not have them yet.
        unfinished = [f for f in self._followed.values() if not f.feed.done and not f.submitting]
        if not unfinished:
            return
        url = self.settings.url
        try:
            queue = await self._read_queue()
        except ComfyError as exc:
            log.debug("comfy_nb: reconcile (%s) could not read the queue: %s", reason, exc)
            now = time.monotonic()
            self._unreachable_since = self._unreachable_since or now
            if now - self._unreachable_since >= self.settings.outage_timeout:
                for followed in unfinished:  # nothing hangs forever: a server gone this long lost them
                    pid = followed.job.prompt_id
                    followed.feed.fail(
                        f"lost contact with {url} for {now - self._unreachable_since:.0f} s while prompt "
                        f"{pid} was unfinished ({exc.message.split('. ')[0]}); submit it again once "
                        "the server is back"
                    )
                    self.forget(pid)
            return
        self._unreachable_since = None
        running = {e.prompt_id for e in queue.running}
        pending = {e.prompt_id for e in queue.pending}
        missed = False
        for followed in unfinished:
            feed, pid = followed.feed, followed.job.prompt_id
            if pid in running:
                followed.vanished = 0
                if feed.status.state is JobState.QUEUED:
                    feed.apply(ExecutionStartMessage(prompt_id=pid))
                continue
            if pid in pending:
                followed.vanished = 0
                feed.set_queue_position(queue.position(pid))
                continue
            unreadable = False
            try:
                entry = await self._read_history(pid)
            except ProtocolError:  # the server answered, but nothing usable
                entry, unreadable = None, True
            except ComfyError:
                continue
            if feed.done:  # it ended on the socket while we read: nothing to do
                continue
            if entry is not None or unreadable:
                missed = missed or (
                    entry is not None and self._socket_open() and not followed.gap and not followed.foreign
                )
                if entry is not None and self._apply_history(followed, entry):
                    continue
                # An entry is written when a prompt ends; one we cannot read an outcome from, seen
                # three times, is not a write in flight: the job must still end.
                why = (
                    f"prompt {pid} is in the history of {url}, but its entry has no outcome this client "
                    "can read (a proxy or a custom server changed it?); check the server's UI"
                )
                limit = 3
            else:
                why = (
                    f"prompt {pid} vanished from the queue and history of {url}: the server was probably "
                    "restarted (it keeps both in memory), or another client deleted it. Submit it again."
                )
                limit = 2  # seen missing twice: not a history write in flight
            followed.vanished += 1
            if followed.vanished >= limit:
                feed.fail(why)
                self.forget(pid)
        if missed and self._socket_open():
            # An open socket missed a whole prompt: it has gone deaf (e.g. a second connection with our
            # clientId came and went, which deregisters us server-side). A new connection fixes it.
            log.info("comfy_nb: the WebSocket to %s missed a whole prompt; reconnecting", url)
            await self._reconnect_socket()
