"""Hypothesis: any sequence of server messages and faults leaves the job ended exactly once, within a bound.

Each example runs one prompt against a fresh misbehaving server: a random script of (possibly mutated,
duplicated, stale or garbage) socket messages, socket drops, and bad /queue and /history answers,
ending in a random outcome (completed, failed, interrupted, or forgotten by a restarted server).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from comfy_nb import JobState, JobStatus

from ._fake import GRAPH, OUTPUT, FakeComfy, msg, preview_frame
from .conftest import Ledger, make_client

KINDS = ["execution_start", "execution_cached", "executing", "progress", "progress_state", "executed",
         "execution_success", "execution_error", "execution_interrupted", "end"]
MUTATIONS = ["none", "none", "none", "no prompt_id", "wrong types", "null data", "other prompt"]


def frame(kind: str, pid: str, mutation: str) -> str:
    data: dict[str, Any] = {"prompt_id": pid}
    if kind == "end":
        kind, data["node"] = "executing", None
    elif kind == "executing":
        data["node"] = "1"
    elif kind == "progress":
        data.update(value=1, max=2, node="1")
    elif kind == "progress_state":
        data["nodes"] = {"1": {"value": 1, "max": 1, "state": "finished", "node_id": "1"}}
    elif kind == "executed":
        data.update(node="2", output=OUTPUT)
    elif kind == "execution_cached":
        data["nodes"] = ["1"]
    elif kind == "execution_error":
        data.update(node_id="2", exception_message="boom", exception_type="RuntimeError")
    if mutation == "no prompt_id":
        del data["prompt_id"]
    elif mutation == "wrong types":
        data = {k: [v] if not isinstance(v, list) else 5 for k, v in data.items()}
    elif mutation == "other prompt":
        data["prompt_id"] = "someone-else"
    elif mutation == "null data":
        return json.dumps({"type": kind, "data": None})
    return json.dumps({"type": kind, "data": data})


steps = st.lists(
    st.one_of(
        st.tuples(st.just("send"), st.sampled_from(KINDS), st.sampled_from(MUTATIONS)),
        st.tuples(st.just("garbage"), st.sampled_from(["not json", "{}", '{"type": 1}', "[]"]), st.just("")),
        st.tuples(st.just("binary"), st.sampled_from(["preview", "short", "unknown"]), st.just("")),
        st.tuples(st.just("drop"), st.just(""), st.just("")),
    ),
    max_size=10,
)
faults = st.sampled_from(["none", "garbage", "500", "wrong shape"])


def bad_answer(kind: str) -> Any:
    from aiohttp import web

    if kind == "garbage":
        return web.Response(text="<html>", content_type="text/html")
    if kind == "500":
        return web.Response(status=500, text="{}")
    return {"queue_running": 5} if kind == "wrong shape" else None


async def scenario(script: list[tuple[str, str, str]], outcome: str, history_fault: str, queue_fault: str,
                   faulty_reads: int) -> tuple[JobStatus, list[str], list[logging.LogRecord]]:
    fake = await FakeComfy().start()
    counts = {"history": 0, "queue": 0}

    def faulty(route: str, fault: str) -> Any:
        def answer(*args: Any) -> Any:
            counts[route] += 1
            if fault != "none" and counts[route] <= faulty_reads:
                return bad_answer(fault) if fault != "wrong shape" or route == "queue" else ["x"]
            if route == "queue":
                return fake._queue_default()
            pid = args[0]
            return {pid: fake.history[pid]} if pid in fake.history else {}

        return answer

    fake.answers["history"] = faulty("history", history_fault)
    fake.answers["queue"] = faulty("queue", queue_fault)

    async def run(fake: FakeComfy, pid: str) -> None:
        fake.start_running(pid)
        for action, kind, mutation in script:
            if action == "send":
                await fake.send(frame(kind, pid, mutation))
            elif action == "garbage":
                await fake.send(kind)
            elif action == "binary":
                await fake.send({"preview": preview_frame(), "short": b"\x00\x00", "unknown": b"\x00\x00\x00\x63x"}[kind])
            else:
                await fake.drop_sockets()
        if outcome == "forgotten":  # the server restarted: neither queue nor history knows it
            fake.queue_running.remove(pid)
        else:
            fake.finish(pid, outcome)
            await fake.send(msg("executing", node=None, prompt_id=pid))

    fake.script = run
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: records.append(record) if record.exc_info else None  # type: ignore[method-assign]
    logging.getLogger("comfy_nb").addHandler(handler)
    seen: list[str] = []
    asyncio.get_running_loop().set_exception_handler(lambda _l, ctx: seen.append(str(ctx.get("message"))))
    try:
        async with make_client(fake, quiet_poll=0.1) as client:
            ledger = Ledger(await client.submit(GRAPH))
            status = await ledger.ended_once()
    finally:
        logging.getLogger("comfy_nb").removeHandler(handler)
        await fake.stop()
    return status, seen, records


EXAMPLES = int(os.environ.get("COMFY_NB_SOAK_EXAMPLES", "25"))
"""25 in CI; set ``COMFY_NB_SOAK_EXAMPLES=500`` for a soak run."""


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(script=steps, outcome=st.sampled_from(["success", "error", "interrupted", "forgotten"]),
       history_fault=faults, queue_fault=faults, faulty_reads=st.integers(0, 2))
def test_any_sequence_ends_the_job_exactly_once(
    script: list[tuple[str, str, str]], outcome: str, history_fault: str, queue_fault: str, faulty_reads: int
) -> None:
    status, loop_errors, records = asyncio.run(scenario(script, outcome, history_fault, queue_fault, faulty_reads))
    assert status.terminal
    assert not loop_errors, loop_errors
    assert not records, [r.getMessage() for r in records]
    if outcome == "forgotten" and not any(a == "send" and k in ("end", "execution_error", "execution_interrupted")
                                          for a, k, _ in script):
        assert status.state is JobState.FAILED
