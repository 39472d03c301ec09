"""Replay every captured real-server trace through the client's own message routing and job state
machine (``AsyncComfyClient._on_frame`` + ``JobTracker``), and check the final ``JobStatus`` field by
field. Binary frames in the captures keep only their headers; they are rebuilt with the protocol's
encoders around placeholder image bytes."""

from __future__ import annotations

# mypy: disable-error-code="unreachable, comparison-overlap"
# (mypy keeps a property narrowed across calls that change it: job.status after an await, th.pending after a push)
import json
from typing import Any

import pytest
from captures import FIXTURES

from comfy_nb.client import AsyncComfyClient, Job, JobState, JobStatus, JobTracker
from comfy_nb.client._job import raise_for_status
from comfy_nb.errors import ExecutionError, JobCancelled, JobLost, PromptValidationError
from comfy_nb.protocol import (
    HistoryEntry,
    QueueSnapshot,
    encode_preview_image,
    encode_preview_with_metadata,
    encode_progress_text,
    prompt_validation_error,
)

JPEG = b"\xff\xd8\xff\xe0fakejpeg"
PNG = b"\x89PNG\r\n\x1a\nfakepng"


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def frame_of(message: dict[str, Any]) -> str | bytes | None:
    """The wire frame a captured message stood for (None for connection events and sent frames)."""
    if message.get("dir") != "recv":
        return None
    if message["kind"] == "text":
        return json.dumps(message["json"])
    event = message["event_type"]
    if event == 1:
        mime = "image/png" if message.get("image_format", 1) == 2 or message["first8_hex"].endswith("2") else "image/jpeg"
        return encode_preview_image(PNG if mime == "image/png" else JPEG, mime)
    if event == 3:
        return encode_progress_text(message["node_id"], message["text"])
    if event == 4:
        meta = message["metadata"]
        return encode_preview_with_metadata(
            JPEG, mime=meta["image_type"], prompt_id=meta["prompt_id"], node_id=meta["node_id"]
        )
    raise AssertionError(f"unexpected binary event {event}")


def prompt_of(trace: dict[str, Any]) -> dict[str, Any]:
    for h in trace.get("http", []):
        if h.get("method") == "POST" and h.get("path") == "/prompt":
            return dict(h["request_json"]["prompt"])
    workflow = trace["_meta"].get("workflow")
    if isinstance(workflow, str):
        return dict(load(workflow))
    return dict(workflow or {})


def history_of(trace: dict[str, Any], pid: str) -> HistoryEntry | None:
    for h in trace.get("http", []):
        if h.get("path") == f"/history/{pid}" and h.get("response_json"):
            return HistoryEntry.model_validate(h["response_json"][pid])
    return None


class Replay:
    """An unconnected client with one registered job, fed captured frames."""

    def __init__(self, trace: dict[str, Any], pid: str | None = None) -> None:
        self.trace = trace
        self.pid = pid or trace["_meta"]["prompt_id"]
        self.client = AsyncComfyClient("http://127.0.0.1:8188")
        tracker = JobTracker(self.pid, prompt=prompt_of(trace), view_url=self.client.view_url)
        self.job = Job(self.client, tracker)
        self.client._active[self.pid] = self.job
        self.updates: list[JobStatus] = []
        self.job.subscribe(self.updates.append)

    def feed(self, messages: list[dict[str, Any]]) -> None:
        for message in messages:
            frame = frame_of(message)
            if frame is not None:
                self.client._on_frame(frame)

    @property
    def status(self) -> JobStatus:
        return self.job.status


def assert_monotone(updates: list[JobStatus]) -> None:
    values = [u.progress for u in updates]
    assert values == sorted(values), values
    assert all(u.progress < 100 for u in updates if u.state is not JobState.COMPLETED)


def test_plain_run_completes_with_outputs_from_executed_messages() -> None:
    trace = load("ws_trace_modelfree.json")
    r = Replay(trace)
    r.feed(trace["messages"])
    st = r.status
    assert st.state is JobState.COMPLETED
    assert st.progress == 100
    assert st.total_nodes == 6 and st.completed_nodes == 6
    assert st.queue_position is None and st.current_node is None and st.error is None
    history = history_of(trace, r.pid)
    assert history is not None
    expected = {(n, i["filename"], i["type"]) for n, ui in history.outputs.items() for i in ui["images"]}
    assert {(o.node_id, o.filename, o.folder_type) for o in st.outputs} == expected
    assert all(o.kind == "image" for o in st.outputs)
    assert all(o.url.startswith("http://127.0.0.1:8188/view?filename=") for o in st.outputs)
    assert st.started_at is not None and st.finished_at is not None and st.finished_at >= st.started_at
    assert_monotone(r.updates)
    # progress moved through intermediate values, node by node
    assert len({round(u.progress) for u in r.updates}) >= 4
    assert r.pid not in r.client.jobs  # finished jobs are no longer tracked
    assert raise_for_status(st) == list(st.outputs)


