"""WebSocket event ingestion: events/s through ``AsyncComfyClient._on_frame`` into a registered job's
state machine, against ``json.loads`` alone on the same frames.

Frames: the received text messages of the captured ``ws_trace_progress_preview_metadata.json``
(SlowProgressImage with previews), re-keyed to one prompt id; the job is re-registered for each
pass so every pass runs the whole life of a job (queued -> progress -> executed -> completed).
"""

from __future__ import annotations

import json
import pathlib
import time
from typing import Any

from comfy_nb import AsyncComfyClient
from comfy_nb.client import Job, JobTracker

from ._common import record

TRACE = pathlib.Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "comfyui" / "ws_trace_progress_preview_metadata.json"
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


def run(quick: bool = False) -> list[dict[str, Any]]:
    texts, prompt = frames()
    passes = 300 if quick else 3000
    client = AsyncComfyClient("http://127.0.0.1:9", websocket=False)
    client._schedule_queue_refresh = lambda: None  # type: ignore[method-assign]  # no loop here: status messages must not start a task
    t0 = time.perf_counter()
    for _ in range(passes):
        for t in texts:
            json.loads(t)
    base = time.perf_counter() - t0
    t0 = time.perf_counter()
    completed = 0
    for _ in range(passes):
        job = Job(client, JobTracker(PID, prompt=prompt, view_url=client.view_url))
        client._active[PID] = job
        for t in texts:
            client._on_frame(t)
        completed += job.status.state.value == "completed"
        client._active.pop(PID, None)
    ours = time.perf_counter() - t0
    events = passes * len(texts)
    assert completed == passes, f"the trace must complete the job every pass ({completed}/{passes})"
    return [record("ws_ingest_events_per_second", events / ours, "events/s", events / base,
                   frames_per_pass=len(texts), passes=passes, baseline_is="json.loads alone",
                   us_per_event=round(1e6 * ours / events, 2))]
