"""The throttle: at most ~20 deliveries per second whatever the push rate, final state at once."""

from __future__ import annotations

# mypy: disable-error-code="unreachable, comparison-overlap"
# (mypy keeps a property narrowed across calls that change it: job.status after an await, th.pending after a push)
import heapq
import itertools
from collections.abc import Callable
from typing import Any

import pytest

from comfy_nb.client import JobState, NodeRef
from comfy_nb.widgets import JobView, Throttle, _job_view

from .conftest import FakeJob, state_updates


class FakeTime:
    """A manual clock plus a timer queue that fires as the clock advances (no sleeping)."""

    def __init__(self) -> None:
        self.now = 0.0
        self._timers: list[tuple[float, int, list[Any]]] = []
        self._seq = itertools.count()

    def clock(self) -> float:
        return self.now

    def timer(self, delay: float, fn: Callable[[], None]) -> Any:
        entry: list[Any] = [fn, False]
        heapq.heappush(self._timers, (self.now + delay, next(self._seq), entry))

        class Handle:
            def cancel(self_inner) -> None:
                entry[1] = True

        return Handle()

    def advance(self, dt: float) -> None:
        target = self.now + dt
        while self._timers and self._timers[0][0] <= target:
            due, _, (fn, cancelled) = heapq.heappop(self._timers)
            self.now = max(self.now, due)
            if not cancelled:
                fn()
        self.now = target


def test_burst_of_1000_per_second_is_coalesced_to_about_20() -> None:
    ft = FakeTime()
    got: list[int] = []
    th: Throttle[int] = Throttle(got.append, interval=0.05, clock=ft.clock, timer=ft.timer)
    for i in range(1000):  # 1,000 updates over one second
        th.push(i)
        ft.advance(0.001)
    ft.advance(0.1)
    assert 19 <= len(got) <= 21, len(got)
    assert got[-1] == 999, "the latest value is always delivered"
    assert got == sorted(got)
    gaps = [b - a for a, b in itertools.pairwise(got)]
    assert min(gaps) >= 1


def test_final_is_delivered_immediately_and_drops_pending() -> None:
    ft = FakeTime()
    got: list[str] = []
    th: Throttle[str] = Throttle(got.append, interval=0.05, clock=ft.clock, timer=ft.timer)
    th.push("a")
    th.push("b")  # coalesced, trailing
    assert got == ["a"] and th.pending
    th.push("done", final=True)
    assert got == ["a", "done"] and not th.pending
    ft.advance(1.0)
    assert got == ["a", "done"], "no stale trailing delivery after the final one"


def test_trailing_delivery_happens_without_further_pushes() -> None:
    ft = FakeTime()
    got: list[int] = []
    th: Throttle[int] = Throttle(got.append, interval=0.05, clock=ft.clock, timer=ft.timer)
    th.push(1)
    ft.advance(0.01)
    th.push(2)
    th.push(3)
    assert got == [1]
    ft.advance(0.039)
    assert got == [1]
    ft.advance(0.002)
    assert got == [1, 3]


def test_close_stops_delivery() -> None:
    ft = FakeTime()
    got: list[int] = []
    th: Throttle[int] = Throttle(got.append, interval=0.05, clock=ft.clock, timer=ft.timer)
    th.push(1)
    th.push(2)
    th.close()
    th.push(3, final=True)
    ft.advance(1)
    assert got == [1]


def test_default_timer_delivers_trailing_value_on_a_thread() -> None:
    import threading

    ev = threading.Event()
    got: list[int] = []

    def sink(v: int) -> None:
        got.append(v)
        if v == 2:
            ev.set()

    th: Throttle[int] = Throttle(sink, interval=0.02)
    th.push(1)
    th.push(2)
    assert ev.wait(5)
    assert got == [1, 2]


def test_jobview_comm_messages_for_1000_progress_events_per_second(
    fake_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Count the comm ``update`` messages a JobView sends for a 1 s burst of 1,000 progress events."""
    ft = FakeTime()

    def fake_throttle(sink: Any, *, interval: float) -> Throttle[Any]:
        return Throttle(sink, interval=interval, clock=ft.clock, timer=ft.timer)

    monkeypatch.setattr(_job_view, "Throttle", fake_throttle)
    job = FakeJob(fake_client)
    view = JobView(job)
    before = len(state_updates(view))
    node = NodeRef("3", "KSampler", "KSampler")
    job.emit(state=JobState.RUNNING, started_at=1000.0, queue_position=None, current_node=node, steps=1000,
             total_nodes=7, completed_nodes=2)
    for i in range(1, 1001):
        job.emit(step=i, progress=30 + 60 * i / 1000)
        ft.advance(0.001)
    job.emit(state=JobState.COMPLETED, progress=100.0, finished_at=1001.0, current_node=None, completed_nodes=7)
    updates = state_updates(view)[before:]
    assert len(updates) <= 22, f"{len(updates)} comm messages for 1,001 events in 1 s"
    assert len(updates) >= 16, "the view must still update live"
    assert view.state == "completed" and view.progress == 100.0
    assert updates[-1]["state"] == "completed"