def test_cached_rerun_counts_cached_nodes_as_done() -> None:
    trace = load("ws_trace_modelfree_cached.json")
    r = Replay(trace)
    r.feed(trace["messages"])
    st = r.status
    assert st.state is JobState.COMPLETED and st.progress == 100
    assert st.completed_nodes == st.total_nodes == 6
    cached = load("history_entry_cached.json")
    entry = HistoryEntry.model_validate(next(iter(cached.values())))
    assert {o.filename for o in st.outputs} == {i["filename"] for ui in entry.outputs.values() for i in ui["images"]}
    assert_monotone(r.updates)


@pytest.mark.parametrize("name", ["ws_trace_progress.json", "ws_trace_progress_preview_metadata.json"])
def test_progress_steps_previews_and_text(name: str) -> None:
    trace = load(name)
    r = Replay(trace)
    seen_steps: list[tuple[int | None, int | None]] = []
    r.job.subscribe(lambda s: seen_steps.append((s.step, s.steps)))
    previews_before_end: list[bytes] = []
    r.job.subscribe(lambda s: previews_before_end.append(s.preview.data) if s.preview else None)
    r.feed(trace["messages"])
    st = r.status
    assert st.state is JobState.COMPLETED and st.progress == 100
    assert {(1, 4), (2, 4), (3, 4), (4, 4)} <= set(seen_steps)
    assert JPEG in previews_before_end
    running = [u for u in r.updates if u.state is JobState.RUNNING and u.steps == 4]
    assert running and all(u.current_node is not None and u.current_node.id == "1" for u in running)
    assert running[-1].current_node is not None and running[-1].current_node.class_type == "SlowProgressImage"
    assert any(u.text == "step 4/4" for u in r.updates)
    assert_monotone(r.updates)
    if name.endswith("metadata.json"):
        assert any(u.preview is not None and u.preview.node_id == "1" for u in r.updates)


def test_execution_error_fails_with_node_and_traceback() -> None:
    trace = load("ws_trace_execution_error.json")
    r = Replay(trace)
    r.feed(trace["messages"])
    st = r.status
    assert st.state is JobState.FAILED
    assert st.error is not None
    assert st.error.node_id == "1" and st.error.class_type == "SlowProgressImage"
    assert st.error.exception_type == "RuntimeError"
    assert "deliberate failure at step 2" in st.error.message
    assert st.error.traceback and "slow_node" in st.error.traceback[-1]
    assert st.progress < 100
    with pytest.raises(ExecutionError) as info:
        raise_for_status(st)
    assert info.value.node_id == "1" and info.value.exception_type == "RuntimeError"
    assert "node 1 (SlowProgressImage)" in str(info.value)


@pytest.mark.parametrize("name", ["ws_trace_interrupt.json", "ws_trace_interrupt_targeted.json"])
def test_interrupt_ends_cancelled(name: str) -> None:
    trace = load(name)
    r = Replay(trace)
    r.feed(trace["messages"])
    assert r.status.state is JobState.CANCELLED
    assert r.status.progress < 100
    with pytest.raises(JobCancelled):
        raise_for_status(r.status)


def test_interrupt_observer_sees_nothing_of_another_clients_prompt() -> None:
    trace = load("ws_trace_interrupt.json")
    r = Replay(trace)
    r.feed(trace["observer_messages"])
    assert r.status.state is JobState.QUEUED


def test_reconnect_gap_is_filled_from_history(monkeypatch: pytest.MonkeyPatch) -> None:
    trace = load("ws_trace_reconnect.json")
    r = Replay(trace)
    r.feed(trace["messages_first_connection"])
    assert r.status.state is JobState.RUNNING
    step_before = r.status.step
    r.job._tracker.gap = True  # what the socket loop records when the connection drops
    fetched: list[str] = []
    entry = HistoryEntry.model_validate(
        {
            "prompt": [0, r.pid, prompt_of(trace), {}, ["2"]],
            "outputs": {"2": {"images": [{"filename": "ComfyUI_temp_x_00001_.png", "subfolder": "", "type": "temp"}]}},
            "status": {"status_str": "success", "completed": True, "messages": []},
        }
    )

    async def fake_history(pid: str) -> HistoryEntry:
        fetched.append(pid)
        return entry

    monkeypatch.setattr(r.client, "_history", fake_history)
    started: list[Any] = []
    monkeypatch.setattr(r.client, "_task", lambda coro: started.append(coro))
    n_before = len(r.updates)
    r.feed(trace["messages_second_connection"])
    after = r.updates[n_before:]
    # the replayed `executing` without prompt id was attributed to the running prompt
    assert after[0].current_node is not None and after[0].current_node.id == "1"
    assert step_before is not None and any((u.step or 0) > step_before for u in after)
    # the final `executing null` after a gap asks history for the outputs instead of trusting messages
    assert r.status.state is JobState.RUNNING and len(started) == 1
    import asyncio

    asyncio.run(started[0])
    assert fetched == [r.pid]
    assert r.status.state is JobState.COMPLETED
    assert [o.filename for o in r.status.outputs] == ["ComfyUI_temp_x_00001_.png"]


