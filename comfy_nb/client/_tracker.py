"""The job state machine: protocol messages in, ``JobStatus`` snapshots out. No I/O.

Kept pure so every captured trace can be replayed through it in unit tests. The rules follow the
protocol reference: a prompt is over at ``executing {node: null}`` for its id (or at
``execution_error`` / ``execution_interrupted``); cached nodes count as done; ``executing`` is not
counted (cached nodes send none); progress never goes backwards and is 100 only when completed.
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import ValidationError

from ..errors import NodeInputError
from ..protocol import (
    ExecutedMessage,
    ExecutingMessage,
    ExecutionCachedMessage,
    ExecutionErrorMessage,
    ExecutionInterruptedMessage,
    ExecutionStartMessage,
    ExecutionSuccessMessage,
    HistoryEntry,
    PreviewImage,
    ProgressMessage,
    ProgressStateMessage,
    ProgressText,
    ServerMessage,
    epoch_ms,
    linked_nodes,
)
from ._models import ErrorInfo, JobState, JobStatus, NodeRef, Output, Preview, evolve_status, outputs_from_ui
from ._progress import ProgressModel, node_timings

__all__ = ["JobTracker", "nodes_to_run"]

_RUNNING_CAP = 99.0


def nodes_to_run(
    prompt: dict[str, Any], outputs: list[str] | None = None, dropped_outputs: set[str] | None = None
) -> set[str]:
    """The nodes a prompt will execute: ancestors of its outputs.

    When the output list is not known, the graph's sinks stand in for it (output nodes are sinks),
    minus outputs the server dropped as invalid.
    """
    if outputs is None:
        consumed = {src for node in prompt.values() if isinstance(node, dict) for src in linked_nodes(node.get("inputs"))}
        outputs = [nid for nid in prompt if nid not in consumed]
    wanted = [o for o in outputs if o not in (dropped_outputs or set())]
    seen: set[str] = set()
    stack = list(wanted)
    while stack:
        nid = stack.pop()
        if nid in seen or nid not in prompt:
            continue
        seen.add(nid)
        node = prompt[nid]
        if isinstance(node, dict):
            stack.extend(linked_nodes(node.get("inputs")))
    return seen


class JobTracker:
    """Follows one prompt. ``apply*`` methods return True when the status changed."""

    __slots__ = (
        "_cached",
        "_completed",
        "_done",
        "_fractions",
        "_interrupted",
        "_outputs",
        "_prompt",
        "_success",
        "_timing",
        "_to_run",
        "_view_url",
        "status",
    )

    def __init__(
        self,
        prompt_id: str,
        *,
        prompt: dict[str, Any] | None = None,
        outputs_to_execute: list[str] | None = None,
        node_errors: tuple[NodeInputError, ...] = (),
        view_url: str = "/view",
        queued_at: float | None = None,
        timing: ProgressModel | None = None,
    ) -> None:
        self._prompt: dict[str, Any] = prompt or {}
        dropped = {o for e in node_errors for o in e.dependent_outputs}
        self._to_run = nodes_to_run(self._prompt, outputs_to_execute, dropped) if self._prompt else set()
        self._done: set[str] = set()
        self._cached: frozenset[str] = frozenset()
        self._completed = 0
        """How many of the nodes to run are done (kept as a count: it is read on every event)."""
        self._fractions: dict[str, float] = {}
        self._timing = timing if timing is not None else ProgressModel(node_timings(view_url))
        """Weighs nodes by their likely cost for progress and ETA (node counts are the fallback)."""
        self._outputs: dict[str, list[Output]] = {}
        self._view_url = view_url
        self._success = False
        self._interrupted = False
        self.status = JobStatus(
            prompt_id=prompt_id,
            total_nodes=len(self._to_run),
            node_errors=node_errors,
            queued_at=queued_at if queued_at is not None else time.time(),
        )

    @property
    def prompt_id(self) -> str:
        return self.status.prompt_id

    @property
    def prompt(self) -> dict[str, Any]:
        """The API graph this prompt runs (empty when it is not known, e.g. a prompt followed from elsewhere)."""
        return self._prompt

    # -- helpers ---------------------------------------------------------------------------------

    def _node_ref(self, node_id: str) -> NodeRef:
        node = self._prompt.get(node_id)
        if not isinstance(node, dict):
            return NodeRef(node_id)
        meta = node.get("_meta")
        title = meta.get("title") if isinstance(meta, dict) else None
        return NodeRef(node_id, node.get("class_type"), title)

    def _mark_done(self, node_id: str | None) -> None:
        if node_id is None or node_id in self._done:
            return
        self._done.add(node_id)
        self._fractions.pop(node_id, None)
        self._timing.node_done(node_id, self._prompt)
        if node_id not in self._to_run and self._prompt and node_id in self._prompt:
            self._to_run.add(node_id)
        self._count_done()

    def _count_done(self) -> None:
        self._completed = len(self._done & self._to_run) if self._to_run else len(self._done)

    def _progress(self) -> tuple[float, float | None]:
        """Progress (monotone, capped below 100) and seconds left, if they can be estimated."""
        estimate = self._timing.estimate(self._prompt, self._to_run) if self._to_run else None
        if estimate is not None:
            value, eta = 100.0 * estimate[0], estimate[1]
        else:
            total = len(self._to_run) or max(len(self._done), 1)
            value, eta = 100.0 * (self._completed + sum(self._fractions.values())) / total, None
        return max(self.status.progress, min(_RUNNING_CAP, value)), eta

    def _update(self, **changes: Any) -> bool:
        if self.status.terminal:
            return False
        if "progress" not in changes:
            changes["progress"], changes["eta"] = self._progress()
        changes.setdefault("completed_nodes", self._completed)
        changes.setdefault("total_nodes", len(self._to_run))
        changes.update(self._node_sets())
        status = self.status
        if all(getattr(status, key) == value for key, value in changes.items()):
            return False
        self.status = evolve_status(status, **changes)
        return True

    def _node_sets(self) -> dict[str, Any]:
        """``executed_nodes`` / ``cached_nodes``, rebuilt only when a node finished since the last snapshot."""
        status = self.status
        if len(status.executed_nodes) + len(status.cached_nodes) == len(self._done | self._cached):
            return {}
        return {"executed_nodes": frozenset(self._done - self._cached), "cached_nodes": self._cached}

    def _outputs_tuple(self) -> tuple[Output, ...]:
        return tuple(o for outs in self._outputs.values() for o in outs)

    def _finish(self, state: JobState, *, timestamp: int | None = None, error: ErrorInfo | None = None) -> bool:
        if self.status.terminal:
            return False
        finished = timestamp / 1000.0 if timestamp else time.time()
        completed = state is JobState.COMPLETED
        if completed:
            self._done |= self._to_run
            self._count_done()
        self.status = evolve_status(
            self.status,
            state=state,
            queue_position=None,
            progress=100.0 if completed else self._progress()[0],
            eta=None,
            completed_nodes=self._completed,
            total_nodes=len(self._to_run),
            current_node=None if completed else self.status.current_node,
            **self._node_sets(),
            step=None if completed else self.status.step,
            steps=None if completed else self.status.steps,
            outputs=self._outputs_tuple(),
            error=error,
            finished_at=finished,
            started_at=self.status.started_at or (finished if completed else None),
        )
        return True

    def _start(self, timestamp: int | None) -> dict[str, Any]:
        changes: dict[str, Any] = {"state": JobState.RUNNING, "queue_position": None}
        self._timing.start()
        if self.status.started_at is None:
            changes["started_at"] = timestamp / 1000.0 if timestamp else time.time()
        return changes

    # -- inputs ----------------------------------------------------------------------------------

    def apply(self, msg: ServerMessage) -> bool:
        """Feed one parsed WebSocket message that belongs to this prompt."""
        if isinstance(msg, ProgressMessage):
            node = msg.node
            if node is None:
                return False
            if msg.max > 0:
                self._fractions = {node: min(1.0, msg.value / msg.max)}
            self._timing.node_step(node, msg.value, msg.max)
            changes = {"current_node": self._node_ref(node), "step": int(msg.value), "steps": int(msg.max)}
            if self.status.state is JobState.QUEUED:
                changes.update(self._start(None))
            return self._update(**changes)
        if isinstance(msg, ProgressStateMessage):
            running: dict[str, float] = {}
            for node_id, np in msg.nodes.items():
                if np.state == "finished":
                    self._mark_done(node_id)
                else:
                    self._timing.node_step(node_id, np.value, np.max)
                    if np.max > 0:
                        running[node_id] = min(1.0, np.value / np.max)
            self._fractions = running
            if self.status.state is JobState.QUEUED:
                return self._update(**self._start(None))
            return self._update()
        if isinstance(msg, ExecutingMessage):
            if msg.node is None:
                if self._interrupted:
                    return self._finish(JobState.CANCELLED)
                return self._finish(JobState.COMPLETED)
            current = self.status.current_node
            if current is not None and current.id != msg.node:
                self._mark_done(current.id)
            self._timing.node_started(msg.node)
            changes = {"current_node": self._node_ref(msg.node), "step": None, "steps": None}
            if self.status.state is JobState.QUEUED:
                changes.update(self._start(None))
            return self._update(**changes)
        if isinstance(msg, ExecutedMessage):
            self._outputs[msg.node] = outputs_from_ui(msg.node, msg.output, self._view_url)
            self._mark_done(msg.node)
            return self._update(outputs=self._outputs_tuple())
        if isinstance(msg, ExecutionCachedMessage):
            self._cached = self._cached | frozenset(msg.nodes)
            for node_id in msg.nodes:
                self._mark_done(node_id)
            changes = self._start(msg.timestamp) if self.status.state is JobState.QUEUED else {}
            return self._update(**changes)
        if isinstance(msg, ExecutionStartMessage):
            return self._update(**self._start(msg.timestamp))
        if isinstance(msg, ExecutionSuccessMessage):
            self._success = True
            return False
        if isinstance(msg, ExecutionErrorMessage):
            ref = self._node_ref(msg.node_id) if msg.node_id else None
            error = ErrorInfo(
                message=msg.exception_message.strip() or msg.exception_type or "execution failed",
                node_id=msg.node_id,
                class_type=msg.node_type or (ref.class_type if ref else None),
                exception_type=msg.exception_type or None,
                traceback=tuple(msg.traceback),
            )
            return self._finish(JobState.FAILED, timestamp=msg.timestamp, error=error)
        if isinstance(msg, ExecutionInterruptedMessage):
            self._interrupted = True
            return self._finish(JobState.CANCELLED, timestamp=msg.timestamp)
        return False

    def outputs_missing(self) -> bool:
        """True when no output arrived although the graph has sink nodes to run (they are the output
        nodes): at the end marker the outputs must then come from history (messages were reordered
        or lost)."""
        if self._outputs or not self._to_run:
            return False
        nodes = [self._prompt.get(nid) for nid in self._to_run]
        consumed = {src for node in nodes if isinstance(node, dict) for src in linked_nodes(node.get("inputs"))}
        return any(nid not in consumed for nid in self._to_run)

    def apply_preview(self, preview: PreviewImage) -> bool:
        if self.status.terminal:
            return False
        self.status = evolve_status(self.status, preview=Preview(preview.image, preview.mime, preview.node_id))
        return True

    def apply_text(self, text: ProgressText) -> bool:
        if self.status.terminal or text.text == self.status.text:
            return False
        self.status = evolve_status(self.status, text=text.text)
        return True

    def set_queue_position(self, position: int | None) -> bool:
        if self.status.state is not JobState.QUEUED or position == self.status.queue_position:
            return False
        self.status = evolve_status(self.status, queue_position=position)
        return True

    def apply_history(self, entry: HistoryEntry) -> bool:
        """Finish from a ``/history`` entry: the record of last resort after a lost socket.

        A job that has already ended is never touched again (a stale poll answer must not end it a
        second time). Fields of an unexpected type read as absent: nothing here raises.
        """
        if self.status.terminal:
            return False
        for node_id, ui in entry.outputs.items():
            self._outputs[node_id] = outputs_from_ui(node_id, ui, self._view_url)
        prompt = entry.prompt
        if not self._to_run and len(prompt) > 4 and isinstance(prompt[2], dict):
            self._prompt = prompt[2]
            targets = prompt[4] if isinstance(prompt[4], list) else []
            self._to_run = nodes_to_run(self._prompt, [str(x) for x in targets])
            self._count_done()
        start = entry.status.message("execution_start")
        started = epoch_ms(start.get("timestamp")) if start else None
        if started and self.status.started_at is None:
            self.status = evolve_status(self.status, started_at=started / 1000.0)
        err = entry.status.message("execution_error")
        if err is not None:
            try:
                msg = ExecutionErrorMessage.model_validate({**err, "prompt_id": self.prompt_id})
            except ValidationError:
                msg = ExecutionErrorMessage(prompt_id=self.prompt_id, exception_message=str(err)[:500])
            return self.apply(msg)
        interrupted = entry.status.message("execution_interrupted")
        if interrupted is not None:
            return self._finish(JobState.CANCELLED, timestamp=epoch_ms(interrupted.get("timestamp")))
        success = entry.status.message("execution_success")
        if entry.status.status_str == "success" or entry.status.completed:
            stamp = epoch_ms(success.get("timestamp")) if success else None
            return self._finish(JobState.COMPLETED, timestamp=stamp)
        return False

    def set_node_errors(self, errors: tuple[NodeInputError, ...]) -> bool:
        """Outputs the server dropped as invalid (a 200 with ``node_errors``): recorded, not run."""
        if self.status.terminal:  # ended before the POST answer was read: the record still needs them
            if errors == self.status.node_errors:
                return False
            self.status = evolve_status(self.status, node_errors=errors)
            return True
        dropped = {o for e in errors for o in e.dependent_outputs}
        if self._prompt:
            self._to_run = nodes_to_run(self._prompt, None, dropped)
            self._count_done()
        return self._update(node_errors=errors)

    def cancel(self) -> bool:
        """The prompt left the queue without running (deleted): cancelled."""
        return self._finish(JobState.CANCELLED)

    def fail(self, message: str) -> bool:
        """The prompt is gone for a reason the server never reported (e.g. it restarted)."""
        return self._finish(JobState.FAILED, error=ErrorInfo(message=message))
