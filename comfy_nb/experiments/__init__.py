"""Prompt experiments: sweeps over parameters, resumable runs, labelled grids, a pool of servers.

::

    sweep = Sweep(task, seed=[1, 2, 3], cfg_scale=[4, 7, 10])
    run = await run_sweep(client, sweep, concurrency=4, output_dir="runs/foxes")   # async client: at once
    run = sweep.run(client, concurrency=4, output_dir="runs/foxes")               # blocking client: to the end
    SweepGrid(run, x="cfg_scale", y="seed")  # comfy_nb.widgets: a live widget; .save("grid.png")
    run.table(); run.to_pandas()
    SweepRun.load("runs/foxes")              # read back; run_sweep into the same directory resumes

    pool = ServerPool(["http://gpu1:8188"], overflow=[cloud_client],   # local first; the cloud only when
                      overflow_policy=OverflowPolicy(when_queued_over=4, max_in_flight=8))  # queues are long
"""

from ._overflow import OverflowPolicy, Placement
from ._pool import BlockingServerPool, ServerLoad, ServerPool
from ._pool_job import PoolJob
from ._run import SweepRun
from ._runner import run_sweep, run_sweep_blocking, run_sweep_to_end
from ._store import CellResult
from ._sweep import WORKFLOW_PARAMETERS, Cell, Sweep

__all__ = [
    "WORKFLOW_PARAMETERS",
    "BlockingServerPool",
    "Cell",
    "CellResult",
    "OverflowPolicy",
    "Placement",
    "PoolJob",
    "ServerLoad",
    "ServerPool",
    "Sweep",
    "SweepRun",
    "run_sweep",
    "run_sweep_blocking",
    "run_sweep_to_end",
]
