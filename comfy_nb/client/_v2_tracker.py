"""A job on a Comfy API v2 endpoint as the same ``JobStatus`` the native path makes. No I/O.

``V2Tracker`` is a ``JobTracker`` fed v2 events and polled jobs instead of WebSocket messages, so
the node bookkeeping (nodes to run, executed nodes, the node a person recognises, the one terminal
snapshot) is the native one. Mapping: ``progress`` snapshots give progress (``value`` x 100, capped
below 100 until the end, never backwards), the current node and its steps; a node is executed once
another is current or it committed an output; ``output`` events and polled outputs become
``Output``s carrying their asset id; ``preview`` the latest preview; terminal states come only from
the poller's *believed* job (``finish_v2``): succeeded -> completed, failed -> failed with the
server's error, canceled -> cancelled, expired -> failed with a reason and no exception type
(``result()`` raises ``JobLost``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..protocol import (
    V2Event,
    V2Job,
    V2LogEvent,
    V2Output,
    V2OutputEvent,
    V2PreviewEvent,
    V2Progress,
    V2ProgressEvent,
    V2StatusEvent,
)
from ._job import JobFeed
from ._models import ErrorInfo, JobState, Output, Preview
from ._tracker import JobTracker

__all__ = ["V2Feed", "V2Tracker", "output_from_v2"]

_RUNNING_CAP = 99.0
_KIND = {"image": "image", "video": "video", "audio": "audio", "text": "text", "latent": "latent", "file": "file"}


def output_from_v2(out: V2Output) -> Output:
    """A v2 output as the client's ``Output``: ``url`` is the link the server gave, ``asset_id`` its asset."""
    return Output(kind=_KIND.get(out.type, "file"), filename=out.name, node_id=out.node_id, url=out.url,
                  asset_id=out.id)


class V2Tracker(JobTracker):
    """Follows one v2 job; ``apply_v2`` and ``finish_v2`` return True when the status changed."""

    __slots__ = ("_assets",)

    def __init__(self, prompt_id: str, *, prompt: dict[str, Any] | None = None, view_url: str = "") -> None:
        super().__init__(prompt_id, prompt=prompt, view_url=view_url)
        self._assets: set[str] = set()

    def apply_v2(self, item: V2Event | V2Job) -> bool:
        """An event from the stream, or a polled job that is not terminal (terminal states are ignored
        here: only the poller's believed job ends a job, through ``finish_v2``)."""
        if isinstance(item, V2Job):
            changed = self._add_outputs(item.outputs)
            if item.terminal:
                return changed
            if item.status == "queued":
                return self.set_queue_position(item.queue_position) or changed
            progress = item.progress
            if progress is not None and (progress.value > 0 or progress.nodes_total or progress.current_node):
                return self._progress_v2(progress) or changed
            return self._running() or changed
        if isinstance(item, V2StatusEvent):
            if item.status == "queued":
                return self.set_queue_position(item.queue_position)
            return False if item.terminal else self._running()
        if isinstance(item, V2ProgressEvent):
            return self._progress_v2(item.progress)
        if isinstance(item, V2OutputEvent):
            return self._add_outputs((item.output,))
        if isinstance(item, V2PreviewEvent):
            if not item.data or self.status.terminal:
                return False
            self.status = replace(self.status, preview=Preview(item.data, item.content_type, item.node_id or None))
            return True
        if isinstance(item, V2LogEvent) and item.message and not self.status.terminal:
            self.status = replace(self.status, text=item.message)
            return True
        return False

    def finish_v2(self, job: V2Job, lost: str) -> bool:
        """End the job from the poller's believed terminal ``job``; ``lost`` says why an expired one is gone."""
        self._add_outputs(job.outputs)
        if job.status == "succeeded":
            return self._finish(JobState.COMPLETED)
        if job.status == "canceled":
            return self._finish(JobState.CANCELLED)
        if job.status == "failed":
            err = job.error
            if err is None:
                return self._finish(JobState.FAILED, error=ErrorInfo(
                    "the job failed and the endpoint gave no error", exception_type="unknown"))
            ref = self._node_ref(err.node_id) if err.node_id else None
            return self._finish(JobState.FAILED, error=ErrorInfo(
                message=err.message.strip() or err.code,
                node_id=err.node_id,
                class_type=err.class_type or (ref.class_type if ref else None),
                exception_type=err.code,
                traceback=tuple(err.traceback.splitlines(keepends=True)) if err.traceback else (),
            ))
        return self.fail(lost)  # expired: no exception type, so result() raises JobLost

    # -- helpers ---------------------------------------------------------------------------------

    def _running(self) -> bool:
        if self.status.state is not JobState.QUEUED:
            return False
        return self._update(progress=self.status.progress, eta=None, **self._start(None))

    def _progress_v2(self, progress: V2Progress) -> bool:
        changes: dict[str, Any] = {
            "progress": max(self.status.progress, min(_RUNNING_CAP, 100.0 * progress.value)),
            "eta": None,
            "step": progress.step,
            "steps": progress.steps,
        }
        node = progress.current_node
        current = self.status.current_node
        if node:
            if current is not None and current.id != node:
                self._mark_done(current.id)  # another node runs now: the previous one is done
            ref = self._node_ref(node)
            if ref.class_type is None and progress.current_node_class:
                ref = replace(ref, class_type=progress.current_node_class)
            changes["current_node"] = ref
        if not self._prompt and progress.nodes_total:  # a job followed from elsewhere: the server's counts
            changes["completed_nodes"], changes["total_nodes"] = progress.nodes_done, progress.nodes_total
        if self.status.state is JobState.QUEUED:
            changes.update(self._start(None))
        return self._update(**changes)

    def _add_outputs(self, outputs: tuple[V2Output, ...]) -> bool:
        fresh = [o for o in outputs if o.id not in self._assets]
        if not fresh or self.status.terminal:
            return False
        for out in fresh:
            self._assets.add(out.id)
            self._outputs.setdefault(out.node_id, []).append(output_from_v2(out))
            self._mark_done(out.node_id)
        return self._update(progress=self.status.progress, eta=None, outputs=self._outputs_tuple())


class V2Feed(JobFeed):
    """The writing end of a v2 ``Job``: changes from the stream and the poller, delivered as on the native path."""

    def __init__(self, tracker: V2Tracker) -> None:
        super().__init__(tracker)
        self._v2 = tracker

    def apply_v2(self, item: V2Event | V2Job) -> bool:
        return self._changed(self._v2.apply_v2(item))

    def finish_v2(self, job: V2Job, lost: str) -> bool:
        return self._changed(self._v2.finish_v2(job, lost))
