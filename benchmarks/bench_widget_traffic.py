"""Widget traffic: comm messages per second a ``JobView`` sends while its job emits 1,000 progress
events per second (goal <= 20), in real time (the view's own throttle and timer thread).

The job is a real ``Job``/``JobTracker`` fed ``progress`` messages at 1 kHz from a "loop" thread;
the comm is ipywidgets' DummyComm pattern with a counter on ``send``.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from ._common import record


class CountingComm:
    comm_id = "bench-comm"
    kernel = "Truthy"
    sends = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def open(self, *args: Any, **kwargs: Any) -> None:
        pass

    def on_msg(self, handler: Any) -> None:
        pass

    def send(self, data: Any = None, buffers: Any = None, **kwargs: Any) -> None:
        if isinstance(data, dict) and data.get("method") == "update":
            CountingComm.sends += 1

    def close(self, *args: Any, **kwargs: Any) -> None:
        pass


def run(quick: bool = False) -> list[dict[str, Any]]:
    import comm

    from comfy_nb import AsyncComfyClient
    from comfy_nb.client import Job, JobTracker
    from comfy_nb.protocol import ExecutingMessage, ExecutionStartMessage, ProgressMessage

    old = comm.create_comm
    comm.create_comm = lambda **kw: CountingComm()  # type: ignore[assignment]
    try:
        from comfy_nb.widgets import JobView

        seconds = 1.0 if quick else 3.0
        rate = 1000
        prompt = {"3": {"class_type": "KSampler", "inputs": {}}}
        job = Job(AsyncComfyClient("http://127.0.0.1:9"), JobTracker("bench-w", prompt=prompt), {"prompt": "a fox"})
        view = JobView(job)
        job._tracker.apply(ExecutionStartMessage(prompt_id="bench-w"))
        job._notify()
        total = int(seconds * rate)
        CountingComm.sends = 0
        done = threading.Event()

        def emit() -> None:  # the client's loop thread
            t0 = time.perf_counter()
            for i in range(1, total + 1):
                while time.perf_counter() < t0 + i / rate:
                    pass
                job._tracker.apply(ProgressMessage(value=i, max=total, prompt_id="bench-w", node="3"))
                job._notify()
            done.set()

        t0 = time.perf_counter()
        threading.Thread(target=emit, daemon=True).start()
        assert done.wait(seconds * 5)
        elapsed = time.perf_counter() - t0
        during = CountingComm.sends
        job._tracker.apply(ExecutingMessage(node=None, prompt_id="bench-w"))
        job._notify()
        deadline = time.monotonic() + 2
        while view.state != "completed" and time.monotonic() < deadline:
            threading.Event().wait(0.01)
        final_ok = view.state == "completed" and view.progress == 100.0
        view.close()
    finally:
        comm.create_comm = old
    return [record("widget_comm_messages_per_second", during / elapsed, "msgs/s", rate,
                   events_per_second=rate, seconds=round(elapsed, 2), goal="<= 20", final_state_delivered=final_ok,
                   baseline_is="progress events per second (what an unthrottled view would send)")]
