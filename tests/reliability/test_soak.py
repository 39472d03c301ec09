"""Soak: 500 jobs through random faults on a real mock server; every job ends as its faults imply.

Rounds of 10 concurrent jobs, one seeded fault scenario per round (optionally with a socket drop on
top): socket dropped mid-job, history written late, 5xx/429 bursts on one route, worker and socket
stalls, a node failure, cancels of queued and running jobs, and a server restart that loses the
queue. Afterwards each job must be in exactly the state the scenario implies:

- completed: every output downloaded once, a PNG of the job's own size and (inverted) colour;
- failed: the injected node failure (node id and message), or "vanished" after the restart;
- cancelled: the jobs this test cancelled, and only those.

No job may outlive its timeout, no output may be fetched twice (``/view`` 200s counted per file on
the client, requests cross-checked against the server's counter) and none may be lost.
"""

from __future__ import annotations

import asyncio
import io
import os
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from httpx_aiohttp import HttpxAiohttpClient
from PIL import Image

from comfy_nb import AsyncComfyClient, JobState
from comfy_nb.errors import ExecutionError, JobCancelled, JobLost
from comfy_nb.mock import MockServer

from .conftest import report, wait_until

SEED = int(os.environ.get("COMFY_NB_SOAK_SEED", "20260808"))  # another seed explores other fault mixes
JOBS = 500
PER_ROUND = 10
JOB_TIMEOUT = 20.0
DEBUG = bool(os.environ.get("COMFY_NB_SOAK_DEBUG"))

SCENARIOS = (
    "clean",
    "drop_socket",
    "late_history",
    "http_burst",
    "stall_worker",
    "stall_sockets",
    "fail_node",
    "cancel",
    "restart",
)
WEIGHTS = (1, 3, 2, 3, 2, 1, 2, 2, 2)


@dataclass
class Planned:
    index: int
    width: int
    height: int
    color: int
    expect: str = "completed"  # completed | failed_node | vanished | cancelled
    fail_message: str = ""
    slow: bool = False  # holds the worker (a long, interruptible SlowProgressImage step loop)
    job: Any = None
    outcome: str = ""


@dataclass
class Tally:
    jobs: int = 0
    rounds: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    lost: int = 0
    hung: int = 0
    downloads: int = 0
    problems: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"soak: jobs={self.jobs} faults_injected={sum(self.faults.values())} {dict(self.faults)} "
            f"completed={self.outcomes['completed']} failed_as_expected={self.outcomes['failed_node'] + self.outcomes['vanished']} "
            f"(node={self.outcomes['failed_node']}, restart={self.outcomes['vanished']}) "
            f"cancelled={self.outcomes['cancelled']} downloads={self.downloads} lost={self.lost} hung={self.hung} "
            f"rounds={dict(self.rounds)}"
        )


def graph(p: Planned) -> dict[str, Any]:
    inv = f"inv{p.index}"
    g: dict[str, Any] = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": p.width, "height": p.height, "batch_size": 1, "color": p.color}},
        inv: {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "SaveImage", "inputs": {"images": [inv, 0], "filename_prefix": f"soak/j{p.index}"}},
    }
    if p.slow:
        g["2"] = {"class_type": "SlowProgressImage", "inputs": {
            "steps": 1000, "seconds_per_step": 0.01, "width": 8, "height": 8, "send_preview": False,
            "send_text": False, "seed": p.index, "image": ["1", 0]}}
        g[inv]["inputs"]["image"] = ["2", 0]
    return g


def expected_pixel(color: int) -> tuple[int, int, int]:
    r, g, b = (color >> 16) & 255, (color >> 8) & 255, color & 255
    return 255 - r, 255 - g, 255 - b


class ViewCounter:
    """Counts ``/view`` requests and 200 answers per file, as the client's HTTP pool sends them."""

    def __init__(self) -> None:
        self.requests: Counter[tuple[str, str, str]] = Counter()
        self.ok: Counter[tuple[str, str, str]] = Counter()

    @staticmethod
    def key(url: httpx.URL) -> tuple[str, str, str]:
        q = url.params
        return q.get("subfolder", ""), q.get("filename", ""), q.get("type", "")

    async def on_request(self, request: httpx.Request) -> None:
        if request.url.path.endswith("/view"):
            self.requests[self.key(request.url)] += 1

    async def on_response(self, response: httpx.Response) -> None:
        if response.request.url.path.endswith("/view") and response.status_code == 200:
            self.ok[self.key(response.request.url)] += 1


