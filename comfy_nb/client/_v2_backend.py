"""``AsyncComfyClient(kind="v2")``: the client's methods on a Comfy API v2 endpoint (``comfy-api-proxy``).

The same ``Job`` / ``JobStatus`` / ``Output`` as on ComfyUI. A job's id is the client-made id, sent as
the ``Idempotency-Key`` (``V2Session.submit`` adopts the job when a retried submit's first answer
was lost); the endpoint's own job id is kept beside it and accepted too. Each unfinished job has one
follow task: ``V2Session.wait`` polls ``GET /api/v2/jobs/{id}`` as the truth, the event stream feeds
live progress, previews and outputs, and a terminal state is believed only once it settles (the
proxy's ``expired`` race). An endpoint unreachable (or answering 5xx) for ``outage_timeout`` ends the
job failed with the reason; three job bodies in a row that do not fit the contract end it too; a
404 (the endpoint forgot the job) ends it lost. Closing the client releases waiters with ``ClientClosed``.
Methods with no v2 equivalent raise ``NotAvailable``; ``queue()`` reads the jobs list.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

import httpx

from .._observers import Observers
from ..errors import (
    ClientClosed,
    ComfyConnectionError,
    ComfyError,
    NotAvailable,
    ProtocolError,
    ServerError,
)
from ..protocol import V2Event, V2Job, api_graph, refuse_non_finite
from ._follower import FollowSettings
from ._job import Job, JobOwner
from ._kinds import ServerKind
from ._models import JobStatus, Output, QueueEntry, QueueState
from ._retry import retry_delay
from ._submit import new_prompt_id
from ._transport import Transport
from ._v2 import V2Session
from ._v2_files import KIND, V2Files, with_asset_refs
from ._v2_tracker import V2Feed, V2Tracker

__all__ = ["V2Backend", "by_kind"]

log = logging.getLogger("comfy_nb")

T = TypeVar("T")
P = ParamSpec("P")
_MALFORMED_LIMIT = 3


@dataclass(eq=False)
class _Followed:
    """One unfinished job and how its following goes (an outage's start, malformed polls in a row)."""

    job: Job
    feed: V2Feed
    server_id: str
    unreachable_since: float | None = None
    malformed: int = 0
    task: asyncio.Task[None] | None = None

    def heard(self, event: V2Event) -> None:
        self.unreachable_since = None
        self.feed.apply_v2(event)

    def polled(self, job: V2Job) -> None:
        """A poll that fit the contract (only those reset the count of malformed ones: events do not)."""
        self.unreachable_since = None
        self.malformed = 0
        self.feed.apply_v2(job)


class V2Backend:
    """The ``AsyncComfyClient`` methods of the same names, for a Comfy API v2 endpoint."""

    def __init__(
        self,
        owner: JobOwner,
        url: str,
        settings: FollowSettings,
        transport: Transport,
        *,
        api_key: str | None,
        verify: Any,
        http_client: httpx.AsyncClient | None,
    ) -> None:
        self._owner = owner
        self.url = url
        self.settings = settings
        self._transport = transport
        self._api_key = api_key
        self._verify = verify
        self._http_client = http_client
        self._v2session: V2Session | None = None
        self._closed = False
        self._followed: dict[str, _Followed] = {}
        self._server_ids: dict[str, str] = {}
        """Client-made id -> the endpoint's job id, for every job submitted here."""
        self._labelled: dict[str, str] = {}
        """Client-made ids of other comfy_nb clients' jobs (found by their label) -> the endpoint's job id."""
        self._queue_listeners: Observers[QueueState] = Observers("queue listener")
        self._queue_read: asyncio.Task[None] | None = None
        self._queue_dirty = False
        self.files = V2Files(transport, self._session)

    @property
    def settle_time(self) -> float:
        return self.settings.settle_time

    @settle_time.setter
    def settle_time(self, value: float) -> None:
        self.settings.settle_time = value
        if self._v2session is not None:
            self._v2session.settle_time = value

    # ------------------------------------------------------------------ lifecycle

    def _session(self) -> V2Session:
        if self._closed or self._v2session is None:
            raise ClientClosed(f"the client for {self.url} is closed; call `await client.connect()` to reopen it")
        return self._v2session

    async def connect(self) -> None:
        """Check the endpoint answers (and takes the key) with one jobs-list read."""
        if self._v2session is not None and not self._closed:
            return
        s = self.settings
        # without an injected client the session makes (and closes) its own on the one HTTP stack,
        # without the native path's headers: it sends the key itself, to the endpoint's origin only
        session = V2Session(self.url, api_key=self._api_key, timeout=self._transport.timeout,
                            max_retries=s.max_retries, poll_interval=s.poll_interval, settle_time=self.settle_time,
                            http_client=self._http_client, verify=self._verify)
        try:
            await session.jobs(limit=1)
        except BaseException:
            await session.aclose()
            raise
        self._v2session, self._closed = session, False

    async def aclose(self) -> None:
        self._closed = True
        followed = list(self._followed.values())
        self._followed.clear()
        for f in followed:
            f.feed.close(self.url)
            if f.task is not None:
                f.task.cancel()
        tasks = [f.task for f in followed if f.task is not None]
        if self._queue_read is not None:
            self._queue_read.cancel()
            tasks.append(self._queue_read)
        await asyncio.gather(*tasks, return_exceptions=True)
        session, self._v2session = self._v2session, None
        if session is not None:
            await session.aclose()

    @property
    def connected(self) -> bool:
        return self._v2session is not None and not self._closed

    @property
    def keyed(self) -> bool:
        """Whether an API key is sent (never its value)."""
        return bool(self._api_key)

    @property
    def jobs(self) -> dict[str, Job]:
        return {cid: f.job for cid, f in self._followed.items()}

    # ------------------------------------------------------------------ jobs

    async def submit(
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
    ) -> Job:
        graph = api_graph(prompt)
        refuse_non_finite(graph)
        for what, given in (("front", front), ("number", number is not None), ("partial_targets", partial_targets)):
            if given:
                raise NotAvailable(f"submit({what}=...)", KIND, "the endpoint orders and runs whole jobs itself")
        if partner_nodes:  # the key here is the endpoint's own, not a Comfy account's
            raise NotAvailable("submit(partner_nodes=True)", KIND,
                               "pass extra_data={'api_key_comfy_org': <your Comfy API key>} instead")
        session = self._session()
        cid = new_prompt_id(prompt_id, taken=prompt_id in self._server_ids)
        v2job = await session.submit(with_asset_refs(graph), client_id=cid, extra_data=extra_data)
        self._server_ids[cid] = v2job.id
        feed = V2Feed(V2Tracker(cid, prompt=graph))
        job = Job(self._owner, feed, meta)
        self._follow(job, feed, v2job)
        return job

    def _follow(self, job: Job, feed: V2Feed, v2job: V2Job) -> None:
        feed.apply_v2(v2job)
        followed = _Followed(job, feed, v2job.id)
        self._followed[job.prompt_id] = followed
        followed.task = asyncio.ensure_future(self._run(followed))
        self._queue_changed()

    async def _run(self, f: _Followed) -> None:
        """Follow one job until it ends (``V2Session.wait`` settles terminal states); never raises."""
        cid, attempt = f.job.prompt_id, 0
        try:
            while not f.feed.done:
                try:
                    session = self._session()
                    session.poll_interval = self.settings.poll_interval
                    final = await session.wait(f.server_id, on_event=f.heard, on_job=f.polled)
                except ProtocolError as exc:
                    f.malformed += 1
                    if f.malformed >= _MALFORMED_LIMIT:
                        f.feed.fail(f"{self.url} answered job {cid} {f.malformed} times with a body that does not "
                                    f"fit the v2 contract ({exc.message}); check the endpoint (a proxy in between?)")
                        return
                    reason = exc.message
                except ServerError as exc:
                    if exc.status_code == 404:
                        f.feed.fail(f"job {cid} (v2 job {f.server_id}) is unknown to {self.url}: it was restarted "
                                    "without its state, or the job expired. Submit it again.")
                        return
                    if exc.status_code is not None and exc.status_code < 500 and exc.status_code != 429:
                        f.feed.fail(f"following job {cid} at {self.url} failed: {exc.message}")
                        return
                    reason = exc.message
                except ClientClosed:
                    return
                except ComfyConnectionError as exc:
                    reason = exc.message
                else:
                    f.feed.finish_v2(final, f"job {cid} (v2 job {f.server_id}) stayed expired at {self.url} for "
                                     f"{self.settle_time:g} s of re-reads: the endpoint no longer has it (its "
                                     "outputs expired or it restarted). Submit it again.")
                    return
                now = time.monotonic()
                f.unreachable_since = f.unreachable_since or now
                if now - f.unreachable_since >= self.settings.outage_timeout:
                    f.feed.fail(f"lost contact with {self.url} for {now - f.unreachable_since:.0f} s while job {cid} "
                                f"was unfinished ({reason.split('. ')[0]}); it may still run there: follow it with "
                                f"client.track({cid!r}) once the endpoint is back")
                    return
                log.debug("comfy_nb: following %s at %s: %s", cid, self.url, reason)
                await asyncio.sleep(retry_delay(attempt))
                attempt += 1
        except Exception as exc:  # a bug must not leave the job's waiters waiting forever
            log.warning("comfy_nb: following %s at %s broke", cid, self.url, exc_info=True)
            f.feed.fail(f"following job {cid} at {self.url} broke ({type(exc).__name__}: {exc}); "
                        f"client.track({cid!r}) follows it again")
        finally:
            if self._followed.get(cid) is f and f.feed.done:
                del self._followed[cid]
            self._queue_changed()

    async def _read(self, prompt_id: str) -> V2Job:
        """One read of a job by any id this client may be given: a client-made id of its own, the
        endpoint's job id, or the id another comfy_nb client submitted it with (found by its label)."""
        session = self._session()
        known = self._server_ids.get(prompt_id) or self._labelled.get(prompt_id)
        try:
            return await session.get(known or prompt_id)
        except ServerError as exc:
            if known or exc.status_code != 404:
                raise
            found = await session.find(prompt_id)
            if found is None:
                raise
        self._labelled[prompt_id] = found.id
        return found

    async def _snapshot(self, prompt_id: str, v2job: V2Job) -> V2Tracker:
        """A tracker of ``v2job``; a terminal state is settled first, as for a followed job."""
        tracker = V2Tracker(prompt_id)
        if v2job.terminal:
            v2job = await self._session().settle(v2job)
        if v2job.terminal:
            tracker.finish_v2(v2job, f"job {prompt_id} is expired at {self.url}: the endpoint no longer has it")
        else:
            tracker.apply_v2(v2job)
        return tracker

    async def status(self, prompt_id: str) -> JobStatus:
        """A followed job's status, else one read (a terminal state settled as a followed one would be)."""
        followed = self._followed.get(prompt_id)
        if followed is not None:
            return followed.job.status
        return (await self._snapshot(prompt_id, await self._read(prompt_id))).status

    async def track(self, prompt_id: str) -> Job:
        """A ``Job`` for a job submitted elsewhere (or by a closed client: its client-made id works)."""
        followed = self._followed.get(prompt_id)
        if followed is not None:
            return followed.job
        v2job = await self._read(prompt_id)
        feed = V2Feed(await self._snapshot(prompt_id, v2job))
        job = Job(self._owner, feed)
        if not feed.done:
            self._follow(job, feed, v2job)
        return job

    async def cancel(self, prompt_id: str) -> bool:
        """Cancel one job (``POST .../cancel``); True when this call cancelled it (False when it had
        ended already, was cancelled before, or is unknown)."""
        try:
            v2job = await self._read(prompt_id)
            if v2job.terminal:
                return False
            answer = await self._session().cancel(v2job.id)
        except ServerError as exc:
            if exc.status_code == 404:
                return False
            raise
        return answer.status not in ("succeeded", "failed")

    # ------------------------------------------------------------------ the queue, as the jobs list

    async def queue(self) -> QueueState:
        """The endpoint's unfinished jobs (``GET /api/v2/jobs?status=queued,running,canceling``); pending
        in queue-position order. Jobs of this client carry their client-made id and ``mine``."""
        listed = await self._session().jobs(("queued", "running", "canceling"))
        ours = {sid: cid for cid, sid in self._server_ids.items()}

        def entry(job: V2Job) -> QueueEntry:
            return QueueEntry(ours.get(job.id, job.id), float(job.queue_position or 0), mine=job.id in ours)

        pending = sorted((j for j in listed if j.status == "queued"), key=lambda j: j.queue_position or 0)
        return QueueState(tuple(entry(j) for j in listed if j.status != "queued"), tuple(map(entry, pending)))

    async def clear_queue(self, *, mine_only: bool = False) -> int:
        state = await self.queue()
        return sum([await self.cancel(e.prompt_id) for e in state.pending if e.mine or not mine_only])

    def on_queue_change(self, callback: Callable[[QueueState], Any]) -> Callable[[], None]:
        """``callback(queue)`` after each submit and each change of state of a job of this client."""
        return self._queue_listeners.add(callback)

    def _queue_changed(self) -> None:
        if not len(self._queue_listeners) or self._closed:
            return
        self._queue_dirty = True  # a change during a read causes one more read
        if self._queue_read is None or self._queue_read.done():
            self._queue_read = asyncio.ensure_future(self._notify_queue())

    async def _notify_queue(self) -> None:
        while self._queue_dirty and not self._closed:
            self._queue_dirty = False
            try:
                self._queue_listeners.notify(await self.queue())
            except ComfyError as exc:
                log.debug("comfy_nb: queue refresh at %s failed: %s", self.url, exc)
                return

    # ------------------------------------------------------------------ no equivalent

    @staticmethod
    def _missing(method: str, hint: str) -> NotAvailable:
        return NotAvailable(method, KIND, hint)

    async def system_stats(self) -> dict[str, Any]:
        raise self._missing("system_stats", "the v2 contract has no server statistics")

    async def object_info(self, refresh: bool = False) -> dict[str, Any]:
        raise self._missing("object_info", "the v2 contract has no node definitions; the endpoint validates on submit")

    async def node_defs(self, refresh: bool = False) -> Any:
        raise self._missing("node_defs", "the v2 contract has no node definitions; the endpoint validates on submit")

    async def choices(self, class_type: str, input_name: str) -> list[Any]:
        raise self._missing("choices", "the v2 contract has no node definitions; look the values up in its UI")

    async def models(self, folder: str) -> list[str]:
        raise self._missing("models", "the v2 contract lists no model folders; look them up in the endpoint's UI")

    async def capabilities(self, refresh: bool = False) -> Any:
        raise self._missing("capabilities", "the v2 contract reports no version or devices")

    async def history(self, max_items: int | None = None, offset: int | None = None) -> Any:
        raise self._missing("history", "use client.status(prompt_id) or client.track(prompt_id) for one job")

    async def interrupt(self) -> None:
        raise self._missing("interrupt", "cancel one job with client.cancel(prompt_id)")

    # ------------------------------------------------------------------ files

    async def upload_image(self, image: Any, **kwargs: Any) -> str:
        self._session()
        return await self.files.upload_image(image, **kwargs)

    async def download(self, output: Output, *, preview: str | None = None) -> bytes:
        return await self.files.download(output, preview=preview)

    async def load_image(self, output: Output) -> Any:
        return await self.files.load_image(output)

    async def save_output(self, output: Output, directory: Any) -> Any:
        return await self.files.save_output(output, directory)


class _Routed(Protocol):
    _v2: V2Backend | None

    @property
    def kind(self) -> ServerKind | None: ...

    async def _ensure_open(self) -> None: ...


C = TypeVar("C", bound=_Routed)


def by_kind(
    method: Callable[Concatenate[C, P], Coroutine[Any, Any, T]],
) -> Callable[Concatenate[C, P], Coroutine[Any, Any, T]]:
    """The one branch on the server's kind, for a client method: on a Comfy API v2 endpoint the call goes
    (connecting on first use, as on ComfyUI) to ``V2Backend``'s method of the same name (checked here,
    when the client class is made)."""
    name = method.__name__
    if not callable(getattr(V2Backend, name, None)):
        raise TypeError(f"V2Backend has no {name}()")

    @functools.wraps(method)
    async def call(self: C, /, *args: P.args, **kwargs: P.kwargs) -> T:
        if self.kind is None:  # kind="auto" before the first connect: what it finds decides the path
            await self._ensure_open()
        if self._v2 is not None:
            await self._ensure_open()
            result: T = await getattr(self._v2, name)(*args, **kwargs)
            return result
        return await method(self, *args, **kwargs)

    return call
