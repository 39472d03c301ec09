"""One client's side of the client benchmark: ``python -m benchmarks._client_workers NAME --url URL``.

The worker sets its client up once (one connection kept for the whole run), prints a ready line, then
runs one block of jobs per command line read from stdin (``{"start", "n", "warmup", "prefix"}``) and
prints one JSON line per block, until stdin closes. The parent interleaves short blocks of every client.

Every client does the same job: ``EmptyImage(8x8, colour i) -> SaveImage``, submit, wait for the end,
get the image's bytes (or decoded image). For every client:

- setup (imports, connecting, loading node definitions) and warm-up jobs are outside the clock;
- each timed job has its own clock, started before the job's first line and stopped when the image is
  in hand; the pixel check runs after all jobs, outside the clock;
- a job that fails or does not end within ``JOB_TIMEOUT`` is recorded one by one (sequence number,
  prompt id when the client exposes it, cause, and what the server's history says about that prompt)
  and the worker goes on with the next job; after ``MAX_LOST`` lost jobs in all it submits no more,
  and the jobs of this and later blocks are reported as ``not_run`` (never counted as lost).

The bare loops are what a careful programmer writes against the protocol: one HTTP connection and
one WebSocket kept for the whole run, the prompt id chosen by the client (so no message can arrive
for an unknown prompt), outputs taken from ``executed`` messages (no history read), the job's end
from ``executing {node: null}``, then ``GET /view``. This is the same protocol work comfy_nb does.

This module imports only the standard library at the top: it also runs in the peers venv.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import signal
import sys
import time
import traceback
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the peers venv runs this file without comfy_nb
    from comfy_nb import AsyncComfyClient

JOB_TIMEOUT = 5.0  # a job of a few ms that has not ended in 5 s is lost
MAX_LOST = 10  # a worker stops after this many lost jobs; the jobs it did not submit are counted as not run
Result = Any  # image bytes, or a decoded PIL image for clients that hand back images


def job_graph(i: int, prefix: str) -> dict[str, Any]:
    return {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": i % 16777216},
              "_meta": {"title": "Empty Image"}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": prefix},
              "_meta": {"title": "Save Image"}},
    }


def rgb(i: int) -> tuple[int, int, int]:
    c = i % 16777216
    return (c >> 16) & 255, (c >> 8) & 255, c & 255


class Run:
    """One worker's session: the current block's per-job clock, results and lost jobs."""

    def __init__(self, name: str, url: str, history_url: str | None = None) -> None:
        self.name, self.url = name, url
        self.history_url = history_url or url  # where a lost prompt's history is read (the server behind a proxy)
        self.seqs: list[int] = []
        self.warmup = 0
        self.prefix = ""
        self.lost_before = 0  # lost in earlier blocks
        self.ms: list[float] = []
        self.results: list[tuple[int, Result]] = []
        self.lost: list[dict[str, Any]] = []
        self.pid: str | None = None  # the current job's prompt id, when the client exposes it
        self.not_run = 0
        self.ready = False

    def give_up(self, k: int) -> bool:
        """True (and the rest counted as not run) once MAX_LOST jobs are lost."""
        if self.lost_before + len(self.lost) < MAX_LOST:
            return False
        self.not_run = sum(1 for j in range(k, len(self.seqs)) if self.timed(j))
        return True

    def timed(self, k: int) -> bool:
        return k >= self.warmup

    def done(self, k: int, i: int, t0: float, result: Result) -> None:
        if self.timed(k):
            self.ms.append(1000 * (time.perf_counter() - t0))
            self.results.append((i, result))

    def lose(self, k: int, i: int, exc: BaseException) -> None:
        cause = f"{type(exc).__name__}: {exc}"[:300] if str(exc) else type(exc).__name__
        if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
            cause = f"no end within {JOB_TIMEOUT:g} s ({cause})"
        self.lost.append({"seq": i, "warmup": not self.timed(k), "prompt_id": self.pid, "cause": cause})

    def next_block(self) -> bool:
        """Read the next command; False when stdin is closed (the run is over)."""
        if not self.ready:  # the first call comes after the client's setup
            self.ready = True
            self._emit({"client": self.name, "ready": True})
        line = sys.stdin.readline()
        if not line.strip():
            return False
        cmd = json.loads(line)
        self.lost_before += len(self.lost)
        self.seqs = list(range(cmd["start"], cmd["start"] + cmd["warmup"] + cmd["n"]))
        self.warmup, self.prefix = cmd["warmup"], cmd["prefix"]
        self.ms, self.results, self.lost, self.not_run = [], [], [], 0
        return True

    def report(self, error: str | None = None) -> None:
        """The block's JSON line (pixel checks and the server's word on lost prompts, outside the clock)."""
        server_says(self.history_url, self.lost)
        self._emit({"client": self.name, "ms": [round(x, 4) for x in self.ms], "lost": self.lost,
                    "not_run": self.not_run, "bad": check(self.results), "error": error})

    def _emit(self, line: dict[str, Any]) -> None:
        out = sys.__stdout__  # the real stdout, even inside a peer's redirect_stdout
        assert out is not None
        out.write("\n" + json.dumps(line) + "\n")
        out.flush()


async def run_async(run: Run, one: Callable[[int], Awaitable[Result]]) -> None:
    for k, i in enumerate(run.seqs):
        if run.give_up(k):
            return
        run.pid = None
        t0 = time.perf_counter()
        try:
            result = await asyncio.wait_for(one(i), JOB_TIMEOUT)
        except Exception as exc:
            run.lose(k, i, exc)
            continue
        run.done(k, i, t0, result)


async def serve_async(run: Run, one: Callable[[int], Awaitable[Result]]) -> None:
    while await asyncio.to_thread(run.next_block):
        await run_async(run, one)
        run.report()


def serve_blocking(run: Run, one: Callable[[int], Result]) -> None:
    while run.next_block():
        run_blocking(run, one)
        run.report()


class _Alarm(Exception):
    pass


def run_blocking(run: Run, one: Callable[[int], Result]) -> None:
    """Each job in the main thread (as a script would call it), bounded by SIGALRM."""

    def ring(*_: object) -> None:
        raise _Alarm(f"no end within {JOB_TIMEOUT:g} s")

    signal.signal(signal.SIGALRM, ring)
    for k, i in enumerate(run.seqs):
        if run.give_up(k):
            return
        run.pid = None
        t0 = time.perf_counter()
        signal.setitimer(signal.ITIMER_REAL, JOB_TIMEOUT)
        try:
            result = one(i)
        except Exception as exc:
            signal.setitimer(signal.ITIMER_REAL, 0)
            run.lose(k, i, exc)
            continue
        signal.setitimer(signal.ITIMER_REAL, 0)
        run.done(k, i, t0, result)


# ---------------------------------------------------------------------------- bare protocol loops


def _end_or_outputs(frame: str, pid: str, outputs: list[dict[str, Any]]) -> bool:
    """Collect ``executed`` images for ``pid``; True at its ``executing {node: null}``. Errors raise."""
    msg = json.loads(frame)
    data = msg.get("data") or {}
    if data.get("prompt_id") != pid:
        return False
    kind = msg.get("type")
    if kind == "executed":
        outputs.extend((data.get("output") or {}).get("images") or [])
    elif kind == "execution_error":
        raise RuntimeError(f"execution_error: {data.get('exception_message')}")
    elif kind == "executing" and data.get("node") is None:
        return True
    return False


async def bare_aiohttp(url: str, run: Run) -> None:
    import aiohttp

    cid = uuid.uuid4().hex
    async with aiohttp.ClientSession(url) as http, http.ws_connect(f"/ws?clientId={cid}", max_msg_size=0) as ws:

        async def one(i: int) -> bytes:
            pid = run.pid = str(uuid.uuid4())
            body = {"prompt": job_graph(i, run.prefix), "client_id": cid, "prompt_id": pid}
            async with http.post("/prompt", json=body) as r:
                r.raise_for_status()
                await r.read()
            outputs: list[dict[str, Any]] = []
            async for frame in ws:
                if frame.type == aiohttp.WSMsgType.TEXT and _end_or_outputs(frame.data, pid, outputs):
                    break
            async with http.get("/view", params=outputs[0]) as r:
                r.raise_for_status()
                return await r.read()

        await serve_async(run, one)


async def bare_httpx(url: str, run: Run) -> None:
    import httpx
    import websockets

    cid = uuid.uuid4().hex
    ws_url = url.replace("http", "ws", 1) + f"/ws?clientId={cid}"
    async with httpx.AsyncClient(base_url=url) as http, websockets.connect(ws_url, max_size=None) as ws:

        async def one(i: int) -> bytes:
            pid = run.pid = str(uuid.uuid4())
            r = await http.post("/prompt", json={"prompt": job_graph(i, run.prefix), "client_id": cid, "prompt_id": pid})
            r.raise_for_status()
            outputs: list[dict[str, Any]] = []
            while True:
                frame = await ws.recv()
                if isinstance(frame, str) and _end_or_outputs(frame, pid, outputs):
                    break
            v = await http.get("/view", params=outputs[0])
            v.raise_for_status()
            return v.content

        await serve_async(run, one)


async def bare_httpx_aiohttp(url: str, run: Run) -> None:
    """The bare aiohttp loop with its HTTP through httpx's public API over the httpx-aiohttp transport,
    the one HTTP path comfy_nb may take (issue 14); its socket stays aiohttp's. Against ``bare_aiohttp``
    it is what that path costs any client; comfy_nb against it is what comfy_nb adds on top."""
    import aiohttp
    import httpx
    from httpx_aiohttp import AiohttpTransport

    cid = uuid.uuid4().hex
    async with httpx.AsyncClient(base_url=url, transport=AiohttpTransport()) as http, \
            aiohttp.ClientSession(url) as session, session.ws_connect(f"/ws?clientId={cid}", max_msg_size=0) as ws:

        async def one(i: int) -> bytes:
            pid = run.pid = str(uuid.uuid4())
            r = await http.post("/prompt", json={"prompt": job_graph(i, run.prefix), "client_id": cid, "prompt_id": pid})
            r.raise_for_status()
            outputs: list[dict[str, Any]] = []
            async for frame in ws:
                if frame.type == aiohttp.WSMsgType.TEXT and _end_or_outputs(frame.data, pid, outputs):
                    break
            v = await http.get("/view", params=outputs[0])
            v.raise_for_status()
            return v.content

        await serve_async(run, one)


# ---------------------------------------------------------------------------- comfy_nb


def _comfy_nb_http(variant: str, url: str) -> Any:
    """The HTTP client comfy_nb is given: None (its own, today's path) or a public httpx client."""
    if variant == "comfy_nb_async":
        return None
    import httpx

    if variant == "comfy_nb_async_httpx_aiohttp":
        from httpx_aiohttp import AiohttpTransport

        return httpx.AsyncClient(base_url=url, transport=AiohttpTransport())
    if variant == "comfy_nb_async_httpx":
        return httpx.AsyncClient(base_url=url)
    raise ValueError(variant)


async def comfy_nb_async(url: str, run: Run, variant: str) -> None:
    from comfy_nb import AsyncComfyClient

    http = _comfy_nb_http(variant, url)
    async with AsyncComfyClient(url, http_client=http) as client:
        await _serve_comfy_nb(client, run)
    if http is not None:
        await http.aclose()


async def _serve_comfy_nb(client: AsyncComfyClient, run: Run) -> None:
    """The job comfy_nb's async client runs, on any kind of server: submit, wait, download the image."""

    async def one(i: int) -> bytes:
        job = await client.submit(job_graph(i, run.prefix))
        run.pid = job.prompt_id
        outputs = await job.result(timeout=JOB_TIMEOUT)
        return await client.download(outputs[0])

    await serve_async(run, one)


async def comfy_nb_v2(url: str, run: Run) -> None:
    """comfy_nb's client on a Comfy API v2 endpoint (``url`` is a comfy-api-proxy): the same Job API."""
    from comfy_nb import AsyncComfyClient

    async with AsyncComfyClient(url, kind="v2") as client:
        await _serve_comfy_nb(client, run)


def comfy_nb_blocking(url: str, run: Run) -> None:
    from comfy_nb import ComfyClient

    with ComfyClient(url) as client:

        def one(i: int) -> bytes:
            job = client.submit(job_graph(i, run.prefix))
            run.pid = job.prompt_id
            outputs = job.result(timeout=JOB_TIMEOUT)
            return client.download(outputs[0])

        serve_blocking(run, one)


# ---------------------------------------------------------------------------- peers (in the peers venv)


def comfyscript_sync(url: str, run: Run) -> None:
    """As ComfyScript's README shows: ``load(url)``, then ``with Workflow(wait=True):`` in the main thread."""
    with contextlib.redirect_stdout(io.StringIO()):  # it prints the queue and node counts
        from comfy_script.runtime import Workflow, load, queue

        load(url)
        queue.watch_display(False)
        from comfy_script.runtime import nodes as N

    def one(i: int) -> Any:
        wf = Workflow(wait=True)
        try:
            with wf:
                image = N.EmptyImage(8, 8, 1, i % 16777216)
                saved = N.SaveImage(image, run.prefix)
        finally:
            run.pid = wf.task.prompt_id if getattr(wf, "task", None) else None
        return saved.wait()[0]

    with contextlib.redirect_stdout(io.StringIO()):
        serve_blocking(run, one)


async def comfyscript_async(url: str, run: Run) -> None:
    """ComfyScript's documented async path: ``await _load``, ``async with Workflow()``, ``await`` the output."""
    from comfy_script import runtime
    from comfy_script.runtime import Workflow, queue

    with contextlib.redirect_stdout(io.StringIO()):
        await runtime._load(url)
        queue.watch_display(False)
    from comfy_script.runtime import nodes as N

    async def one(i: int) -> Any:
        async with Workflow() as wf:
            image = N.EmptyImage(8, 8, 1, i % 16777216)
            saved = N.SaveImage(image, run.prefix)
        run.pid = wf.task.prompt_id if wf.task else None
        return (await saved)[0]

    with contextlib.redirect_stdout(io.StringIO()):
        await serve_async(run, one)


def comfy_api_simplified(url: str, run: Run) -> None:
    from comfy_api_simplified import ComfyApiWrapper, ComfyWorkflowWrapper

    api = ComfyApiWrapper(url)

    def one(i: int) -> bytes:
        images = api.queue_and_wait_images(ComfyWorkflowWrapper(job_graph(i, run.prefix)), "Save Image")
        image: bytes = next(iter(images.values()))
        return image

    serve_blocking(run, one)


def comfy_sdk_proxy(url: str, run: Run) -> None:
    """comfy-sdk's README path (``Comfy()``, ``workflows.from_json``, ``run``, ``get_outputs(...).to_bytes()``)
    with ``COMFY_BASE_URL`` set to a comfy-api-proxy in front of the server (``url`` is the proxy)."""
    os.environ["COMFY_BASE_URL"] = url
    from comfy_sdk import Comfy

    client = Comfy()

    def one(i: int) -> bytes:
        job = client.submit(client.workflows.from_json(job_graph(i, run.prefix)))
        run.pid = getattr(job, "id", None)
        job.wait(timeout=JOB_TIMEOUT)
        data: bytes = job.get_outputs("2")[0].to_bytes()
        return data

    serve_blocking(run, one)


def work(name: str, url: str, run: Run) -> None:
    if name == "bare_aiohttp":
        asyncio.run(bare_aiohttp(url, run))
    elif name == "bare_httpx":
        asyncio.run(bare_httpx(url, run))
    elif name == "bare_httpx_aiohttp":
        asyncio.run(bare_httpx_aiohttp(url, run))
    elif name.startswith("comfy_nb_async"):
        asyncio.run(comfy_nb_async(url, run, name))
    elif name == "comfy_nb_blocking":
        comfy_nb_blocking(url, run)
    elif name == "comfy_nb_v2":
        asyncio.run(comfy_nb_v2(url, run))
    elif name == "comfyscript_sync":
        comfyscript_sync(url, run)
    elif name == "comfyscript_async":
        asyncio.run(comfyscript_async(url, run))
    elif name == "comfy_api_simplified":
        comfy_api_simplified(url, run)
    elif name == "comfy_sdk_proxy":
        comfy_sdk_proxy(url, run)
    else:
        raise ValueError(f"unknown client {name!r}")


def check(results: list[tuple[int, Result]]) -> list[dict[str, Any]]:
    """Every image decodes, is 8x8 and has the job's colour (outside the clock)."""
    from PIL import Image

    bad = []
    for i, result in results:
        img = Image.open(io.BytesIO(result)) if isinstance(result, bytes) else result
        px = img.convert("RGB")
        if px.size != (8, 8) or px.getpixel((0, 0)) != rgb(i) or px.getpixel((7, 7)) != rgb(i):
            bad.append({"seq": i, "cause": f"wrong image: size {px.size}, pixel {px.getpixel((0, 0))}"})
    return bad


def server_says(url: str, lost: list[dict[str, Any]]) -> None:
    """Evidence for each lost job: what the server's history says about its prompt (outside the clock)."""
    import urllib.request

    for item in lost:
        if not item["prompt_id"]:
            continue
        try:
            with urllib.request.urlopen(f"{url}/history/{item['prompt_id']}", timeout=5) as r:
                entry = json.loads(r.read()).get(item["prompt_id"])
        except Exception as exc:
            item["server_history"] = f"unreadable ({type(exc).__name__})"
            continue
        status = (entry or {}).get("status") or {}
        item["server_history"] = status.get("status_str", "present") if entry else "absent"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("name")
    p.add_argument("--url", required=True)
    p.add_argument("--history-url", default=None)
    a = p.parse_args()
    run = Run(a.name, a.url, a.history_url)
    try:
        work(a.name, a.url, run)
    except Exception:
        run.not_run = sum(1 for k in range(len(run.seqs)) if run.timed(k)) - len(run.ms)
        if not run.ready:
            run.next_block()  # the parent waits for a ready line, then for this block's report
        run.report(traceback.format_exc()[-600:])
    os._exit(0)  # some peers leave non-daemon threads running


if __name__ == "__main__":
    main()
