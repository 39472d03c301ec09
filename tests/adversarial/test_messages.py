"""WebSocket messages and binary frames mutated, duplicated, reordered and stale; slow and racing answers.

Whatever the socket says, a job ends exactly once; when the messages are unusable, history (read
once, or by the poller) decides.
"""

from __future__ import annotations

import asyncio
import json
import os
import struct
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web

from comfy_nb import JobState
from comfy_nb.errors import ComfyTimeout

from ._fake import GRAPH, OUTPUT, FakeComfy, default_script, msg, never_ends, preview_frame
from .conftest import BOUND, Ledger, make_client


async def run_with(fake: FakeComfy, frames: Callable[[str], list[str | bytes]], finish_first: bool = True) -> Any:
    """Run one prompt whose socket traffic is ``frames(pid)``; the history entry is written first."""

    async def script(fake: FakeComfy, pid: str) -> None:
        fake.start_running(pid)
        if finish_first:
            fake.finish(pid)
        for frame in frames(pid):
            await fake.send(frame)
        if not finish_first:
            fake.finish(pid)

    fake.script = script
    async with make_client(fake) as client:
        ledger = Ledger(await client.submit(GRAPH))
        return await ledger.ended_once()


def standard(pid: str) -> list[str | bytes]:
    return [
        msg("execution_start", prompt_id=pid),
        msg("executing", node="2", prompt_id=pid),
        msg("executed", node="2", output=OUTPUT, prompt_id=pid),
        msg("executing", node=None, prompt_id=pid),
    ]


def mutate_data(frame: str | bytes, change: Callable[[dict[str, Any]], Any]) -> str | bytes:
    if isinstance(frame, bytes):
        return frame
    obj = json.loads(frame)
    obj["data"] = change(dict(obj["data"]))
    return json.dumps(obj)


DATA_MUTATIONS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "no prompt_id": lambda d: {k: v for k, v in d.items() if k != "prompt_id"},
    "prompt_id a number": lambda d: {**d, "prompt_id": 5},
    "prompt_id null": lambda d: {**d, "prompt_id": None},
    "node a list": lambda d: {**d, "node": [1]},
    "output a string": lambda d: {**d, "output": "x"},
    "output images wrong": lambda d: {**d, "output": {"images": [5, {"filename": 3}, None]}},
    "data a list": lambda d: [d],
    "data null": lambda d: None,
    "huge value": lambda d: {**d, "value": 10**30, "max": 1e308, "timestamp": 10**50},
    "extra keys": lambda d: {**d, **{f"k{i}": i for i in range(200)}},
}


@pytest.mark.parametrize("position", [0, 1, 2, 3])
@pytest.mark.parametrize("mutation", list(DATA_MUTATIONS))
async def test_each_message_mutated(fake: FakeComfy, mutation: str, position: int, background_failures: Any) -> None:
    """One of the four messages of a run is mutated: the job still completes once with its output
    (from the messages, or from history when the end marker itself was unusable)."""

    def frames(pid: str) -> list[str | bytes]:
        out = standard(pid)
        out[position] = mutate_data(out[position], DATA_MUTATIONS[mutation])
        return out

    status = await run_with(fake, frames)
    assert status.state is JobState.COMPLETED
    if position != 2:  # the `executed` message itself was mutated: its output may be unreadable
        assert [o.filename for o in status.outputs] == ["fake_00001_.png"]


def reorder_end_first(pid: str) -> list[str | bytes]:
    """Item 15: the end marker arrives before `executed`."""
    s = standard(pid)
    return [s[0], s[1], s[3], s[2]]


def duplicated(pid: str) -> list[str | bytes]:
    s = standard(pid)
    return [s[0], s[0], s[1], s[2], s[2], s[3], s[3], s[3]]


def stale_others(pid: str) -> list[str | bytes]:
    other = "someone-else"
    return [msg("executing", node=None, prompt_id=other), msg("execution_error", prompt_id=other),
            *standard(pid), msg("execution_error", prompt_id=pid, exception_message="late")]


def unattributed_end(pid: str) -> list[str | bytes]:
    """`executing null` with no prompt id (a replay) must not end the running job by itself."""
    s = standard(pid)
    return [s[0], s[1], msg("executing", node=None), s[2], s[3]]


def garbage_between(pid: str) -> list[str | bytes]:
    s = standard(pid)
    junk: list[str | bytes] = ["not json", "[]", "null", '{"type": 5}', '{"type": "executing"}',
                               "{" * 10_000, b"", b"\x00", b"\x00\x00\x00\x04\xff\xff\xff\xff",
                               struct.pack(">I", 3) + b"\x00\x00\x00\xffnode", struct.pack(">I", 99) + b"x",
                               preview_frame(b"\x00" * 200_000)]
    return [s[0], *junk, s[1], *junk, s[2], s[3]]


@pytest.mark.parametrize("frames", [reorder_end_first, duplicated, stale_others, unattributed_end, garbage_between])
async def test_sequences(fake: FakeComfy, frames: Callable[[str], list[str | bytes]], background_failures: Any) -> None:
    status = await run_with(fake, frames)
    assert status.state is JobState.COMPLETED
    assert [o.filename for o in status.outputs] == ["fake_00001_.png"]