async def run_round(
    client: AsyncComfyClient, server: MockServer, rng: random.Random, scenario: str, plans: list[Planned], tally: Tally
) -> None:
    faults = server.faults
    cancel_targets: list[Planned] = []
    overlay_drop = scenario in ("clean", "late_history", "http_burst", "stall_worker", "fail_node") and rng.random() < 0.4
    if overlay_drop or scenario == "drop_socket":
        faults.drop_sockets(rng.randint(1, 12 * len(plans)), client_id=client.client_id)
    if scenario == "late_history":
        faults.delay_history(rng.uniform(0.02, 0.15), count=rng.randint(1, len(plans)))
        tally.faults["late_history"] += 1
    elif scenario == "http_burst":
        status = rng.choice([500, 502, 503, 504, 429])
        paths = rng.choice([None, ["/prompt"], ["/prompt"], ["/view"], ["/view"], ["/history", "/queue"], ["/ws"]])
        faults.http_errors(rng.randint(1, 3), status=status, paths=paths, retry_after=0.01 if status == 429 else None)
        if scenario == "http_burst" and paths is not None and "/ws" in paths:
            faults.drop_sockets(0, client_id=client.client_id)  # the reconnect meets the burst
    elif scenario == "stall_worker":
        faults.stall(rng.uniform(0.05, 0.3))
        tally.faults["stall_worker"] += 1
    elif scenario == "stall_sockets":
        faults.stall(rng.uniform(0.05, 0.3), target="sockets")
        tally.faults["stall_sockets"] += 1
    elif scenario == "fail_node":
        for victim in rng.sample(plans, rng.randint(1, 2)):
            victim.expect = "failed_node"
            victim.fail_message = f"soak: injected failure in job {victim.index} <b>&</b>"
            faults.fail_node(f"inv{victim.index}", victim.fail_message, exception_type="SoakError", count=1)
            tally.faults["fail_node"] += 1
    elif scenario in ("cancel", "restart"):
        plans[0].slow = True  # runs first and holds the worker, so the queue is known when we act

    for p in plans:
        p.job = await client.submit(graph(p), meta={"index": p.index})
    if scenario in ("cancel", "restart"):
        async def all_on_the_server() -> bool:
            return (await client.queue()).remaining == len(plans)

        await wait_until(all_on_the_server, what="all jobs on the server")
    if scenario == "cancel":
        queue = await client.queue()
        running = {e.prompt_id for e in queue.running}
        assert running == {plans[0].job.prompt_id}, "the slow job must be the running one"
        cancel_targets = [plans[0], *rng.sample(plans[1:], rng.randint(0, len(plans) - 2))]
        for p in cancel_targets:
            p.expect = "cancelled"
        pending_targets = [p for p in cancel_targets if p.job.prompt_id not in running]
        running_targets = [p for p in cancel_targets if p.job.prompt_id in running]
        results = await asyncio.gather(*(p.job.cancel() for p in pending_targets))
        assert all(results), "cancelling queued jobs must report success"
        assert all(await asyncio.gather(*(p.job.cancel() for p in running_targets))), "cancel of the running job"
        tally.faults["cancel_queued"] += len(pending_targets)
        tally.faults["cancel_running"] += len(running_targets)
    elif scenario == "restart":
        server.restart()
        tally.faults["restart"] += 1
        for p in plans:
            p.expect = "vanished"

    for p in plans:
        try:
            await p.job.wait(timeout=JOB_TIMEOUT)
        except Exception as exc:  # ComfyTimeout: the job hung
            tally.hung += 1
            tally.problems.append(f"job {p.index} ({scenario}): {exc}")