def test_late_subscribe_sees_only_status_and_history_finishes_it() -> None:
    trace = load("ws_trace_late_subscribe.json")
    r = Replay(trace)
    r.feed(trace["messages"])
    assert r.status.state is JobState.QUEUED
    entry = history_of(trace, r.pid)
    assert entry is not None
    r.job._tracker.gap = True
    assert r.job._tracker.apply_history(entry)
    assert r.status.state is JobState.COMPLETED and r.status.outputs


def test_prompt_without_client_id_progress_is_broadcast() -> None:
    trace = load("ws_trace_no_client_id.json")
    r = Replay(trace)
    r.feed(trace["messages"])
    st = r.status
    assert st.state is JobState.RUNNING  # no lifecycle events without a client_id: history must end it
    assert st.steps == 3 and st.step == 3
    assert st.preview is not None and st.preview.mime == "image/jpeg"
    assert_monotone(r.updates)


async def test_save_image_websocket_frames_arrive_as_previews() -> None:
    trace = load("ws_trace_save_image_websocket.json")
    r = Replay(trace)
    previews: list[str] = []
    r.job.subscribe(lambda s: previews.append(s.preview.mime) if s.preview else None)
    reads: list[str] = []

    async def history(pid: str) -> HistoryEntry | None:  # the captured answer, no server needed
        reads.append(pid)
        return history_of(trace, r.pid) or HistoryEntry.model_validate({"status": {"completed": True}})

    r.client._history = history  # type: ignore[method-assign]
    r.feed(trace["messages"])
    # SaveImageWebsocket sends frames, never `executed`: with no output at the end marker, the
    # client reads history once before calling the job complete (a reordered `executed` is not lost).
    await r.job.wait(timeout=10)
    assert r.status.state is JobState.COMPLETED and reads == [r.pid]
    assert "image/png" in previews


@pytest.mark.parametrize(
    ("name", "state"),
    [
        ("history_entry.json", JobState.COMPLETED),
        ("history_entry_cached.json", JobState.COMPLETED),
        ("history_entry_error.json", JobState.FAILED),
        ("history_entry_interrupted.json", JobState.CANCELLED),
    ],
)
def test_history_entries(name: str, state: JobState) -> None:
    body = load(name)
    pid, raw = next(iter(body.items()))
    entry = HistoryEntry.model_validate(raw)
    tracker = JobTracker(pid, prompt=entry.api_prompt)
    tracker.gap = True
    tracker.apply_history(entry)
    st = tracker.status
    assert st.state is state
    n_files = sum(len(ui.get("images", [])) for ui in entry.outputs.values())
    assert len(st.outputs) == n_files
    if state is JobState.COMPLETED:
        assert st.progress == 100 and st.completed_nodes == st.total_nodes > 0
    if state is JobState.FAILED:
        assert st.error is not None and st.error.exception_type == "RuntimeError" and st.error.node_id == "1"


def test_vanished_job_raises_job_lost() -> None:
    tracker = JobTracker("p1", prompt={"1": {"class_type": "SaveImage", "inputs": {}}})
    tracker.fail("prompt p1 vanished from the queue and history")
    with pytest.raises(JobLost, match="vanished"):
        raise_for_status(tracker.status)


def test_queue_pending_is_sorted_into_run_order() -> None:
    snap = QueueSnapshot.from_wire(load("queue_pending.json"))
    numbers = [item.number for item in snap.pending]
    assert numbers == sorted(numbers) and numbers[0] == -7
    assert len(snap.running) == 1


PROMPT_ERRORS = sorted(p.name for p in FIXTURES.glob("prompt_error_*.json"))


@pytest.mark.parametrize("name", PROMPT_ERRORS)
def test_prompt_errors_become_actionable_exceptions(name: str) -> None:
    body = load(name)
    err = prompt_validation_error(body)
    assert isinstance(err, PromptValidationError)
    assert err.error_type == body["error"]["type"]
    text = str(err)
    assert body["error"]["message"] in text
    n = sum(len(v["errors"]) for v in body["node_errors"].values())
    assert len(err.errors) == n
    for node_id, entry in body["node_errors"].items():
        for e in entry["errors"]:
            assert f"node {node_id} ({entry['class_type']}" in text
            assert e["message"] in text
            input_name = (e.get("extra_info") or {}).get("input_name")
            if input_name:
                assert f"input '{input_name}'" in text


def test_bad_combo_error_lists_allowed_values() -> None:
    err = prompt_validation_error(load("prompt_error_bad_combo_value.json"))
    (e,) = err.errors
    assert e.input_name == "upscale_method" and e.received_value == "bogus"
    assert e.allowed == ["nearest-exact", "bilinear", "area", "bicubic", "lanczos"]
    assert "'bogus' not in" in str(err)