async def test_end_before_executed_reads_history_once(fake: FakeComfy) -> None:
    """Item 15, at the mechanism: no `executed` by the end marker -> one history read, outputs from it."""
    await run_with(fake, lambda pid: [*standard(pid)[:2], standard(pid)[3]])
    assert fake.requests.count("history") == 1


async def test_a_normal_job_reads_no_history(fake: FakeComfy) -> None:
    await run_with(fake, standard)
    assert fake.requests.count("history") == 0


async def test_stale_poll_answer_never_finishes_a_job_twice(fake: FakeComfy, background_failures: Any) -> None:
    """Item 3: the poller's history read is slow; the job ends on the socket meanwhile. Subscribers see
    `completed` once for every job, also after the stale answer has been handled."""
    release = asyncio.Event()

    async def slow_history(request: web.Request) -> web.StreamResponse:
        pid = request.match_info["pid"]
        await release.wait()
        body = {pid: fake.history[pid]} if pid in fake.history else {}
        fake.requests.append("history-answered")
        return web.json_response(body)

    fake.answers["history"] = None
    runs = []
    sentinel = "sentinel-never-ends"

    async def script(fake: FakeComfy, pid: str) -> None:
        if pid == sentinel:
            await never_ends(fake, pid)
            return
        fake.start_running(pid)
        await fake.send(msg("execution_start", prompt_id=pid))
        fake.finish(pid)  # done server-side; the socket tells only once a history read is in flight
        await fake.until(lambda: "history-wait" in fake.requests, BOUND)
        for frame in standard(pid)[1:]:
            await fake.send(frame)
        runs.append(pid)
        release.set()

    async def history_route(request: web.Request) -> web.StreamResponse:
        fake.requests.append("history-wait")
        return await slow_history(request)

    def handled_stale_answer() -> bool:
        """The poller reads /queue again after the stale answer: one reconciliation runs at a time, so
        it has handled that answer (and any second ending it could cause has been delivered)."""
        if "history-answered" not in fake.requests:
            return False
        return "queue" in fake.requests[fake.requests.index("history-answered"):]

    fake._history_one = history_route  # type: ignore[method-assign]
    fake.script = script
    async with make_client(fake, quiet_poll=0.05) as client:
        # A job that runs for ever keeps the poller reconciling, so each round ends with a /queue read.
        await client.submit(GRAPH, prompt_id=sentinel)
        ledgers = []
        for _ in range(int(os.environ.get("COMFY_NB_SOAK_JOBS", "5"))):  # 80 for a soak
            release.clear()
            fake.requests.clear()
            ledgers.append(Ledger(await client.submit(GRAPH)))
            await ledgers[-1].ended_once()
            await fake.until(handled_stale_answer, BOUND)
    assert len(runs) == len(ledgers)
    for ledger in ledgers:
        assert len(ledger.terminal) == 1


async def test_node_errors_survive_any_order(fake: FakeComfy) -> None:
    """Item 17: a 200 with node_errors is never silent, even when the job ends on the socket before
    the POST's answer is read."""
    node_errors = {"3": {"errors": [{"type": "value_not_in_list", "message": "Value not in list",
                                     "details": "upscale_method: 'bogus'", "extra_info": {"input_name": "x"}}],
                         "dependent_outputs": ["4"], "class_type": "ImageScale"}}

    async def early_end(fake: FakeComfy, pid: str) -> None:
        await default_script(fake, pid)

    async def post_prompt(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        pid = body["prompt_id"]
        fake.posts.append(pid)
        await early_end(fake, pid)  # the whole run goes out on the socket before the answer
        return web.json_response({"prompt_id": pid, "number": 1, "node_errors": node_errors})

    fake._post_prompt = post_prompt  # type: ignore[method-assign]
    async with make_client(fake) as client:
        for _ in range(int(os.environ.get("COMFY_NB_SOAK_JOBS", "10"))):
            ledger = Ledger(await client.submit(GRAPH))
            status = await ledger.ended_once()
            assert status.state is JobState.COMPLETED
            assert [e.node_id for e in status.node_errors] == ["3"]


async def test_slow_submit_is_never_queued_twice(fake: FakeComfy) -> None:
    """Item 4: POST /prompt takes longer than the client's timeout but the server queues it: the
    client finds it by its id instead of sending it again."""
    fake.slow_submit = True
    async with make_client(fake, timeout=1.0) as client:
        ledger = Ledger(await client.submit(GRAPH))
        status = await ledger.ended_once()
    assert status.state is JobState.COMPLETED
    assert len(fake.posts) == 1


async def test_submit_that_never_appears_times_out_without_resending(fake: FakeComfy) -> None:
    async def hang(request: web.Request) -> web.StreamResponse:
        fake.posts.append("x")
        await asyncio.Event().wait()
        raise AssertionError

    fake._post_prompt = hang  # type: ignore[method-assign]
    async with make_client(fake, timeout=1.0) as client:
        with pytest.raises(ComfyTimeout, match="not sent again"):
            await client.submit(GRAPH)
        assert client.jobs == {}
    assert fake.posts == ["x"]
