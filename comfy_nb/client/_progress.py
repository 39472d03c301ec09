"""Time-weighted progress and ETA for one job. No I/O.

Counting nodes equally misleads: in a sampler-dominated graph four cheap loaders finish at once and the
bar then sits still while the sampler does nearly all the work. Here each node to run is weighted by
the seconds it is likely to take:

* the running node by its own step rate (measured between its steps, so a model load before the first
  step does not skew it) and the steps it has left;
* a node not run yet by what its class cost in this kernel's finished jobs (per step for nodes that
  report steps, per run otherwise), else by this job's own measurements (the step rate of a node that
  already stepped, the typical cost of the nodes that already ran), else by a fixed guess.

The ETA is the sum of those remaining seconds, and progress is the share of time spent:
``elapsed / (elapsed + remaining)``, so a correct ETA makes the bar move linearly in time.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from typing import Any

__all__ = ["NodeTimings", "ProgressModel", "node_timings", "steps_hint"]

_PRIOR_STEP = 0.5
"""Seconds per step guessed before anything stepped (a mid-range GPU sampler step)."""
_PRIOR_NODE = 0.5
"""Seconds per node guessed before any node of the job ran."""
_LEARN_WEIGHT = 0.5
"""Weight of the newest run in a class's learned cost (a moving average that follows a changed server)."""


def steps_hint(node: Any) -> int | None:
    """The steps a node will report, read from its inputs (``steps``, less a KSamplerAdvanced's window)."""
    inputs = node.get("inputs") if isinstance(node, dict) else None
    if not isinstance(inputs, dict):
        return None
    steps = inputs.get("steps")
    if not isinstance(steps, int) or isinstance(steps, bool) or steps <= 0:
        return None
    start, end = inputs.get("start_at_step"), inputs.get("end_at_step")
    if isinstance(start, int) and isinstance(end, int):
        return max(1, min(end, steps) - max(0, start))
    return steps


