"""Each capture scenario replayed against the mock: message types, fields and order as captured."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest
from _mockwire import Http, Recorder, captured_messages, is_done, normalize, slow
from captures import capture

from comfy_nb.mock import MockServer

MODELFREE = capture("workflow_modelfree_api.json")


def _sans_hello(msgs: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return [m for m in msgs if m[0] != "feature_flags" and not (m[0] == "status" and m[2])]


async def test_plain_run_matches_capture(fresh_mock: MockServer) -> None:
    trace = capture("ws_trace_modelfree.json")
    async with Recorder(fresh_mock.url) as ws, Http(fresh_mock.url) as http:
        await ws.wait_for(lambda m: m.get("type") == "status")
        pid = await http.submit(MODELFREE, ws.client_id)
        await ws.wait_done(pid)
        entry = await http.history(pid)
    assert [normalize(m) for m in ws.messages] == captured_messages(trace)
    expected = capture("history_entry.json")
    (want,) = expected.values()
    assert list(entry) == list(want)
    assert entry["prompt"][2] == want["prompt"][2]
    assert entry["prompt"][3] == {"client_id": ws.client_id}
    assert entry["prompt"][4] == want["prompt"][4]
    assert list(entry["outputs"]) == list(want["outputs"])
    assert entry["status"]["status_str"] == "success" and entry["status"]["completed"] is True
    assert [m[0] for m in entry["status"]["messages"]] == [m[0] for m in want["status"]["messages"]]
    for (_, got), (_, exp) in zip(entry["status"]["messages"], want["status"]["messages"], strict=True):
        assert list(got) == list(exp)
    assert list(entry["meta"]) == list(want["meta"])
    assert entry["meta"]["5"] == want["meta"]["5"]
    assert entry["outputs"]["6"]["images"][0]["type"] == "temp"
    assert entry["outputs"]["6"]["images"][0]["filename"].startswith("ComfyUI_temp_")


async def test_observer_sees_only_status(fresh_mock: MockServer) -> None:
    trace = capture("ws_trace_modelfree_observer.json")
    async with Recorder(fresh_mock.url) as ws, Recorder(fresh_mock.url) as observer, Http(fresh_mock.url) as http:
        await ws.wait_for(lambda m: m.get("type") == "status")
        await observer.wait_for(lambda m: m.get("type") == "status")
        pid = await http.submit(MODELFREE, ws.client_id)
        await ws.wait_done(pid)
        await observer.wait_for(lambda m: m.get("type") == "status" and m["data"]["status"]["exec_info"]["queue_remaining"] == 0 and "sid" not in m["data"])
    assert [normalize(m) for m in observer.messages] == captured_messages(trace)


async def test_cached_rerun_matches_capture(fresh_mock: MockServer) -> None:
    trace = capture("ws_trace_modelfree_cached.json")
    async with Recorder(fresh_mock.url) as ws, Http(fresh_mock.url) as http:
        first = await http.submit(MODELFREE, ws.client_id)
        await ws.wait_done(first)
        entry1 = await http.history(first)
        ws.messages.clear()
        second = await http.submit(MODELFREE, ws.client_id)
        await ws.wait_done(second)
        entry2 = await http.history(second)
    got = [normalize(m) for m in ws.messages]
    assert got == _sans_hello(captured_messages(trace))
    assert entry2["outputs"] == entry1["outputs"]  # same files, nothing new written
    assert entry2["status"]["messages"][1][1]["nodes"] == ["1", "2", "3", "4", "5", "6"]


async def test_changed_node_reruns_only_it_and_descendants(fresh_mock: MockServer) -> None:
    changed = copy.deepcopy(MODELFREE)
    changed["4"]["inputs"]["width"] = 80
    async with Recorder(fresh_mock.url) as ws, Http(fresh_mock.url) as http:
        await ws.wait_done(await http.submit(MODELFREE, ws.client_id))
        ws.messages.clear()
        pid = await http.submit(changed, ws.client_id)
        await ws.wait_done(pid)
    cached = next(m for m in ws.texts() if m["type"] == "execution_cached")
    assert cached["data"]["nodes"] == ["1", "2", "3", "6"]
    executing = [m["data"]["node"] for m in ws.texts() if m["type"] == "executing"]
    assert executing == ["4", "5", None]
    executed = [m["data"]["node"] for m in ws.texts() if m["type"] == "executed"]
    assert executed == ["6", "5"]  # the cached preview still reports its output


@pytest.mark.parametrize(
    ("name", "flags"),
    [("ws_trace_progress.json", None), ("ws_trace_progress_preview_metadata.json", {"supports_preview_metadata": True})],
)
async def test_progress_with_previews_matches_capture(fresh_mock: MockServer, name: str, flags: Any) -> None:
    trace = capture(name)
    prompt = copy.deepcopy(trace["_meta"]["workflow"])
    prompt["1"]["inputs"]["seconds_per_step"] = 0.01
    async with Recorder(fresh_mock.url, feature_flags=flags) as ws, Http(fresh_mock.url) as http:
        if flags:
            await ws.wait_for(lambda m: isinstance(m, dict) and m["type"] == "feature_flags")
        else:
            await ws.wait_for(lambda m: isinstance(m, dict) and m["type"] == "status")
        pid = await http.submit(prompt, ws.client_id)
        await ws.wait_done(pid)
    assert [normalize(m) for m in ws.messages] == captured_messages(trace)
    from io import BytesIO

    from PIL import Image

    frame = next(m for m in ws.messages if isinstance(m, bytes) and m[3] in (1, 4))
    if frame[3] == 1:
        jpeg = frame[8:]
    else:
        n = int.from_bytes(frame[4:8], "big")
        jpeg = frame[8 + n :]
    assert Image.open(BytesIO(jpeg)).size == (512, 512)  # previews are fitted to 512, upscaling too


async def test_execution_error_matches_capture(fresh_mock: MockServer) -> None:
    trace = capture("ws_trace_execution_error.json")
    prompt = copy.deepcopy(trace["http"][0]["request_json"]["prompt"])
    prompt["1"]["inputs"]["seconds_per_step"] = 0.01
    async with Recorder(fresh_mock.url) as ws, Http(fresh_mock.url) as http:
        pid = await http.submit(prompt, ws.client_id)
        await ws.wait_done(pid)
        entry = await http.history(pid)
    assert [normalize(m) for m in ws.messages] == captured_messages(trace)
    err = next(m for m in ws.texts() if m["type"] == "execution_error")["data"]
    want = next(m["json"]["data"] for m in trace["messages"] if m.get("json", {}).get("type") == "execution_error")
    assert err["exception_message"] == want["exception_message"]
    assert err["current_inputs"] == {**want["current_inputs"], "seconds_per_step": [0.01]}
    assert err["current_outputs"] == want["current_outputs"]
    assert isinstance(err["traceback"], list) and all(isinstance(x, str) for x in err["traceback"])
    (hist,) = capture("history_entry_error.json").values()
    assert entry["outputs"] == hist["outputs"] == {}
    assert entry["meta"] == hist["meta"]
    assert {k: v for k, v in entry["status"].items() if k != "messages"} == {
        k: v for k, v in hist["status"].items() if k != "messages"
    }
    assert [m[0] for m in entry["status"]["messages"]] == [m[0] for m in hist["status"]["messages"]]
    assert list(entry["status"]["messages"][-1][1]) == list(hist["status"]["messages"][-1][1])


async def test_fail_node_fault_gives_execution_error(fresh_mock: MockServer) -> None:
    fresh_mock.faults.fail_node("ImageBlur", message="blur exploded", exception_type="ValueError", count=1)
    async with Recorder(fresh_mock.url) as ws, Http(fresh_mock.url) as http:
        pid = await http.submit(MODELFREE, ws.client_id)
        await ws.wait_done(pid)
        err = next(m for m in ws.texts() if m["type"] == "execution_error")["data"]
        assert err["node_id"] == "3" and err["node_type"] == "ImageBlur"
        assert err["exception_type"] == "ValueError" and err["exception_message"] == "blur exploded\n"
        assert err["executed"] == ["1", "2", "6"]
        entry = await http.history(pid)
        assert entry["status"]["status_str"] == "error"
        assert list(entry["outputs"]) == ["6"]  # the preview finished before the failure
        # count=1: the next run succeeds, reusing the cached upstream nodes
        ws.messages.clear()
        pid2 = await http.submit(MODELFREE, ws.client_id)
        await ws.wait_done(pid2)
        assert any(m["type"] == "execution_success" for m in ws.texts())
        cached = next(m for m in ws.texts() if m["type"] == "execution_cached")["data"]["nodes"]
        assert cached == ["1", "2", "6"]


async def _run_until_progress(ws: Recorder, http: Http, steps: int, at: int) -> str:
    pid = await http.submit(slow(steps, 0.02), ws.client_id)
    await ws.wait_for(lambda m: isinstance(m, dict) and m["type"] == "progress" and m["data"]["value"] >= at)
    return pid


def _structure(msgs: list[tuple[Any, ...]]) -> list[Any]:
    """Collapse runs of per-step progress messages, whose count depends on timing."""
    out: list[Any] = []
    for m in msgs:
        key: Any = m
        if m[0] == "progress" or (m[0] == "progress_state" and m[1] and m[1][-1][1] == "running" and m[1][-1][2] not in (0, 0.0)):
            key = "step"
        if key == "step" and out and out[-1] == "step":
            continue
        out.append(key)
    return out


async def test_global_interrupt_matches_capture(fresh_mock: MockServer) -> None:
    trace = capture("ws_trace_interrupt.json")
    async with Recorder(fresh_mock.url) as ws, Http(fresh_mock.url) as http:
        pid = await _run_until_progress(ws, http, 200, 3)
        r = await http.client.post("/interrupt")
        assert r.status_code == 200 and r.content == b""
        await ws.wait_done(pid)
        entry = await http.history(pid)
    assert _structure([normalize(m) for m in ws.messages]) == _structure(captured_messages(trace))
    (hist,) = capture("history_entry_interrupted.json").values()
    assert entry["status"]["status_str"] == hist["status"]["status_str"] == "error"
    assert entry["status"]["completed"] is False
    assert [m[0] for m in entry["status"]["messages"]] == [m[0] for m in hist["status"]["messages"]]
    assert entry["outputs"] == hist["outputs"]


async def test_targeted_interrupt_matches_capture(fresh_mock: MockServer) -> None:
    trace = capture("ws_trace_interrupt_targeted.json")
    async with Recorder(fresh_mock.url) as ws, Http(fresh_mock.url) as http:
        pid = await _run_until_progress(ws, http, 200, 2)
        r = await http.client.post("/interrupt", json={"prompt_id": "00000000-not-running"})
        assert r.status_code == 200 and r.content == b""
        seen = len(ws.messages)
        await ws.wait_for(lambda m: isinstance(m, dict) and m["type"] == "progress" and m["data"]["value"] >= 4)
        assert not any(isinstance(m, dict) and m["type"] == "execution_interrupted" for m in ws.messages[seen:])
        await http.client.post("/interrupt", json={"prompt_id": pid})
        await ws.wait_done(pid)
    assert _structure([normalize(m) for m in ws.messages]) == _structure(captured_messages(trace))


async def test_targeted_interrupt_leaves_pending_prompt(fresh_mock: MockServer) -> None:
    async with Recorder(fresh_mock.url) as ws, Http(fresh_mock.url) as http:
        running = await _run_until_progress(ws, http, 200, 1)
        pending = await http.submit(slow(1, 0.0), ws.client_id)
        await http.client.post("/interrupt", json={"prompt_id": pending})
        q = (await http.client.get("/queue")).json()
        assert [i[1] for i in q["queue_pending"]] == [pending]
        await http.client.post("/interrupt", json={"prompt_id": running})
        await ws.wait_done(pending)
        assert (await http.history(pending))["status"]["status_str"] == "success"


async def test_queue_delete_and_clear_match_capture(fresh_mock: MockServer) -> None:
    trace = capture("ws_trace_queue_delete.json")
    want_pending = capture("queue_pending.json")
    want_after = capture("queue_after_delete.json")
    async with Http(fresh_mock.url) as http:  # the captured server had numbered 4 prompts before
        for _ in range(4):  # a refused prompt takes a number too (server.py counts before it validates)
            assert (await http.client.post("/prompt", json={"prompt": {}})).status_code == 400
    async with Recorder(fresh_mock.url) as ws, Http(fresh_mock.url) as http:
        ids = [await http.submit(slow(3, 0.05, seed=1), ws.client_id)]
        await ws.wait_for(lambda m: isinstance(m, dict) and m["type"] == "execution_start")
        ids.append(await http.submit(slow(3, 0.05, seed=2), ws.client_id))
        ids.append(await http.submit(slow(3, 0.05, seed=3), ws.client_id))
        ids.append(await http.submit(slow(3, 0.05, seed=4), ws.client_id, front=True))
        q = (await http.client.get("/queue")).json()
        assert [i[0] for i in q["queue_running"]] == [i[0] for i in want_pending["queue_running"]] == [4]
        assert [i[0] for i in q["queue_pending"]] == [i[0] for i in want_pending["queue_pending"]] == [-7, 6, 5]
        assert [len(i) for i in q["queue_pending"]] == [5, 5, 5]
        r = await http.client.post("/queue", json={"delete": [ids[2]]})
        assert r.status_code == 200 and r.content == b""
        q = (await http.client.get("/queue")).json()
        assert [i[0] for i in q["queue_pending"]] == [i[0] for i in want_after["queue_pending"]] == [-7, 5]
        await ws.wait_done(ids[1], timeout=20)
        assert await http.history(ids[2]) == {}
        a = await http.submit(slow(3, 0.05, seed=5), ws.client_id)
        await ws.wait_for(lambda m: isinstance(m, dict) and m["type"] == "execution_start" and m["data"]["prompt_id"] == a)
        b = await http.submit(slow(3, 0.05, seed=6), ws.client_id)
        assert (await http.client.post("/queue", json={"clear": True})).status_code == 200
        q = (await http.client.get("/queue")).json()
        assert q["queue_pending"] == [] and [i[1] for i in q["queue_running"]] == [a]
        await ws.wait_done(a, timeout=20)
        assert await http.history(b) == {}
    assert _structure([normalize(m) for m in ws.messages]) == _structure(captured_messages(trace))
    order = [m["data"]["prompt_id"] for m in ws.texts() if m["type"] == "execution_start"]
    assert order == [ids[0], ids[3], ids[1], a]


async def test_reconnect_replays_executing(fresh_mock: MockServer) -> None:
    trace = capture("ws_trace_reconnect.json")
    async with Http(fresh_mock.url) as http:
        first = await Recorder(fresh_mock.url).connect()
        pid = await http.submit(slow(8, 0.05), first.client_id)
        await first.wait_for(lambda m: isinstance(m, dict) and m["type"] == "progress" and m["data"]["value"] == 2)
        await first.close()
        second = Recorder(fresh_mock.url, first.client_id)
        await second.connect()
        await second.wait_done(pid)
        await second.close()
    got = [normalize(m) for m in second.messages]
    want = captured_messages(trace, "messages_second_connection")
    assert got[:2] == want[:2] == [("status", 1, True), ("executing", "1", ("node",))]
    assert _structure(got) == _structure(want)


async def test_late_subscriber_gets_only_hello(fresh_mock: MockServer) -> None:
    trace = capture("ws_trace_late_subscribe.json")
    async with Recorder(fresh_mock.url) as watcher, Http(fresh_mock.url) as http:
        late = Recorder(fresh_mock.url)
        pid = await http.submit(slow(2, 0.0), late.client_id)
        await watcher.wait_for(lambda m: m.get("type") == "status" and m["data"]["status"]["exec_info"]["queue_remaining"] == 0 and "sid" not in m["data"])
        await late.connect()
        await late.wait_for(lambda m: m.get("type") == "status")
        # a round trip on another socket proves nothing else was queued for the late one
        await http.submit(slow(1, 0.0, seed=9), watcher.client_id)
        await watcher.wait_for(lambda m: m.get("type") == "executing" and m["data"]["node"] is None)
        await late.close()
        assert (await http.history(pid))["status"]["status_str"] == "success"
    hello = [normalize(m) for m in late.messages][:1]
    assert hello == captured_messages(trace)
    assert all(m["type"] == "status" for m in late.texts())


async def test_no_client_id_broadcasts_progress_only(fresh_mock: MockServer) -> None:
    trace = capture("ws_trace_no_client_id.json")
    prompt = copy.deepcopy(trace["_meta"]["workflow"])
    prompt["1"]["inputs"]["seconds_per_step"] = 0.01
    async with Recorder(fresh_mock.url) as watcher, Http(fresh_mock.url) as http:
        await watcher.wait_for(lambda m: m.get("type") == "status")
        pid = await http.submit(prompt)
        await watcher.wait_for(lambda m: isinstance(m, dict) and m["type"] == "status" and m["data"]["status"]["exec_info"]["queue_remaining"] == 0 and "sid" not in m["data"])
        assert (await http.history(pid))["prompt"][3] == {}
    assert [normalize(m) for m in watcher.messages] == captured_messages(trace)


async def test_no_client_id_interrupt_is_broadcast(fresh_mock: MockServer) -> None:
    async with Recorder(fresh_mock.url) as watcher, Http(fresh_mock.url) as http:
        pid = await http.submit(slow(200, 0.02))
        await watcher.wait_for(lambda m: isinstance(m, dict) and m["type"] == "progress")
        await http.client.post("/interrupt")
        msg = await watcher.wait_for(lambda m: isinstance(m, dict) and m["type"] == "execution_interrupted")
        assert msg["data"]["prompt_id"] == pid


async def test_save_image_websocket_matches_capture(fresh_mock: MockServer) -> None:
    trace = capture("ws_trace_save_image_websocket.json")
    async with Recorder(fresh_mock.url) as ws, Http(fresh_mock.url) as http:
        await ws.wait_for(lambda m: m.get("type") == "status")
        pid = await http.submit(trace["_meta"]["workflow"], ws.client_id)
        await ws.wait_done(pid)
        entry = await http.history(pid)
    assert _sans_hello([normalize(m) for m in ws.messages]) == _sans_hello(captured_messages(trace))
    assert entry["outputs"] == {}
    frames = [m for m in ws.messages if isinstance(m, bytes)]
    from io import BytesIO

    from PIL import Image

    assert [Image.open(BytesIO(f[8:])).size for f in frames] == [(32, 32)] * 3


async def test_same_client_id_replacement_goes_deaf(fresh_mock: MockServer) -> None:
    async with Recorder(fresh_mock.url) as observer, Http(fresh_mock.url) as http:
        old = await Recorder(fresh_mock.url, "shared-id").connect()
        new = await Recorder(fresh_mock.url, "shared-id").connect()
        await new.wait_for(lambda m: m.get("type") == "status")
        await old.close()
        # closing the old socket deregisters the id, which now belongs to the new socket
        pid = await http.submit(slow(1, 0.0), "shared-id")
        await observer.wait_for(lambda m: m.get("type") == "status" and m["data"]["status"]["exec_info"]["queue_remaining"] == 0 and "sid" not in m["data"])
        assert await http.history(pid) != {}
        assert len(new.messages) == 1 and not new.closed
        await new.close()


async def test_feature_flags_only_as_first_message(fresh_mock: MockServer) -> None:
    import json

    import websockets

    url = fresh_mock.url.replace("http://", "ws://") + "/ws?clientId=late-flags"
    async with websockets.connect(url) as ws:
        assert json.loads(await ws.recv())["type"] == "status"
        await ws.send(json.dumps({"type": "hello"}))
        await ws.send(json.dumps({"type": "feature_flags", "data": {"supports_preview_metadata": True}}))
        async with Http(fresh_mock.url) as http:
            pid = await http.submit(slow(1, 0.0, preview=True), "late-flags")
        frames = []
        while True:
            m = await asyncio.wait_for(ws.recv(), 10)
            frames.append(m)
            if isinstance(m, str) and is_done(json.loads(m), pid):
                break
    assert not any(isinstance(f, str) and json.loads(f)["type"] == "feature_flags" for f in frames)
    assert [f[:4] for f in frames if isinstance(f, bytes)] == [b"\x00\x00\x00\x01"]
