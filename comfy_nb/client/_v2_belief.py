"""When a v2 job's terminal state is believed: what a session has seen of the job, the facts it must fit.

comfy-api-proxy 0.1.6 reports a job that finishes between its ``/history`` and ``/queue`` reads as
``expired`` and the next read says ``succeeded`` (issue 16); ``Seen.doubt`` says why a terminal
state cannot be believed yet, and ``V2Session`` re-reads it until it fits. No I/O.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from ..protocol import V2Event, V2Job, V2Output, V2OutputEvent, V2ProgressEvent, V2StatusEvent

__all__ = ["Seen"]


@dataclass
class Seen:
    """What the session has seen of one job: the facts a terminal state must fit."""

    statuses: set[str] = field(default_factory=set)
    outputs: dict[str, V2Output] = field(default_factory=dict)
    last_progress: float | None = None  # monotonic time of the last progress snapshot
    cancel_requested: bool = False

    def note_job(self, job: V2Job) -> None:
        if not job.terminal:
            self.statuses.add(job.status)
        for out in job.outputs:
            self.outputs.setdefault(out.id, out)

    def note_event(self, event: V2Event) -> None:
        if isinstance(event, V2ProgressEvent):
            self.last_progress = time.monotonic()
            self.statuses.add("running")
        elif isinstance(event, V2OutputEvent):
            self.outputs.setdefault(event.output.id, event.output)
        elif isinstance(event, V2StatusEvent) and not event.terminal:
            self.statuses.add(event.status)

    def doubt(self, job: V2Job, settle_time: float) -> tuple[str, bool] | None:
        """Why a terminal ``job`` cannot be believed yet (and whether one agreeing re-read settles it),
        or ``None`` when it fits what was seen."""
        if job.status == "expired":
            # A job this session cancelled while queued is dequeued and reads expired: one re-read.
            # Otherwise it is the proxy's history/queue gap until it has stayed so for settle_time.
            return ("expired after a cancel", True) if self.cancel_requested else ("expired", False)
        recent = self.last_progress is not None and time.monotonic() - self.last_progress < settle_time
        if recent and job.status != "succeeded":  # a success is never the proxy's false report
            return ("right after the last progress", True)
        if job.status == "succeeded" and not set(self.outputs) <= {o.id for o in job.outputs}:
            return ("succeeded without outputs the stream reported", False)
        if job.status == "failed" and job.error is None:
            return ("failed without an error", False)
        if job.status == "canceled" and not self.cancel_requested and "canceling" not in self.statuses:
            return ("canceled though nobody asked", False)
        return None