class NodeTimings:
    """What each node class cost on one server, learned from the jobs this kernel saw finish.

    Thread-safe: trackers of several clients (each on its own loop) may share one.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._per_run: dict[str, float] = {}
        self._per_step: dict[str, float] = {}

    def learn(self, class_type: str, seconds: float, steps: int | None) -> None:
        """Record one executed (not cached) node: ``seconds`` it ran, ``steps`` it reported."""
        if seconds < 0:
            return
        with self._lock:
            table, value = (self._per_step, seconds / steps) if steps else (self._per_run, seconds)
            old = table.get(class_type)
            table[class_type] = value if old is None else old + _LEARN_WEIGHT * (value - old)

    def expected(self, class_type: str | None, steps: int | None) -> float | None:
        """Seconds a node of ``class_type`` is likely to take (``None`` when this class never ran here)."""
        if class_type is None:
            return None
        with self._lock:
            per_step = self._per_step.get(class_type)
            if per_step is not None and steps:
                return per_step * steps
            return self._per_run.get(class_type)

    def per_step(self, class_type: str | None) -> float | None:
        with self._lock:
            return self._per_step.get(class_type) if class_type is not None else None


_registry: dict[str, NodeTimings] = {}
_registry_lock = threading.Lock()


def node_timings(server: str) -> NodeTimings:
    """The learned timings of one server (keyed by its address), shared by every job of this kernel."""
    with _registry_lock:
        found = _registry.get(server)
        if found is None:
            found = _registry[server] = NodeTimings()
        return found


class _NodeRun:
    __slots__ = ("first_step", "first_step_at", "last_step_at", "started_at", "step", "steps")

    def __init__(self, started_at: float) -> None:
        self.started_at = started_at
        self.step = 0
        self.steps = 0
        self.first_step = 0
        self.first_step_at: float | None = None
        self.last_step_at: float | None = None


class ProgressModel:
    """Progress (0..1) and remaining seconds for one job, from node events and a clock.

    The tracker tells it when the job starts, when a node starts, steps and finishes; ``estimate``
    answers for the nodes still to run. ``clock`` is injectable so tests drive time exactly.
    """

    def __init__(self, timings: NodeTimings | None = None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._timings = timings if timings is not None else NodeTimings()
        self._clock = clock
        self.started_at: float | None = None
        self._runs: dict[str, _NodeRun] = {}
        self._finished: set[str] = set()
        self._node_costs: list[float] = []
        """Seconds taken by this job's finished nodes that reported no steps."""
        self._step_rates: dict[str | None, float] = {}
        """Seconds per step measured in this job, by class."""

    # -- events --------------------------------------------------------------------------------
    def start(self) -> None:
        if self.started_at is None:
            self.started_at = self._clock()

    def node_started(self, node_id: str) -> None:
        self.start()
        if node_id not in self._runs and node_id not in self._finished:
            self._runs[node_id] = _NodeRun(self._clock())

    def node_step(self, node_id: str, value: float, maximum: float) -> None:
        self.node_started(node_id)
        run = self._runs.get(node_id)
        if run is None or maximum <= 0 or int(value) == run.step:
            return
        now = self._clock()
        run.step, run.steps = int(value), int(maximum)
        if run.first_step_at is None:
            run.first_step, run.first_step_at = run.step, now
        run.last_step_at = now

    def node_done(self, node_id: str, prompt: Mapping[str, Any]) -> None:
        """A node finished; one that ran (not cached) teaches its class's cost."""
        if node_id in self._finished:
            return
        self._finished.add(node_id)
        run = self._runs.pop(node_id, None)
        if run is None:  # cached, or its start was never seen
            return
        seconds = self._clock() - run.started_at
        class_type = _class_of(prompt.get(node_id))
        rate = self._rate(run)
        if run.steps:
            if rate is not None:
                self._step_rates[class_type] = rate
        else:
            self._node_costs.append(seconds)
        if class_type is not None:
            self._timings.learn(class_type, seconds, run.steps or None)

    # -- estimate ------------------------------------------------------------------------------
    def estimate(self, prompt: Mapping[str, Any], to_run: AbstractSet[str]) -> tuple[float, float] | None:
        """``(fraction done, seconds left)`` now, or ``None`` before the job started."""
        if self.started_at is None:
            return None
        now = self._clock()
        remaining = 0.0
        for node_id in to_run:
            if node_id in self._finished:
                continue
            run = self._runs.get(node_id)
            remaining += self._expected(prompt.get(node_id)) if run is None else self._left(run, prompt.get(node_id), now)
        elapsed = max(0.0, now - self.started_at)
        total = elapsed + remaining
        return (elapsed / total if total > 0 else 0.0), remaining

    def _rate(self, run: _NodeRun) -> float | None:
        """Seconds per step of a running node, from its own steps."""
        if run.first_step_at is None or run.last_step_at is None:
            return None
        if run.step > run.first_step:
            return (run.last_step_at - run.first_step_at) / (run.step - run.first_step)
        return (run.first_step_at - run.started_at) / max(1, run.step)

    def _left(self, run: _NodeRun, node: Any, now: float) -> float:
        if run.steps and run.last_step_at is not None:
            rate = self._rate(run)
            learned = self._timings.per_step(_class_of(node))
            if learned is not None and run.step - run.first_step < 2:
                rate = learned  # one step tells little: trust what this class cost before
            left_steps = max(0, run.steps - run.step)
            return max(0.0, left_steps * (rate or 0.0) - (now - run.last_step_at)) if left_steps else 0.0
        return max(0.0, self._expected(node) - (now - run.started_at))

    def _expected(self, node: Any) -> float:
        class_type = _class_of(node)
        steps = steps_hint(node)
        learned = self._timings.expected(class_type, steps)
        if learned is not None:
            return learned
        if steps:
            rate = self._step_rates.get(class_type)
            if rate is None and self._step_rates:
                rate = statistics.median(self._step_rates.values())
            return steps * (rate if rate is not None else _PRIOR_STEP)
        return statistics.median(self._node_costs) if self._node_costs else _PRIOR_NODE


def _class_of(node: Any) -> str | None:
    class_type = node.get("class_type") if isinstance(node, dict) else None
    return class_type if isinstance(class_type, str) else None
