"""Per-node state on JobStatus (``executed_nodes``, ``cached_nodes``) from captured real-server traces."""

from __future__ import annotations

import json
from collections.abc import Awaitable
from typing import Any

from captures import FIXTURES

from comfy_nb.client import AsyncComfyClient, Job, JobState, JobStatus, JobTracker
from comfy_nb.client._follower import Follower, FollowSettings
from comfy_nb.client._job import JobFeed


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


class Replay:
    """A follower with one registered job, fed the text frames of a captured trace (as the socket would)."""

    def __init__(self, trace: dict[str, Any]) -> None:
        prompt = next(h["request_json"]["prompt"] for h in trace["http"]
                      if h.get("method") == "POST" and h.get("path") == "/prompt")
        pid = trace["_meta"]["prompt_id"]
        client = AsyncComfyClient("http://127.0.0.1:8188")

        async def unused(*args: Any) -> Any:
            raise AssertionError("a complete trace needs no server reads")

        def no_background(coro: Awaitable[None]) -> None:
            raise AssertionError("a complete trace needs no background work")

        self.follower = Follower(
            FollowSettings(client.url, 1.0, 5.0, 120.0, 3), read_queue=unused, read_history=unused,
            socket_open=lambda: True, reconnect_socket=unused, background=no_background, on_status=lambda msg: None,
        )
        feed = JobFeed(JobTracker(pid, prompt=prompt, view_url=client.view_url))
        self.job = Job(client, feed)
        self.follower.follow(self.job, feed)
        self.updates: list[JobStatus] = []
        self.job.subscribe(self.updates.append)

    def feed(self, messages: list[dict[str, Any]]) -> None:
        for m in messages:
            if m.get("dir") == "recv" and m["kind"] == "text":
                self.follower.on_frame(json.dumps(m["json"]))

    @property
    def status(self) -> JobStatus:
        return self.job.status


def _cached_in(trace: dict[str, Any]) -> set[str]:
    return {n for m in trace["messages"] if m.get("kind") == "text" and m["json"].get("type") == "execution_cached"
            for n in m["json"]["data"]["nodes"]}


def test_plain_run_executes_every_node_and_caches_none() -> None:
    trace = load("ws_trace_modelfree.json")
    r = Replay(trace)
    r.feed(trace["messages"])
    assert r.status.state is JobState.COMPLETED
    assert r.status.executed_nodes == frozenset(r.job.prompt) and r.status.cached_nodes == frozenset()
    # the set only grows, node by node, and a node is done only after the nodes it reads from
    order: list[str] = []
    for u in r.updates:
        assert set(order) <= u.executed_nodes
        order += sorted(u.executed_nodes - set(order))
    assert len({len(u.executed_nodes) for u in r.updates}) >= 4
    for node_id in order:
        for value in r.job.prompt[node_id]["inputs"].values():
            if isinstance(value, list):
                assert order.index(value[0]) < order.index(node_id)


def test_cached_rerun_reports_the_cached_nodes_apart() -> None:
    trace = load("ws_trace_modelfree_cached.json")
    r = Replay(trace)
    r.feed(trace["messages"])
    st = r.status
    cached = _cached_in(trace)
    assert cached and st.cached_nodes == frozenset(cached)
    assert st.executed_nodes == frozenset(r.job.prompt) - cached
    assert st.completed_nodes == len(st.executed_nodes | st.cached_nodes)


def test_failed_node_is_neither_executed_nor_cached() -> None:
    trace = load("ws_trace_execution_error.json")
    r = Replay(trace)
    r.feed(trace["messages"])
    st = r.status
    assert st.state is JobState.FAILED and st.error is not None
    assert st.error.node_id not in st.executed_nodes | st.cached_nodes