async def check_job(client: AsyncComfyClient, p: Planned, tally: Tally, scenario: str) -> None:
    st = p.job.status
    problem = None
    if p.expect == "completed":
        if st.state is not JobState.COMPLETED:
            problem = f"expected completed, got {st.state.value} ({st.error})"
        else:
            outputs = await p.job.result()
            saved = [o for o in outputs if o.folder_type == "output"]
            if len(saved) != 1 or saved[0].subfolder != "soak" or not saved[0].filename.startswith(f"j{p.index}_"):
                problem = f"outputs {outputs!r} are not this job's one image"
            else:
                data = await client.download(saved[0])
                tally.downloads += 1
                with Image.open(io.BytesIO(data)) as img:
                    img.load()
                    if img.size != (p.width, p.height) or img.convert("RGB").getpixel((0, 0)) != expected_pixel(p.color):
                        problem = f"image {img.size} {img.convert('RGB').getpixel((0, 0))} is not the job's"
    elif p.expect == "failed_node":
        try:
            await p.job.result()
            problem = "expected the injected failure, but it completed"
        except ExecutionError as exc:
            if exc.node_id != f"inv{p.index}" or p.fail_message not in str(exc) or exc.exception_type != "SoakError":
                problem = f"wrong failure: {exc!r}"
        except Exception as exc:
            problem = f"expected ExecutionError, got {exc!r}"
    elif p.expect == "vanished":
        try:
            await p.job.result()
            problem = "expected the job lost in the restart, but it completed"
        except JobLost as exc:
            if "vanished" not in str(exc) or "restarted" not in str(exc):
                problem = f"restart loss does not say why: {exc}"
        except Exception as exc:
            problem = f"expected JobLost, got {exc!r}"
    elif p.expect == "cancelled":
        try:
            await p.job.result()
            problem = "expected cancelled, but it completed"
        except JobCancelled:
            pass
        except Exception as exc:
            problem = f"expected JobCancelled, got {exc!r}"
    if problem is None:
        tally.outcomes[p.expect] += 1
    else:
        tally.lost += 1
        tally.problems.append(f"job {p.index} ({scenario}): {problem}")


@pytest.mark.soak
@pytest.mark.timeout(150)
async def test_soak_500_jobs_with_random_faults(fresh_mock: MockServer, record_property: Any) -> None:
    rng = random.Random(SEED)
    server = fresh_mock
    views = ViewCounter()
    http = HttpxAiohttpClient(
        base_url=server.url, timeout=httpx.Timeout(30.0, connect=10.0),
        event_hooks={"request": [views.on_request], "response": [views.on_response]},
    )
    tally = Tally()
    started = time.monotonic()
    sockets0, http0 = server.stats.sockets_dropped, server.stats.http_faults
    try:
        async with AsyncComfyClient(server.url, http_client=http, poll_interval=0.1, quiet_poll=0.5) as client:
            index = 0
            while index < JOBS:
                scenario = rng.choices(SCENARIOS, WEIGHTS)[0]
                n = min(PER_ROUND, JOBS - index)
                if scenario in ("cancel", "fail_node") and n < 3:
                    scenario = "clean"
                plans = [
                    Planned(index + k, rng.randint(1, 24), rng.randint(1, 24), rng.randrange(1 << 24)) for k in range(n)
                ]
                index += n
                tally.rounds[scenario] += 1
                tally.jobs += n
                t_round = time.monotonic()
                await run_round(client, server, rng, scenario, plans, tally)
                if DEBUG:
                    print(f"round {tally.jobs // PER_ROUND} {scenario}: {time.monotonic() - t_round:.2f}s", flush=True)
                for p in plans:
                    await check_job(client, p, tally, scenario)
                server.faults.clear()  # after the downloads, which a /view burst is aimed at
                assert not client.jobs, f"jobs still tracked after round ({scenario}): {list(client.jobs)}"
    finally:
        await http.aclose()
    tally.faults["socket_drops"] = server.stats.sockets_dropped - sockets0
    tally.faults["http_5xx_429"] = server.stats.http_faults - http0
    line = tally.line() + f" seconds={time.monotonic() - started:.1f}"
    report(line)
    record_property("soak_tally", line)

    twice = {k: v for k, v in views.ok.items() if v != 1}
    assert not twice, f"outputs fetched more than once: {twice}\n{line}"
    assert sum(views.ok.values()) == tally.downloads == tally.outcomes["completed"], line
    assert sum(views.requests.values()) == server.stats.requests["GET /view"], "a /view request the client did not count"
    assert tally.hung == 0 and tally.lost == 0, line + "\n" + "\n".join(tally.problems[:20])
    assert tally.jobs == JOBS == sum(tally.outcomes.values()), line
    for kind in ("completed", "failed_node", "vanished", "cancelled"):
        assert tally.outcomes[kind] > 0, f"the seeded run never produced a {kind} job: {line}"
    assert tally.faults["socket_drops"] > 0 and tally.faults["http_5xx_429"] > 0, line
