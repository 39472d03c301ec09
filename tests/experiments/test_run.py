"""End to end on real mock servers: pools with a server killed, resume, cancel, grid, table, provenance."""

from __future__ import annotations

import asyncio
import json
import pathlib
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from PIL import Image

from comfy_nb import AsyncComfyClient, ComfyClient
from comfy_nb.errors import ComfyError, WorkflowError
from comfy_nb.experiments import CellResult, ServerPool, Sweep, SweepRun, run_sweep
from comfy_nb.mock import MockServer
from comfy_nb.widgets import SweepGrid
from comfy_nb.workflows import Workflow

TIMEOUT = 60

POOL_OPTIONS: dict[str, Any] = {"health_interval": 0.05, "down_after": 2, "probe_timeout": 2.0, "max_retries": 0}


def files_under(path: pathlib.Path) -> list[pathlib.Path]:
    return sorted(p for p in path.rglob("*") if p.is_file())


def set_when(event: asyncio.Event, predicate: Callable[[CellResult], bool]) -> Callable[[CellResult], None]:
    """A listener that sets ``event`` once ``predicate(result)`` holds."""

    def listener(result: CellResult) -> None:
        if predicate(result):
            event.set()

    return listener


async def when(predicate_event: asyncio.Event) -> None:
    await asyncio.wait_for(predicate_event.wait(), TIMEOUT)


async def test_pool_survives_a_server_killed_halfway(small_wf: Workflow, tmp_path: pathlib.Path) -> None:
    # the victim is slow, so it still holds unfinished jobs when it is killed, however loaded the machine
    servers = [MockServer(step_delay=delay).start() for delay in (0.03, 0.3, 0.03)]
    victim = servers[1]
    try:
        sweep = Sweep(small_wf, seed=[1, 2, 3], cfg_scale=[4.0, 7.0, 10.0])
        async with ServerPool([s.url for s in servers], **POOL_OPTIONS) as pool:
            first_done = asyncio.Event()
            run = await pool.run_sweep(sweep, concurrency=9, output_dir=tmp_path,
                                       on_update=set_when(first_done, lambda r: r.state == "completed"))
            await when(first_done)
            assert pool.load()[victim.url] > 0, "the victim must hold unfinished jobs when it dies"
            await asyncio.to_thread(victim.stop)
            await run.wait(TIMEOUT)
            stats = {s.url: s for s in pool.stats()}
        assert run.counts() == {"completed": 9}, [(r.error_type, r.error) for r in run if r.error]
        assert not stats[victim.url].up and stats[victim.url].moved >= 1
        moved = [r for r in run if r.attempts]
        assert moved and all(r.server != victim.url for r in moved)
        assert all(a["server"] == victim.url for r in moved for a in r.attempts)
        # exactly once in the run directory: one sidecar and one output per cell
        assert len(files_under(tmp_path / "cells")) == 9
        outputs = files_under(tmp_path / "outputs")
        assert len(outputs) == 9 and {p.parent.name for p in outputs} == {c.key for c in sweep}
        assert len({r.prompt_id for r in run}) == 9
    finally:
        for server in servers:
            server.stop()


async def test_resume_after_cancel_reruns_nothing_finished(small_wf: Workflow, tmp_path: pathlib.Path) -> None:
    with MockServer(step_delay=0.02) as server:
        sweep = Sweep(small_wf, seed=[1, 2, 3], steps=[2, 3, 4])
        async with AsyncComfyClient(server.url) as client:
            some_done = asyncio.Event()
            run = await run_sweep(client, sweep, concurrency=2, output_dir=tmp_path)
            run.on_update(set_when(some_done, lambda r: run.counts().get("completed", 0) >= 3))
            await when(some_done)
            run.cancel()
            await run.wait(TIMEOUT)
            assert run.state == "cancelled"
            finished = {r.key for r in run if r.state == "completed"}
            assert 3 <= len(finished) < 9 and run.counts().get("cancelled", 0) >= 1
            assert server.stats.prompts_submitted == run.submitted

            loaded = SweepRun.load(tmp_path)
            assert {r.key for r in loaded if r.state == "completed"} == finished
            assert loaded.counts()["completed"] == len(finished)

            before = server.stats.prompts_submitted
            resumed = await run_sweep(client, sweep, output_dir=tmp_path)
            await resumed.wait(TIMEOUT)
            assert resumed.counts() == {"completed": 9}
            assert resumed.submitted == 9 - len(finished)
            assert server.stats.prompts_submitted - before == 9 - len(finished)
            for key in finished:  # finished cells kept their original record
                assert resumed.result(key) == loaded.result(key)

            again = await run_sweep(client, SweepRun.load(tmp_path))
            await again.wait(TIMEOUT)
            assert again.submitted == 0 and server.stats.prompts_submitted - before == 9 - len(finished)


