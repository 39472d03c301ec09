"""Every answer the client parses, mutated: the job still ends exactly once and no background task dies.

Each case serves a bad answer for a while and then a good one: the client must treat the bad one as a
transient fault (log, retry) and finish the job once the server is sane again. Cases where the
server never becomes sane must still end the job, once, within the bound.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web

from comfy_nb import JobState
from comfy_nb.errors import ComfyError, ServerError

from ._fake import GRAPH, OUTPUT, FakeComfy, default_script, msg
from .conftest import BOUND, Ledger, make_client


def bad_for(times: int, bad: Any, good: Callable[..., Any] | None = None) -> Callable[..., Any]:
    """An answer that is ``bad`` for the first ``times`` requests, then the default (``good``)."""
    calls = [0]

    def answer(*args: Any) -> Any:
        calls[0] += 1
        if calls[0] <= times:
            return bad(*args) if callable(bad) else bad
        assert good is not None
        return good(*args)

    return answer


def raw(text: str, status: int = 200) -> Callable[..., web.Response]:
    return lambda *_: web.Response(text=text, status=status, content_type="application/json")


HISTORY_ENTRY_MUTATIONS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "outputs null": lambda e: {**e, "outputs": None},
    "outputs a list": lambda e: {**e, "outputs": [OUTPUT]},
    "node output a string": lambda e: {**e, "outputs": {"2": "x"}},
    "status a string": lambda e: {**e, "status": "success"},
    "status null": lambda e: {**e, "status": None},
    "messages a string": lambda e: {**e, "status": {**e["status"], "messages": "x"}},
    "message pairs broken": lambda e: {**e, "status": {**e["status"], "messages": [[1, 2], ["a"], None]}},
    "completed a string": lambda e: {**e, "status": {"completed": "yes", "status_str": 5}},
    "prompt a number": lambda e: {**e, "prompt": 5},
    "prompt outputs a number": lambda e: {**e, "prompt": [0, "x", {}, {}, 7]},
    "huge timestamp": lambda e: {**e, "status": {**e["status"], "messages": [
        ["execution_start", {"timestamp": 10**40}], ["execution_success", {"timestamp": "soon"}]]}},
    "error data wrong types": lambda e: {**e, "status": {"status_str": "error", "messages": [
        ["execution_error", {"exception_message": 5, "traceback": "x", "node_id": []}]]}},
    "entry a list": lambda e: [e],
    "entry a string": lambda e: "done",
    "entry empty": lambda e: {},
}


@pytest.mark.parametrize("mutation", list(HISTORY_ENTRY_MUTATIONS))
async def test_history_entry_mutations_while_polling(fake: FakeComfy, mutation: str, background_failures: Any) -> None:
    """Item 1: a history entry of an unexpected shape never escapes the reconciler; the job ends once."""
    mutate = HISTORY_ENTRY_MUTATIONS[mutation]

    def good(pid: str) -> Any:
        return {pid: fake.history[pid]} if pid in fake.history else {}

    def bad(pid: str) -> Any:
        return {pid: mutate(fake.history[pid])} if pid in fake.history else {}

    fake.answers["history"] = bad_for(2, bad, good)
    async with make_client(fake, websocket=False) as client:
        ledger = Ledger(await client.submit(GRAPH))
        status = await ledger.ended_once()
    if mutation == "error data wrong types":  # it reads as a failure: that is what it says
        assert status.state is JobState.FAILED and status.error is not None
    elif mutation.startswith(("outputs", "node output")):  # a success whose outputs cannot be read
        assert status.state is JobState.COMPLETED
    else:  # no outcome readable: the next, sane, read finishes it
        assert status.state is JobState.COMPLETED and [o.filename for o in status.outputs] == ["fake_00001_.png"]


@pytest.mark.parametrize("mutation", ["status a string", "entry a string", "entry empty", "outputs null"])
async def test_history_never_readable_still_ends_the_job(fake: FakeComfy, mutation: str) -> None:
    """A server whose history entry never says how the prompt ended: the job still ends, once."""
    mutate = HISTORY_ENTRY_MUTATIONS[mutation]
    fake.answers["history"] = lambda pid: {pid: mutate(fake.history[pid])} if pid in fake.history else {}
    async with make_client(fake, websocket=False) as client:
        ledger = Ledger(await client.submit(GRAPH))
        status = await ledger.ended_once()
    assert status.state in (JobState.FAILED, JobState.COMPLETED)
    if status.state is JobState.FAILED:
        assert status.error is not None and status.prompt_id in status.error.message


HISTORY_BODY_MUTATIONS: dict[str, Any] = {
    "body a list": [],
    "body null": None,
    "body a number": 3,
    "not JSON": raw("<html>proxy error</html>"),
    "500": raw("{}", 500),
    "429": raw("{}", 429),
}


@pytest.mark.parametrize("mutation", [*HISTORY_BODY_MUTATIONS, "entry among 5000 junk keys"])
async def test_history_body_mutations_after_a_socket_loss(
    fake: FakeComfy, mutation: str, background_failures: Any
) -> None:
    """The socket drops mid-run; the history read that follows is garbage twice, then sane."""
    bad = HISTORY_BODY_MUTATIONS.get(mutation) or (  # the entry among many of junk
        lambda pid: {**{f"junk-{i}": [i, None, "x"] for i in range(5000)}, pid: fake.history.get(pid, {})}
    )

    async def script(fake: FakeComfy, pid: str) -> None:
        fake.start_running(pid)
        await fake.send(msg("execution_start", prompt_id=pid))
        await fake.drop_sockets()
        fake.finish(pid)

    fake.script = script
    fake.answers["history"] = bad_for(2, bad, lambda pid: {pid: fake.history[pid]} if pid in fake.history else {})
    async with make_client(fake) as client:
        ledger = Ledger(await client.submit(GRAPH))
        status = await ledger.ended_once()
    assert status.state is JobState.COMPLETED and status.outputs


QUEUE_MUTATIONS: dict[str, Any] = {
    "body a list": [],
    "body null": None,
    "running a number": {"queue_running": 5, "queue_pending": []},
    "item too short": {"queue_running": [[1]], "queue_pending": []},
    "item wrong types": {"queue_running": [["x", 5, None, None, 3]], "queue_pending": []},
    "item a dict": {"queue_running": [{"prompt_id": "x"}], "queue_pending": []},
    "number NaN": raw('{"queue_running": [[NaN, "x", {}, {}, []]], "queue_pending": []}'),
    "not JSON": raw("garbage"),
    "502": raw("bad gateway", 502),
}


@pytest.mark.parametrize("mutation", list(QUEUE_MUTATIONS))
async def test_queue_mutations_never_stop_the_poller(fake: FakeComfy, mutation: str, background_failures: Any) -> None:
    """Item 2: malformed /queue bodies are transient faults; the poller keeps going and the job ends."""
    fake.gate = asyncio.Event()
    fake.answers["queue"] = bad_for(4, QUEUE_MUTATIONS[mutation], fake._queue_default)
    async with make_client(fake, websocket=False) as client:
        ledger = Ledger(await client.submit(GRAPH))
        # let the poller meet every bad answer before the prompt runs
        await fake.until(lambda: fake.answers["queue"] is None or fake.requests.count("queue") >= 4, BOUND)
        fake.gate.set()
        status = await ledger.ended_once()
    assert status.state is JobState.COMPLETED and status.outputs


PROMPT_ANSWERS: dict[str, Any] = {
    "empty object": {},
    "prompt_id a number": {"prompt_id": 5, "number": 1},
    "number a string": {"prompt_id": "x", "number": "one"},
    "node_errors a list": {"prompt_id": "x", "number": 1, "node_errors": []},
    "node_errors entry a string": {"prompt_id": "x", "number": 1, "node_errors": {"2": "bad"}},
    "node_errors errors a string": {"number": 1, "node_errors": {"2": {"errors": "x", "dependent_outputs": 3}}},
    "node_errors error a list": {"number": 1, "node_errors": {"2": {"errors": [[1], None, {"extra_info": 5}]}}},
    "huge number": {"prompt_id": "x", "number": 10**400},
}


@pytest.mark.parametrize("mutation", list(PROMPT_ANSWERS))
async def test_prompt_answer_mutations(fake: FakeComfy, mutation: str, background_failures: Any) -> None:
    """A 200 means queued: odd extras in its body never lose the job."""
    answer = PROMPT_ANSWERS[mutation]
    fake.answers["prompt"] = raw(json.dumps(answer)) if "huge" not in mutation else raw(
        '{"prompt_id": "x", "number": 1' + "0" * 400 + "}")
    async with make_client(fake) as client:
        ledger = Ledger(await client.submit(GRAPH))
        status = await ledger.ended_once()
    assert status.state is JobState.COMPLETED


@pytest.mark.parametrize("body", ["[]", "null", "not json", '"queued"'])
async def test_prompt_answer_that_is_not_an_object_is_a_clear_error(fake: FakeComfy, body: str) -> None:
    fake.answers["prompt"] = raw(body)
    async with make_client(fake) as client:
        with pytest.raises(ServerError, match=r"POST .*/prompt"):
            await client.submit(GRAPH)
        assert client.jobs == {}


OBJECT_INFO_MUTATIONS: dict[str, Any] = {
    "a list": [],
    "null": None,
    "node a number": {"SaveImage": 5},
    "input a string": {"SaveImage": {"input": "x"}},
    "required a number": {"SaveImage": {"input": {"required": 5}}},
    "spec a number": {"SaveImage": {"input": {"required": {"images": 5}}}},
    "hidden empty": {"SaveImage": {"input": {"hidden": {"x": []}}}},
    "order a number": {"SaveImage": {"input": {"required": {"images": [["a"], {}]}}, "input_order": 5}},
    "bounds strings": {"SaveImage": {"input": {"required": {"n": ["INT", {"min": "a", "max": []}]}}}},
    "outputs a number": {"SaveImage": {"output": 5, "output_name": 7, "display_name": 3}},
    "combo options a string": {"SaveImage": {"input": {"required": {"c": ["COMBO", {"options": "ab"}]}}}},
}


@pytest.mark.parametrize("mutation", list(OBJECT_INFO_MUTATIONS))
async def test_object_info_mutations(fake: FakeComfy, mutation: str) -> None:
    """node_defs / choices either work or raise a ComfyError; never TypeError or AttributeError."""
    fake.answers["object_info"] = lambda: OBJECT_INFO_MUTATIONS[mutation]
    async with make_client(fake) as client:
        for call in (client.node_defs, lambda: client.choices("SaveImage", "images")):
            try:
                await call()
            except ComfyError:
                pass


STATS_MUTATIONS: dict[str, Any] = {
    "a list": [],
    "system a number": {"system": 5, "devices": 5},
    "devices wrong": {"system": {"comfyui_version": 3}, "devices": [5, {"name": None, "vram_total": "x"}]},
    "version odd": {"system": {"comfyui_version": "v..9.x"}},
}


@pytest.mark.parametrize("mutation", list(STATS_MUTATIONS))
async def test_system_stats_mutations(fake: FakeComfy, mutation: str) -> None:
    fake.answers["system_stats"] = lambda: STATS_MUTATIONS[mutation]
    async with make_client(fake) as client:
        try:
            caps = await client.capabilities()
        except ComfyError:
            return
        assert caps.version is None or isinstance(caps.version, str)
        assert all(d.vram_total is None or isinstance(d.vram_total, int) for d in caps.devices)


async def test_view_declaring_a_huge_body_is_refused_before_reading(fake: FakeComfy) -> None:
    """Item 16: downloads have a size limit, named in the error."""

    async def huge(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": str(2**31), "Content-Type": "image/png"})
        await response.prepare(request)
        await response.write(b"x" * 1024)
        return response

    fake.answers["view"] = huge
    async with make_client(fake, max_download_size=1 << 20) as client:
        outputs = await (await client.submit(GRAPH)).result(timeout=BOUND)
        with pytest.raises(ServerError, match="max_download_size"):
            await client.download(outputs[0])


async def test_view_streaming_past_the_limit_is_cut_off(fake: FakeComfy) -> None:
    async def endless(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "image/png"})  # chunked, no length
        await response.prepare(request)
        for _ in range(64):
            await response.write(b"x" * 65536)
        return response

    fake.answers["view"] = endless
    async with make_client(fake, max_download_size=256 * 1024) as client:
        outputs = await (await client.submit(GRAPH)).result(timeout=BOUND)
        with pytest.raises(ServerError, match="more than 262144 bytes"):
            await client.download(outputs[0])
        fake.answers["view"] = None
        assert await client.download(outputs[0]) == fake.view_body  # the client is still usable


async def test_view_that_is_not_an_image(fake: FakeComfy) -> None:
    fake.view_body = b"<html>login page</html>"
    async with make_client(fake) as client:
        outputs = await (await client.submit(GRAPH)).result(timeout=BOUND)
        with pytest.raises(ServerError, match="not an image"):
            await client.load_image(outputs[0])


async def test_outcomes_each_end_once(fake: FakeComfy, background_failures: Any) -> None:
    """Completed, failed and interrupted prompts: each delivered once, with the right state."""
    outcomes = {"success": JobState.COMPLETED, "error": JobState.FAILED, "interrupted": JobState.CANCELLED}
    async with make_client(fake) as client:
        for outcome, state in outcomes.items():
            async def script(fake: FakeComfy, pid: str, outcome: str = outcome) -> None:
                await default_script(fake, pid, outcome)

            fake.script = script
            ledger = Ledger(await client.submit(GRAPH))
            assert (await ledger.ended_once()).state is state
