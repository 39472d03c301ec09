"""WebSocket event ingestion: events/s through the client's ``Follower.on_frame`` into a registered job's
state machine, against ``json.loads`` alone on the same frames.

Frames: the received text messages of the captured ``ws_trace_progress_preview_metadata.json``
(SlowProgressImage with previews), re-keyed to one prompt id; the job is re-registered for each
pass so every pass runs the whole life of a job (queued -> progress -> executed -> completed).
"""

from __future__ import annotations

import json
import os
import pathlib
import time
from collections.abc import Awaitable
from typing import Any

from comfy_nb import AsyncComfyClient
from comfy_nb.client import Job, JobTracker
from comfy_nb.client._follower import Follower, FollowSettings
from comfy_nb.client._job import JobFeed
from comfy_nb.client._models import QueueState
from comfy_nb.protocol import HistoryEntry

from ._common import record

FIXTURES = pathlib.Path(  # as in tests/captures.py: COMFY_NB_FIXTURES when shared/ is not beside the checkout
    os.environ.get("COMFY_NB_FIXTURES", pathlib.Path(__file__).resolve().parents[2] / "shared/fixtures/comfyui")
)
TRACE = FIXTURES / "ws_trace_progress_preview_metadata.json"
PID = "bench-ingest"


def frames() -> tuple[list[str], dict[str, Any]]:
    data = json.loads(TRACE.read_text())
    texts = []
    old = None
    for m in data["messages"]:
        if m.get("dir") == "recv" and m.get("kind") == "text":
            body = m["json"]
            pid = (body.get("data") or {}).get("prompt_id") if isinstance(body.get("data"), dict) else None
            old = old or pid
            texts.append(json.dumps(body))
    texts = [t.replace(old, PID) for t in texts] if old else texts
    prompt = {"1": {"class_type": "SlowProgressImage", "inputs": {}}, "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0]}}}
    return texts, prompt


def _connected_follower(url: str) -> Follower:
    """The follower as a client with an open socket has it; nothing here reads the server."""

    async def unused_queue() -> QueueState:
        raise AssertionError("the trace must not need the queue")

    async def unused_history(pid: str) -> HistoryEntry | None:
        raise AssertionError("the trace must not need history")

    async def unused_reconnect() -> None:
        raise AssertionError("the trace must not need a reconnect")

    def unused_background(coro: Awaitable[None]) -> None:
        raise AssertionError("the trace must not start background work")

    return Follower(
        FollowSettings(url, 1.0, 5.0, 120.0, 3), read_queue=unused_queue, read_history=unused_history,
        socket_open=lambda: True, reconnect_socket=unused_reconnect, background=unused_background,
        on_status=lambda msg: None,
    )


def run(quick: bool = False) -> list[dict[str, Any]]:
    texts, prompt = frames()
    passes = 300 if quick else 3000
    client = AsyncComfyClient("http://127.0.0.1:9", websocket=False)
    follower = _connected_follower(client.url)
    t0 = time.perf_counter()
    for _ in range(passes):
        for t in texts:
            json.loads(t)
    base = time.perf_counter() - t0
    t0 = time.perf_counter()
    completed = 0
    for _ in range(passes):
        feed = JobFeed(JobTracker(PID, prompt=prompt, view_url=client.view_url))
        job = Job(client, feed)
        follower.follow(job, feed)
        for t in texts:
            follower.on_frame(t)  # what the socket hands on with each frame
        completed += job.status.state.value == "completed"
        follower.forget(PID)
    ours = time.perf_counter() - t0
    events = passes * len(texts)
    assert completed == passes, f"the trace must complete the job every pass ({completed}/{passes})"
    return [record("ws_ingest_events_per_second", events / ours, "events/s", events / base,
                   frames_per_pass=len(texts), passes=passes, baseline_is="json.loads alone",
                   us_per_event=round(1e6 * ours / events, 2))]