async def test_grid_table_and_provenance(small_wf: Workflow, tmp_path: pathlib.Path) -> None:
    with MockServer(step_delay=0) as server:
        server.faults.fail_node("VAEDecode", "mock <b>boom</b>", count=1)
        sweep = Sweep(small_wf, prompt="a {animal}", animal=["fox", "owl", "cat"], cfg_scale=[4.0, 7.0, 10.0])
        async with AsyncComfyClient(server.url) as client:
            run = await run_sweep(client, sweep, concurrency=3, output_dir=tmp_path)
            grid = SweepGrid(run, x="cfg_scale", y="animal", size=96)
            await run.wait(TIMEOUT)
        grid.flush()
        assert run.counts() == {"completed": 8, "failed": 1}
        failed = next(r for r in run if r.state == "failed")
        assert "boom" in (failed.error or "") and failed.error_type == "RuntimeError"

        text = repr(grid)
        assert text == repr(SweepGrid(run, x="cfg_scale", y="animal", size=96))
        assert "0x" not in text and (failed.prompt_id or "?") not in text and str(tmp_path) not in text
        assert text.splitlines()[1].split() == ["animal", "\\", "cfg_scale", "4.0", "7.0", "10.0"]
        assert text.count("failed") == 2 and text.count("completed") == 9  # summary + table
        cells = {c["index"]: c for c in grid.cells}
        assert cells[failed.index]["state"] == "failed" and "<b>boom</b>" in cells[failed.index]["error"]

        records = run.table()
        assert [r["index"] for r in records] == list(range(9))
        rec = records[4]
        assert (rec["animal"], rec["cfg_scale"], rec["prompt"]) == ("owl", 7.0, "a owl")
        assert rec["server"] == server.url and rec["state"] == "completed" and rec["prompt_id"]
        assert rec["queued_at"] <= rec["started_at"] <= rec["finished_at"]
        assert all(pathlib.Path(p).is_file() for r in records for p in r["outputs"])
        frame = run.to_pandas()
        assert frame.shape[0] == 9 and {"animal", "cfg_scale", "server", "outputs"} <= set(frame.columns)

        # the sidecar holds the exact graph, and the PNG reproduces it
        done = run[4]
        sidecar = json.loads((tmp_path / "cells" / f"{done.key}.json").read_text())
        assert sidecar["graph"] == done.graph and sidecar["seed"] == done.seed and sidecar["server"] == server.url
        output = tmp_path / done.outputs[0]
        assert Workflow.from_png(output).to_api() == done.graph

        sheet = grid.save(tmp_path / "grid.png")
        with Image.open(sheet) as im:
            assert im.size == grid.sheet_size()
            meta = json.loads(im.info["comfy_nb.sweep"])
        assert im.info["Title"] == "sweep over cfg_scale by animal"
        assert meta["x"] == ["cfg_scale"] and meta["y"] == ["animal"] and len(meta["cells"]) == 9
        assert {(c["row"], c["column"]) for c in meta["cells"]} == {(r, c) for r in range(3) for c in range(3)}
        assert meta["base"]["kind"] == "workflow"
        one_row_less = SweepGrid(SweepRun.load(tmp_path), x="cfg_scale", y="animal", size=96)
        w, h = one_row_less.sheet_size()
        assert w == im.size[0] and h == im.size[1]
        with pytest.raises(Exception, match="no sweep axis 'colour'"):
            SweepGrid(run, x="colour")


