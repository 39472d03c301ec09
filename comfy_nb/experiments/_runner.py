"""``run_sweep``: the one implementation behind ``run_sweep(client, sweep)``, ``sweep.run(client)`` and the pools.

Sweeps live above the client, so the clients have no ``run_sweep`` method: experiments drive a client,
never the other way round.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from typing import Any

from ..client import AsyncComfyClient, ComfyClient
from ..client._loop import run_sync
from ..errors import ComfyError
from ._pool import BlockingServerPool, ServerPool
from ._run import SweepRun
from ._sweep import Sweep

__all__ = ["run_sweep", "run_sweep_blocking", "run_sweep_to_end"]


async def run_sweep(
    target: AsyncComfyClient | ServerPool,
    sweep: Sweep | SweepRun,
    *,
    concurrency: int | None = None,
    output_dir: str | os.PathLike[str] | None = None,
    rerun_failed: bool = True,
    config: Any = None,
    on_update: Any = None,
) -> SweepRun:
    """Start running ``sweep`` on a client or pool and return its ``SweepRun`` at once.

    * ``concurrency`` – jobs submitted and unfinished at any time (default ``pool.capacity``: 4 per
      server, plus ``max_in_flight`` per overflow server), so the servers' queues stay fed while
      finished outputs download.
    * ``output_dir`` – the run directory; running the same sweep into it again resumes: completed
      cells are not re-run (failed and cancelled ones are, unless ``rerun_failed=False``). Default: a
      new temporary directory.
    * ``config`` – the ``ComfyConfig`` a task sweep builds graphs with (default: the client's).
    * ``on_update`` – ``callback(CellResult)`` for each cell change, on the client's loop.

    ``await run.wait()`` waits for the end; ``comfy_nb.widgets.SweepGrid(run)`` shows it live.
    """
    if isinstance(sweep, SweepRun):
        output_dir = output_dir if output_dir is not None else sweep.directory
        if sweep.sweep is None:
            raise ComfyError(f"the sweep in {sweep.directory} could not be rebuilt, so it cannot be resumed")
        sweep = sweep.sweep
    if not isinstance(sweep, Sweep):
        raise ComfyError(f"run_sweep needs a Sweep (or a loaded SweepRun), not {type(sweep).__name__}")
    if isinstance(target, ServerPool):
        pool, owned = target, False
    elif isinstance(target, AsyncComfyClient):
        pool, owned = ServerPool([target]), True
    else:
        raise ComfyError(_wrong_target(target, blocking=False))
    directory = output_dir if output_dir is not None else tempfile.mkdtemp(prefix="comfy_nb-sweep-")
    # Off the event loop: it writes the manifest (every cell) and reads the sidecars already there,
    # ~15 ms of disk and JSON for 1,000 cells that would stall every other job's events.
    run = await asyncio.to_thread(SweepRun._open, sweep, directory)
    if on_update is not None:
        run.on_update(on_update)
    try:
        await pool.connect()
        built_with, defs = await pool.build_context()
        run._start(pool, owned, config if config is not None else built_with, defs,
                   concurrency or pool.capacity, rerun_failed)
    except BaseException:
        if owned:
            await pool.aclose()
        raise
    return run


async def run_sweep_to_end(
    target: AsyncComfyClient | ServerPool, sweep: Sweep | SweepRun, *, progress: bool | None = None, **kwargs: Any
) -> SweepRun:
    """``run_sweep`` and wait for the end (the blocking client's form); cancelling it cancels the sweep.

    ``progress``: a text progress line on stderr meanwhile (default: a terminal outside a notebook).
    """
    run = await run_sweep(target, sweep, **kwargs)
    try:
        return await run.wait(progress=progress)
    except asyncio.CancelledError:
        run.cancel()
        raise


def run_sweep_blocking(target: ComfyClient | BlockingServerPool, sweep: Sweep | SweepRun, **kwargs: Any) -> SweepRun:
    """Run ``sweep`` to the end on a blocking client or pool (``sweep.run(client)``); Ctrl-C cancels the sweep."""
    if isinstance(target, ComfyClient):
        inner: AsyncComfyClient | ServerPool = target.aclient
    elif isinstance(target, BlockingServerPool):
        inner = target.pool
    else:
        raise ComfyError(_wrong_target(target, blocking=True))
    return run_sync(run_sweep_to_end(inner, sweep, **kwargs))


def _wrong_target(target: object, *, blocking: bool) -> str:
    name = type(target).__name__
    if blocking and isinstance(target, (AsyncComfyClient, ServerPool)):
        return (f"sweep.run(...) blocks, so it takes a ComfyClient or BlockingServerPool; with an async {name} "
                "use `run = await run_sweep(client, sweep, ...)`, which returns at once")
    if not blocking and isinstance(target, (ComfyClient, BlockingServerPool)):
        return (f"run_sweep is for AsyncComfyClient and ServerPool; with a blocking {name} "
                "use `sweep.run(client, ...)`, which returns when the sweep is done")
    wanted = "a ComfyClient or a BlockingServerPool" if blocking else "an AsyncComfyClient or a ServerPool"
    return f"{'sweep.run' if blocking else 'run_sweep'} needs {wanted}, not {name}"
