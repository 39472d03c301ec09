"""Issue 9: the same model-free job side by side for every client, in one run.

Job: ``EmptyImage(8x8, colour i) -> SaveImage("bench_<run>/img")``; submit, wait for the end,
download the output image. Clients, each in its own process (ComfyScript patches asyncio globally),
taking turns in blocks (the order rotates each block) so drift hits all alike:

- ``bare_httpx``: ``httpx.AsyncClient`` + ``websockets``: POST /prompt, wait for ``executing null``,
  GET /history/{id}, GET /view (the classic loop of ComfyUI's own websocket example);
- ``bare_aiohttp``: the same loop on one ``aiohttp.ClientSession`` (HTTP and WebSocket);
- ``comfy_nb_async``: ``AsyncComfyClient.submit`` -> ``job.result()`` -> ``client.download``;
- ``comfy_nb_blocking``: the same with ``ComfyClient``;
- ``comfyscript`` (if ``comfy-script`` is installed): ``load(url)``, ``with Workflow(): ... SaveImage``,
  ``images.wait()`` as its README shows;
- ``comfy_api_simplified`` (if installed): ``ComfyApiWrapper(url).queue_and_wait_images(wf, title)``.

Every image is decoded and its size and pixels checked after the timed part. Each worker uses a
fresh output subfolder, so SaveImage's folder scan costs all clients the same. ``ratio`` is against
the bare httpx loop; comfy_nb records also carry ``ratio_vs_aiohttp``. Goals (issue 9): comfy_nb
<= 0.85x bare httpx and <= 1.15x bare aiohttp per job, no job lost.

Run: ``python -m benchmarks clients`` (built-in mock) or ``python -m benchmarks clients --url URL``.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import io
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from typing import Any

from ._common import finished_prompt, mock_server_process, record

CLIENTS = ["bare_httpx", "bare_aiohttp", "comfy_nb_async", "comfy_nb_blocking", "comfyscript", "comfy_api_simplified"]
WARMUP = 5


def job_graph(i: int, run: str) -> dict[str, Any]:
    return {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": i % 16777216},
              "_meta": {"title": "Empty Image"}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": f"bench_{run}/img"},
              "_meta": {"title": "Save Image"}},
    }


def rgb(i: int) -> tuple[int, int, int]:
    c = i % 16777216
    return (c >> 16) & 255, (c >> 8) & 255, c & 255


def installed(name: str) -> bool:
    import importlib.util

    module = {"comfyscript": "comfy_script", "comfy_api_simplified": "comfy_api_simplified"}.get(name)
    return module is None or importlib.util.find_spec(module) is not None


# ---------------------------------------------------------------------------- the clients (worker side)


async def _bare_httpx(url: str, run: str, seqs: list[int]) -> list[tuple[int, bytes]]:
    import httpx
    import websockets

    cid = uuid.uuid4().hex
    ws_url = url.replace("http", "ws", 1) + f"/ws?clientId={cid}"
    out = []
    async with httpx.AsyncClient(base_url=url) as http, websockets.connect(ws_url, max_size=None) as ws:
        for i in seqs:
            r = await http.post("/prompt", json={"prompt": job_graph(i, run), "client_id": cid})
            r.raise_for_status()
            pid = r.json()["prompt_id"]
            while finished_prompt(await ws.recv()) != pid:
                pass
            h = (await http.get(f"/history/{pid}")).json()[pid]
            image = h["outputs"]["2"]["images"][0]
            v = await http.get("/view", params=image)
            v.raise_for_status()
            out.append((i, v.content))
    return out


async def _bare_aiohttp(url: str, run: str, seqs: list[int]) -> list[tuple[int, bytes]]:
    import aiohttp

    cid = uuid.uuid4().hex
    out = []
    async with aiohttp.ClientSession(url) as http, http.ws_connect(f"/ws?clientId={cid}", max_msg_size=0) as ws:
        for i in seqs:
            async with http.post("/prompt", json={"prompt": job_graph(i, run), "client_id": cid}) as r:
                r.raise_for_status()
                pid = (await r.json())["prompt_id"]
            async for frame in ws:
                if frame.type == aiohttp.WSMsgType.TEXT and finished_prompt(frame.data) == pid:
                    break
            async with http.get(f"/history/{pid}") as r:
                image = (await r.json())[pid]["outputs"]["2"]["images"][0]
            async with http.get("/view", params=image) as r:
                r.raise_for_status()
                out.append((i, await r.read()))
    return out


async def _comfy_nb_async(url: str, run: str, seqs: list[int], timed: Any) -> list[tuple[int, bytes]]:
    from comfy_nb import AsyncComfyClient

    out = []
    async with AsyncComfyClient(url) as client:
        for k, i in enumerate(seqs):
            if k == WARMUP:
                timed.start()
            job = await client.submit(job_graph(i, run))
            outputs = await job.result(timeout=60)
            data = await client.download(outputs[0])
            if k >= WARMUP:
                out.append((i, data))
    return out


def worker(name: str, url: str, run: str, start: int, n: int) -> dict[str, Any]:
    """Run WARMUP + n jobs with one client; time the last n; then check every image."""
    seqs = list(range(start, start + WARMUP + n))

    class Timer:
        t0 = 0.0

        def start(self) -> None:
            self.t0 = time.perf_counter()

    timer = Timer()
    results: list[tuple[int, bytes]] = []
    if name in ("bare_httpx", "bare_aiohttp"):
        fn = _bare_httpx if name == "bare_httpx" else _bare_aiohttp

        async def both() -> list[tuple[int, bytes]]:
            await fn(url, run, seqs[:WARMUP])
            timer.start()
            return await fn(url, run, seqs[WARMUP:])

        results = asyncio.run(both())
    elif name == "comfy_nb_async":
        results = asyncio.run(_comfy_nb_async(url, run, seqs, timer))
    elif name == "comfy_nb_blocking":
        from comfy_nb import ComfyClient

        with ComfyClient(url) as client:
            for k, i in enumerate(seqs):
                if k == WARMUP:
                    timer.start()
                outputs = client.submit(job_graph(i, run)).result(timeout=60)
                data = client.download(outputs[0])
                if k >= WARMUP:
                    results.append((i, data))
    elif name == "comfyscript":
        import contextlib

        lost = 0
        busy = 0.0  # time of the jobs that finished (a lost job's 10 s wait is not counted)
        with contextlib.redirect_stdout(io.StringIO()):  # it prints queue sizes and images
            from comfy_script.runtime import Workflow, load

            load(url)
            from comfy_script.runtime import nodes as N

            for k, i in enumerate(seqs):
                t_job = time.perf_counter()
                with Workflow():
                    image = N.EmptyImage(8, 8, 1, i % 16777216)
                    saved = N.SaveImage(image, f"bench_{run}/img")
                box: list[Any] = []
                waiter = threading.Thread(target=functools.partial(_append_when_done, box, saved), daemon=True)
                waiter.start()
                waiter.join(10)  # its watcher can miss the end of a fast prompt and wait for ever
                batch = box[0] if box else None
                if batch is None:
                    lost += 1
                    if lost >= 3:
                        break  # enough to show it; the rest of the block counts as lost
                    continue
                if k >= WARMUP:
                    busy += time.perf_counter() - t_job
                    buf = io.BytesIO()
                    batch[0].save(buf, format="PNG")  # re-encoded for the common pixel check (8x8)
                    results.append((i, buf.getvalue()))
        timer.t0 = time.perf_counter() - busy
    elif name == "comfy_api_simplified":
        from comfy_api_simplified import ComfyApiWrapper, ComfyWorkflowWrapper

        api = ComfyApiWrapper(url)
        for k, i in enumerate(seqs):
            if k == WARMUP:
                timer.start()
            images = api.queue_and_wait_images(ComfyWorkflowWrapper(job_graph(i, run)), "Save Image")
            if k >= WARMUP:
                results.append((i, next(iter(images.values()))))
    else:
        raise ValueError(name)
    seconds = time.perf_counter() - timer.t0
    # outside the timed part: every image decodes, has the right size and the right pixels
    from PIL import Image

    bad = 0
    for i, data in results:
        with Image.open(io.BytesIO(data)) as img:
            px = img.convert("RGB")
            if px.size != (8, 8) or px.getpixel((0, 0)) != rgb(i) or px.getpixel((7, 7)) != rgb(i):
                bad += 1
    return {"client": name, "seconds": seconds, "jobs": len(results), "expected": n, "bad_images": bad}


def _spawn(name: str, url: str, run: str, start: int, n: int) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.bench_clients", "--worker", name, "--url", url, "--run", run,
           "--start", str(start), "-n", str(n)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180,
                              cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    except subprocess.TimeoutExpired:
        return {"client": name, "error": "worker hung for 180 s (a job never finished)"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"client": name, "error": (proc.stderr or proc.stdout)[-800:]}
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def run(quick: bool = False, url: str | None = None) -> list[dict[str, Any]]:
    n, blocks = (20, 2) if quick else (40, 5)
    clients = [c for c in CLIENTS if installed(c)]
    skipped = [c for c in CLIENTS if c not in clients]
    runid = uuid.uuid4().hex[:6]

    def go(server: str) -> dict[str, list[dict[str, Any]]]:
        got: dict[str, list[dict[str, Any]]] = {c: [] for c in clients}
        seq = 1
        for b in range(blocks):
            order = clients[b % len(clients):] + clients[: b % len(clients)]
            for c in order:
                got[c].append(_spawn(c, server, f"{runid}_{c}_{b}", seq, n))
                seq += n + WARMUP
        return got

    if url:
        got = go(url)
    else:
        with mock_server_process() as server:
            got = go(server)

    def per_job_ms(c: str) -> tuple[float, list[float], int, list[str]]:
        rows = got[c]
        errors = [r["error"] for r in rows if "error" in r]
        ok = [r for r in rows if "error" not in r]
        per_block = [1000 * r["seconds"] / r["jobs"] for r in ok if r["jobs"]]
        lost = sum(r["expected"] - r["jobs"] + r["bad_images"] for r in ok) + n * len(errors)
        total_s = sum(r["seconds"] for r in ok)
        total_jobs = sum(r["jobs"] for r in ok)
        return (1000 * total_s / total_jobs if total_jobs else float("nan")), per_block, lost, errors

    base, _, _, _ = per_job_ms("bare_httpx")
    aio, _, _, _ = per_job_ms("bare_aiohttp")
    records = []
    for c in clients:
        value, per_block, lost, errors = per_job_ms(c)
        extra: dict[str, Any] = {
            "jobs": n * blocks, "blocks": blocks, "lost_or_bad": lost,
            "block_ms": [round(x, 3) for x in per_block],
            "median_block_ms": round(statistics.median(per_block), 3) if per_block else None,
            "server": url or "built-in mock (own process)",
            "lost_note": "a job is lost when the client never reports its end (10 s per job) or its image is wrong",
            "baseline_is": "bare httpx+websockets loop (POST /prompt, executing null, GET /history, GET /view)",
        }
        if c.startswith("comfy_nb"):
            extra["ratio_vs_aiohttp"] = round(value / aio, 3) if aio else None
            extra["goal"] = "<= 0.85 x bare_httpx and <= 1.15 x bare_aiohttp"
        if errors:
            extra["errors"] = errors[:2]
        records.append(record(f"clients_{c}_per_job", value, "ms/job", base, **extra))
    for c in skipped:
        records.append({"name": f"clients_{c}_per_job", "skipped": "not installed"})
    return records


def _main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--worker", required=True)
    p.add_argument("--url", required=True)
    p.add_argument("--run", required=True)
    p.add_argument("--start", type=int, default=0)
    p.add_argument("-n", type=int, default=40)
    a = p.parse_args()
    result = worker(a.worker, a.url, a.run, a.start, a.n)
    print(json.dumps(result), flush=True)
    os._exit(0)  # ComfyScript leaves a watcher thread running


if __name__ == "__main__":
    _main()


def _append_when_done(box: list[Any], saved: Any) -> None:
    box.append(saved.wait())