async def test_concurrency_is_respected_and_queue_kept_fed(small_wf: Workflow, tmp_path: pathlib.Path) -> None:
    with MockServer(step_delay=0.01) as server:
        sweep = Sweep(small_wf, seed=list(range(12)))
        seen: list[int] = []
        async with AsyncComfyClient(server.url) as client, AsyncComfyClient(server.url) as observer:
            observer.on_queue_change(lambda q: seen.append(len(q.running) + len(q.pending)))
            in_flight: list[int] = []
            run = await run_sweep(client, sweep, concurrency=3, output_dir=tmp_path)
            run.on_update(lambda r: in_flight.append(len(client.jobs)))  # unfinished on the server
            await run.wait(TIMEOUT)
        assert run.counts() == {"completed": 12} and server.stats.prompts_submitted == 12
        assert max(in_flight) == 3
        assert seen and max(seen) <= 3


async def test_pool_routes_by_models_and_reports_load(small_wf: Workflow) -> None:
    with MockServer(models={"checkpoints": ["a.safetensors"]}) as a, \
            MockServer(models={"checkpoints": ["b.safetensors"]}) as b:
        async with ServerPool([a.url, b.url], **POOL_OPTIONS) as pool:
            for name, home in (("a.safetensors", a.url), ("b.safetensors", b.url)):
                wf = small_wf.copy()
                wf.set_checkpoint(name)
                job = await pool.submit(wf)
                assert job.server == home
                assert (await job.result(TIMEOUT))[0].kind == "image"
            wf = small_wf.copy()
            wf.set_checkpoint("c.safetensors")
            with pytest.raises(WorkflowError, match=r"c\.safetensors"):
                await pool.submit(wf)
            loads = pool.stats()
            assert [s.completed for s in loads] == [1, 1] and all(s.up for s in loads)
            assert pool.load() == {a.url: 0, b.url: 0}


def test_blocking_client_returns_the_finished_run(small_wf: Workflow, tmp_path: pathlib.Path,
                                                  mock_server: MockServer) -> None:
    with ComfyClient(mock_server.url) as client:
        sweep = Sweep(small_wf, zip=True, seed=[1, 2], sampler=["euler", "ddim"])
        run = sweep.run(client, output_dir=tmp_path)
        with pytest.raises(ComfyError, match=r"with a blocking ComfyClient use `sweep\.run"):
            await_in_new_loop(run_sweep(client, sweep))  # type: ignore[arg-type]
    assert run.done and run.counts() == {"completed": 2}
    assert isinstance(run[0], CellResult)
    # a run shows itself as its grid through the display registry (experiments never imports widgets)
    bundle = run._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle and bundle["text/plain"].startswith("SweepGrid(")
    grid = SweepGrid(run)
    assert grid.columns == ["seed=1, sampler=euler", "seed=2, sampler=ddim"] and grid.rows == [""]


def await_in_new_loop(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


async def test_jobs_forgotten_by_a_restart_are_submitted_again(small_wf: Workflow, tmp_path: pathlib.Path) -> None:
    with MockServer(step_delay=0.05) as server:
        sweep = Sweep(small_wf, seed=[1, 2, 3, 4])
        async with AsyncComfyClient(server.url, poll_interval=0.05) as client:
            first_done = asyncio.Event()
            run = await run_sweep(client, sweep, concurrency=4, output_dir=tmp_path,
                                         on_update=set_when(first_done, lambda r: r.state == "completed"))
            await when(first_done)
            await asyncio.to_thread(server.restart)
            await run.wait(TIMEOUT)
        assert run.counts() == {"completed": 4}, [r.error for r in run]
        moved = [r for r in run if r.attempts]
        assert moved and all("lost by" in a["reason"] for r in moved for a in r.attempts)
        assert len(files_under(tmp_path / "outputs")) == 4


def test_blocking_pool(small_wf: Workflow, tmp_path: pathlib.Path, mock_server: MockServer) -> None:
    from comfy_nb.experiments import BlockingServerPool

    with MockServer() as other, BlockingServerPool([mock_server.url, other.url], **POOL_OPTIONS) as pool:
        assert pool.submit(small_wf)[0].kind == "image"
        run = pool.run_sweep(Sweep(small_wf, seed=[1, 2, 3, 4]), output_dir=tmp_path)
        assert run.counts() == {"completed": 4}
        assert sum(s.completed for s in pool.stats()) == 5 and set(pool.load().values()) == {0}
