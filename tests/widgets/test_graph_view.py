"""GraphView driven by real jobs on the mock server: node states in order, cached, failed, throttling."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from comfy_nb.client import ComfyClient
from comfy_nb.config import ComfyConfig
from comfy_nb.errors import WorkflowError
from comfy_nb.mock import MockServer
from comfy_nb.widgets import GraphView
from comfy_nb.workflows import GenerationTask, Workflow

from .conftest import front_msg, wait_for

TIMEOUT = 60
PAYLOAD = "<img src=x onerror=alert(1)>"


@pytest.fixture
def server() -> Iterator[MockServer]:
    with MockServer(step_delay=0.01) as m:
        yield m


@pytest.fixture
def client(server: MockServer) -> Iterator[ComfyClient]:
    c = ComfyClient(server.url, config=ComfyConfig(server_url=server.url))
    yield c
    c.close()


def custom_messages(view: GraphView) -> list[dict[str, Any]]:
    """The state patches the view sent to the browser, in order."""
    return [m["content"] for m in view.comm.messages
            if isinstance(m, dict) and m.get("method") == "custom"]


def replay(view: GraphView, base0: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """What the browser ends up with: the first ``base``, then every patch and ``base`` update in order."""
    states = dict(base0["nodes"])
    seq = base0["seq"]
    jobs = [base0["job"]]
    for m in view.comm.messages:
        if not isinstance(m, dict):
            continue
        if m.get("method") == "update" and "base" in m.get("state", {}):
            base = m["state"]["base"]
            assert base["seq"] >= seq
            states, seq = dict(base["nodes"]), base["seq"]
            jobs.append(base["job"])
        elif m.get("method") == "custom":
            patch = m["content"]
            assert patch["seq"] == seq + 1, "patches are numbered without gaps"
            seq = patch["seq"]
            states.update(patch["nodes"])
            jobs.append(patch["job"])
    return states, jobs


def running_order(messages: list[dict[str, Any]]) -> list[str]:
    order: list[str] = []
    for msg in messages:
        for node_id, st in msg["nodes"].items():
            if st["state"] == "running" and node_id not in order:
                order.append(node_id)
    return order


def test_live_job_lights_nodes_in_order_then_done_with_thumbnail(client: ComfyClient) -> None:
    job = client.submit_task(GenerationTask(prompt=f"a fox {PAYLOAD}", steps=12, width=64, height=64))
    view = GraphView(job)
    base0 = dict(view.base)
    assert {n["id"] for n in view.graph["nodes"]} == set(job.prompt) == set(base0["nodes"])
    job.wait(TIMEOUT)
    save = next(k for k, v in job.prompt.items() if v["class_type"] == "SaveImage")
    wait_for(lambda: view.node_states[save].get("thumb"), what="the output thumbnail")
    states, jobs = replay(view, base0)
    assert states == view.node_states
    assert all(st["state"] == "done" for st in states.values()), states
    assert states[save]["thumb"].startswith("data:image/")
    assert states[save]["outputs"][0]["kind"] == "image"
    assert jobs[-1]["state"] == "completed" and jobs[-1]["running"] == ""
    # every node ran, in an order that respects the links (a node runs after its sources)
    order = running_order(custom_messages(view))
    assert set(order) <= set(job.prompt) and "KSampler" in {job.prompt[n]["class_type"] for n in order}
    for node_id in order:
        for value in job.prompt[node_id]["inputs"].values():
            if isinstance(value, list) and value[0] in order:
                assert order.index(value[0]) < order.index(node_id)
    # the sampler showed its steps while it ran, and the job line named it
    sampler = next(k for k, v in job.prompt.items() if v["class_type"] == "KSampler")
    steps = [m["nodes"][sampler] for m in custom_messages(view) if m["nodes"].get(sampler, {}).get("state") == "running"]
    assert steps and steps[-1]["steps"] == 12
    assert any(j.get("running") == sampler for j in jobs)
    assert view.base["job"]["state"] == "completed"  # the final state, whole, for a view opened later
    assert repr(view) == "GraphView(nodes=7, links=9, state='completed', done=7)"
    view.close()


def test_rerun_shows_cached_nodes(client: ComfyClient) -> None:
    task = GenerationTask(prompt="same prompt", steps=3, width=64, height=64, seed=5)
    client.submit_task(task).wait(TIMEOUT)
    task2 = GenerationTask(prompt="same prompt", steps=4, width=64, height=64, seed=5)
    job = client.submit_task(task2)  # the sampler changed: loader, encoders and latent come from the cache
    view = GraphView(job)
    job.wait(TIMEOUT)
    wait_for(lambda: view.node_states and all(s["state"] in ("cached", "done") for s in view.node_states.values()),
             what="final states")
    kinds = {job.prompt[k]["class_type"]: st["state"] for k, st in view.node_states.items()}
    assert kinds["CheckpointLoaderSimple"] == "cached" and kinds["CLIPTextEncode"] == "cached"
    assert kinds["KSampler"] == "done"
    assert job.status.cached_nodes and job.status.cached_nodes.isdisjoint(job.status.executed_nodes)


def test_failing_node_shows_failed_with_its_message(server: MockServer, client: ComfyClient) -> None:
    server.faults.fail_node("VAEDecode", message=f"decoder exploded {PAYLOAD}", exception_type="RuntimeError")
    job = client.submit_task(GenerationTask(prompt="will fail", steps=2, width=64, height=64))
    view = GraphView(job)
    job.wait(TIMEOUT)
    wait_for(lambda: view.job.status.terminal and any(s["state"] == "failed" for s in view.node_states.values()),
             what="failed state")
    by_class = {job.prompt[k]["class_type"]: st for k, st in view.node_states.items()}
    assert by_class["VAEDecode"]["state"] == "failed"
    assert by_class["VAEDecode"]["error"] == f"decoder exploded {PAYLOAD}"  # raw text; the browser escapes it
    assert by_class["VAEDecode"]["error_type"] == "RuntimeError"
    assert by_class["KSampler"]["state"] == "done"
    assert by_class["SaveImage"]["state"] == "skipped"
    assert "state='failed'" in repr(view) and "failed=1" in repr(view)


def test_patch_rate_and_size_for_a_fast_stream(capsys: pytest.CaptureFixture[str]) -> None:
    """~1,000 progress events/s: at most ~20 patches/s, and a patch only holds the nodes that changed."""
    with MockServer(step_delay=0.001, sampler_previews=False) as m:
        c = ComfyClient(m.url, config=ComfyConfig(server_url=m.url))
        try:
            job = c.submit_task(GenerationTask(prompt="rate", steps=1500, width=64, height=64))
            view = GraphView(job)
            base0 = dict(view.base)
            events: list[float] = []
            job.subscribe(lambda st: events.append(time.monotonic()))
            job.wait(TIMEOUT)
            wait_for(lambda: view.base["job"]["state"] == "completed", what="the final state")
            patches = custom_messages(view)
            duration = max(events[-1] - events[0], 1e-6)
            with capsys.disabled():
                print(f"\n[graph traffic] {len(events)} job events in {duration:.2f} s "
                      f"({len(events) / duration:.0f}/s) -> {len(patches)} patches ({len(patches) / duration:.1f}/s)")
            assert len(events) / duration > 100, "the job must really stream fast"
            assert len(patches) <= duration / 0.055 + 4
            sampler = next(k for k, v in job.prompt.items() if v["class_type"] == "KSampler")
            states: dict[str, Any] = dict(base0["nodes"])
            for patch in patches:  # a patch carries only nodes whose state changed
                assert all(states.get(k) != v for k, v in patch["nodes"].items())
                states.update(patch["nodes"])
            steps_only = [p for p in patches if list(p["nodes"]) == [sampler]]
            assert len(steps_only) >= 5, "sampler steps travel as one-node patches"
            assert view.patches_sent == len(patches)
        finally:
            c.close()


def test_a_browser_that_missed_patches_gets_the_whole_state(client: ComfyClient) -> None:
    job = client.submit_task(GenerationTask(prompt="snapshot", steps=2, width=64, height=64))
    job.wait(TIMEOUT)
    view = GraphView(job)
    assert view.base["job"]["state"] == "completed" and set(view.base["nodes"]) == set(job.prompt)
    save = next(k for k, v in job.prompt.items() if v["class_type"] == "SaveImage")
    wait_for(lambda: view.node_states[save].get("thumb"), what="the output thumbnail")  # came as a patch
    front_msg(view, {"type": "resync"})
    assert view.base["seq"] == custom_messages(view)[-1]["seq"]
    assert view.base["nodes"][save]["thumb"].startswith("data:image/")


def test_workflow_show_is_idle_and_inputs_are_listed(capture: Any) -> None:
    api = capture("workflow_modelfree_api.json")
    api["2"]["_meta"]["title"] = PAYLOAD
    wf = Workflow(api, name="model-free")
    view = wf.show()
    assert isinstance(view, GraphView)
    assert view.title == "model-free" and view.graph["layout"] == "layered"
    assert {st["state"] for st in view.node_states.values()} == {"idle"}
    node2 = next(n for n in view.graph["nodes"] if n["id"] == "2")
    assert node2["title"] == PAYLOAD  # kept as text; graph_view.js only ever sets textContent
    inputs = {i["name"]: i for i in node2["inputs"]}
    assert inputs["image"] == {"name": "image", "link": "1", "slot": 0}
    assert repr(view) == "GraphView(nodes=6, links=5)" == repr(GraphView(api))
    assert json.dumps(view.graph)  # JSON-ready


def test_workflow_from_ui_draws_at_the_ui_positions(capture: Any, object_info: dict[str, Any]) -> None:
    wf = Workflow.from_ui(capture("workflow_ui_example.json"), object_info)
    view = GraphView(wf)
    assert view.graph["layout"] == "ui"
    boxes = {n["id"]: (n["x"], n["y"], n["w"], n["h"]) for n in view.graph["nodes"]}
    assert boxes == {k: tuple(round(c, 1) for c in v) for k, v in (wf.ui_layout or {}).items()}
    added = wf.copy()
    new = added.add_node("ImageInvert", {"image": ["1", 0]})
    view2 = GraphView(added)
    assert view2.graph["layout"] == "ui" and any(n["id"] == new.id for n in view2.graph["nodes"])


def test_bad_sources_are_clear_errors() -> None:
    with pytest.raises(WorkflowError, match="GraphView draws a Job, a Workflow or an API-format dict"):
        GraphView(42)
    with pytest.raises(WorkflowError, match="GraphView draws"):
        GraphView({})


def test_workflow_show_without_widgets_is_a_clear_error(capture: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from comfy_nb import _display
    from comfy_nb.errors import ComfyError

    def broken_loader() -> None:
        raise ImportError("No module named 'anywidget'")

    monkeypatch.setattr(_display, "_factories", {})
    monkeypatch.setattr(_display, "_loader", broken_loader)
    with pytest.raises(ComfyError, match=r"Workflow.show\(\) needs comfy_nb.widgets"):
        Workflow(capture("workflow_modelfree_api.json")).show()


def test_job_view_graph_toggle_makes_one_graph_view(client: ComfyClient) -> None:
    from comfy_nb.widgets import JobView

    job = client.submit_task(GenerationTask(prompt="toggle", steps=2, width=64, height=64))
    view = JobView(job)
    assert view.graph_available and view.graph_ref == ""
    front_msg(view, {"type": "graph"})  # what the Graph button sends
    graph = view.graph_view()
    assert isinstance(graph, GraphView) and graph.job is job
    assert view.graph_ref == f"anywidget:{graph.model_id}"
    front_msg(view, {"type": "graph"})
    assert view.graph_view() is graph
    job.wait(TIMEOUT)
    wait_for(lambda: graph.base["job"]["state"] == "completed", what="the graph's final state")
    view.close()
