"""``SweepRun``: the live and recorded results of a sweep, one ``CellResult`` per cell."""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import dataclasses
import functools
import logging
import os
import pathlib
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from .._display import mimebundle
from .._observers import Observers
from ..client import JobState, JobStatus, Output
from ..client._console import follow_sweep
from ..client._files import check_output_name, write_output
from ..errors import ComfyConnectionError, ComfyError, ComfyTimeout
from ..protocol import NodeDef
from ._store import TERMINAL, CellResult, RunStore
from ._sweep import Cell, Sweep

if TYPE_CHECKING:
    from ._pool import ServerPool
    from ._pool_job import PoolJob

__all__ = ["SweepRun"]

log = logging.getLogger("comfy_nb")

Listener = Callable[[CellResult], Any]

_TABLE_TIMES = ("submitted_at", "queued_at", "started_at", "finished_at")
_OUTPUT_ROUNDS = 3
"""Runs of a cell whose outputs could not be downloaded (its server died right after finishing it)."""


class SweepRun:
    """A sweep being run (or read back from its directory with ``SweepRun.load``).

    ``run[i]`` / iteration give ``CellResult`` snapshots in cell order; ``on_update(callback)`` is
    called on the client's loop with each changed cell; ``await run.wait()`` waits for the end;
    ``run.cancel()`` (any thread) stops the whole sweep. Everything finished is already on disk.
    """

    def __init__(self, sweep: Sweep | None, cells: list[Cell], manifest: dict[str, Any], store: RunStore) -> None:
        self.sweep = sweep
        self.cells = cells
        self.manifest = manifest
        self.store = store
        self._results: dict[str, CellResult] = {c.key: CellResult(c.index, c.key, c.params) for c in cells}
        self._cells_per_key = collections.Counter(c.key for c in cells)  # equal parameters share a key
        self._counts: dict[str, int] = {"pending": len(cells)} if cells else {}
        """Cells per state, kept as results change: a live grid reads it on every refresh."""
        self._listeners: Observers[CellResult] = Observers("sweep listener")
        self._inflight: dict[str, PoolJob] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._finished: asyncio.Event | None = None
        self._cancelling = False
        self._writer: concurrent.futures.ThreadPoolExecutor | None = None
        """Writes sidecars in order off the event loop while running (a write is ms on a busy disk)."""
        self.state = "idle"
        """``idle`` (loaded, not running), ``running``, ``finished`` or ``cancelled``."""
        self.submitted = 0
        """Prompts this run submitted (resumed cells that were already finished are not counted)."""

    # ------------------------------------------------------------------ opening

    @classmethod
    def _open(cls, sweep: Sweep, directory: str | os.PathLike[str]) -> SweepRun:
        store = RunStore(directory)
        store.directory.mkdir(parents=True, exist_ok=True)
        manifest = sweep.to_manifest()
        manifest["cells"] = [{**c, "settings": cell.settings} for c, cell in zip(manifest["cells"], sweep.cells, strict=True)]
        previous = store.read_manifest()
        manifest["created"] = previous.get("created") if previous else time.time()
        store.write_manifest(manifest)
        run = cls(sweep, sweep.cells, manifest, store)
        run._adopt(store.read_results())
        return run

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> SweepRun:
        """Read a run directory back: every finished cell with its outputs, errors and provenance."""
        store = RunStore(directory)
        manifest = store.read_manifest()
        if manifest is None:
            raise ComfyError(f"{store.directory} holds no sweep (no sweep.json)")
        cells = [Cell(c["index"], c["key"], dict(c["params"]), dict(c.get("settings") or {})) for c in manifest["cells"]]
        try:
            sweep: Sweep | None = Sweep.from_manifest(manifest)
        except (ImportError, AttributeError, ComfyError, TypeError) as exc:
            log.warning("comfy_nb: the sweep in %s cannot be rebuilt (%s); it can be viewed, not resumed",
                        store.directory, exc)
            sweep = None
        run = cls(sweep, cells, manifest, store)
        run._adopt(store.read_results())
        return run

    def _adopt(self, found: dict[str, CellResult]) -> None:
        for key, result in found.items():
            if key in self._results and result.state in TERMINAL:
                self._replace(key, result)

    # ------------------------------------------------------------------ reading

    @property
    def directory(self) -> pathlib.Path:
        return self.store.directory

    @property
    def axes(self) -> dict[str, list[Any]]:
        """Axis name → values, template variables included (what a grid can be laid out by)."""
        return {str(k): list(v) for k, v in self.manifest.get("axes", {}).items()}

    @property
    def done(self) -> bool:
        return self.state in ("finished", "cancelled", "idle")

    def __len__(self) -> int:
        return len(self.cells)

    def __getitem__(self, index: int) -> CellResult:
        return self._results[self.cells[index].key]

    def __iter__(self) -> Iterator[CellResult]:
        return (self._results[c.key] for c in self.cells)

    def result(self, key: str) -> CellResult:
        return self._results[key]

    def counts(self) -> dict[str, int]:
        """How many cells are in each state (``pending``, ``queued``, ``running``, ``completed``...)."""
        return {state: n for state, n in self._counts.items() if n}

    def output_paths(self, index: int) -> list[pathlib.Path]:
        return [self.directory / p for p in self[index].outputs]

    def __repr__(self) -> str:
        counts = ", ".join(f"{n} {state}" for state, n in sorted(self.counts().items()))
        return f"SweepRun({len(self)} cells, {self.state}: {counts})"

    def table(self) -> list[dict[str, Any]]:
        """One record per cell: its parameters, state, prompt id, server, seed, timings, outputs, error."""
        records = []
        for cell in self.cells:
            r = self._results[cell.key]
            record: dict[str, Any] = {"index": cell.index, "key": cell.key}
            record.update({k: v for k, v in cell.settings.items() if isinstance(v, str) and k not in cell.params})
            record.update(cell.params)
            record.update(
                state=r.state, prompt_id=r.prompt_id, server=r.server, overflow=r.overflow, resolved_seed=r.seed,
                **{name: getattr(r, name) for name in _TABLE_TIMES},
                run_seconds=(r.finished_at - r.started_at) if r.finished_at and r.started_at else None,
                outputs=[str(self.directory / p) for p in r.outputs], error=r.error,
                moves=len(r.attempts),
            )
            records.append(record)
        return records

    def to_pandas(self) -> Any:
        """``table()`` as a pandas DataFrame."""
        try:
            import pandas as pd  # type: ignore[import-untyped]
        except ImportError:
            raise ImportError("run.to_pandas() needs pandas: pip install pandas (run.table() works without it)") from None
        return pd.DataFrame.from_records(self.table())

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        """Notebooks show a run as its grid (``comfy_nb.widgets.SweepGrid``) when the widgets load."""
        return mimebundle(self, include, exclude)

    # ------------------------------------------------------------------ updates

    def on_update(self, callback: Listener) -> Callable[[], None]:
        """Call ``callback(CellResult)`` whenever a cell changes; returns a function that stops it."""
        return self._listeners.add(callback)

    def _set(self, cell: Cell, **changes: Any) -> CellResult:
        result = dataclasses.replace(self._results[cell.key], **changes)
        if result.state in ("completed", "failed"):
            if self._writer is None:
                self.store.write_result(result)
            else:
                self._writer.submit(self._write_sidecar, result)
        self._publish(result)
        return result

    def _publish(self, result: CellResult) -> None:
        self._replace(result.key, result)
        self._listeners.notify(result)

    def _replace(self, key: str, result: CellResult) -> None:
        old = self._results[key].state
        self._results[key] = result
        if old != result.state:
            n = self._cells_per_key[key]
            self._counts[old] -= n
            self._counts[result.state] = self._counts.get(result.state, 0) + n

    # ------------------------------------------------------------------ running

    def _start(self, pool: ServerPool, owned: bool, config: Any, defs: dict[str, NodeDef] | None, concurrency: int,
               rerun_failed: bool) -> None:
        if self.sweep is None:
            raise ComfyError("this run's sweep could not be rebuilt, so it cannot be resumed")
        self._loop = asyncio.get_running_loop()
        self._finished = asyncio.Event()
        self._writer = self._writer or concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="comfy_nb-sidecars")
        self._cancelling = False
        self.state = "running"
        todo = [c for c in self.cells if not self._finished_cell(c, rerun_failed)]
        for cell in todo:
            if self._results[cell.key].state != "pending":
                self._set(cell, state="pending")
        self._task = asyncio.create_task(self._drive(pool, owned, config, defs, concurrency, todo))

    def _finished_cell(self, cell: Cell, rerun_failed: bool) -> bool:
        state = self._results[cell.key].state
        return state == "completed" or (state == "failed" and not rerun_failed)

    async def wait(self, timeout: float | None = None, *, progress: bool | None = None) -> SweepRun:
        """Wait until every cell is finished (or the run cancelled); returns the run.

        ``progress``: draw a text progress line on stderr meanwhile (default: a terminal, no notebook).
        """
        if self._finished is not None and not self._finished.is_set():
            stop_drawing = follow_sweep(self, progress)
            try:
                await asyncio.wait_for(asyncio.shield(self._finished.wait()), timeout)
            except asyncio.TimeoutError:
                raise ComfyTimeout(f"the sweep did not finish within {timeout} s ({self!r})") from None
            finally:
                stop_drawing()
        return self

    def cancel(self) -> concurrent.futures.Future[None] | None:
        """Stop the sweep from any thread: nothing more is submitted, queued and running jobs are cancelled."""
        loop = self._loop
        if loop is None or self.done or loop.is_closed():
            return None
        return asyncio.run_coroutine_threadsafe(self._cancel(), loop)

    async def _cancel(self) -> None:
        self._cancelling = True
        await asyncio.gather(*(job.cancel() for job in tuple(self._inflight.values())), return_exceptions=True)

    async def _drive(self, pool: ServerPool, owned: bool, config: Any, defs: dict[str, NodeDef] | None,
                     concurrency: int, todo: list[Cell]) -> None:
        slots = asyncio.Semaphore(max(1, concurrency))
        saves = asyncio.Semaphore(max(2, min(concurrency, 8)))
        tasks: set[asyncio.Task[None]] = set()
        try:
            for cell in todo:
                await slots.acquire()
                if self._cancelling:
                    slots.release()
                    break
                task = asyncio.create_task(self._one(pool, cell, config, defs, slots, saves))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            while tasks:
                await asyncio.gather(*tuple(tasks), return_exceptions=True)
        finally:
            for cell in todo:
                if self._results[cell.key].state == "pending":
                    self._set(cell, state="cancelled")
            self.state = "cancelled" if self._cancelling else "finished"
            writer, self._writer = self._writer, None
            if writer is not None:  # every sidecar is on disk before wait() returns
                await asyncio.to_thread(writer.shutdown)
            if owned:
                await pool.aclose()
            assert self._finished is not None
            self._finished.set()

    async def _one(self, pool: ServerPool, cell: Cell, config: Any, defs: dict[str, NodeDef] | None,
                   slots: asyncio.Semaphore, saves: asyncio.Semaphore) -> None:
        """Build, submit and follow one cell; the slot is freed as soon as the job ends on the server."""
        held = True

        def release() -> None:
            nonlocal held
            if held:
                held = False
                slots.release()

        assert self.sweep is not None
        try:
            try:
                graph, meta = self.sweep.build(cell, config, defs)
            except Exception as exc:  # a cell that cannot be built fails alone; the sweep goes on
                self._set(cell, state="failed", error=str(exc), error_type=type(exc).__name__,
                          finished_at=time.time())
                return
            self._set(cell, state="queued", graph=graph, meta=meta, seed=meta.get("seed"),
                      submitted_at=time.time(), error=None, error_type=None, outputs=(), texts=(), attempts=())
            earlier: list[dict[str, Any]] = []
            for round_ in range(_OUTPUT_ROUNDS):
                if round_:  # the outputs were unreachable: run it again, within the concurrency limit
                    await slots.acquire()
                    held = True
                try:
                    job = await pool.submit(graph, meta=meta)
                except ComfyError as exc:
                    self._set(cell, state="failed", error=str(exc), error_type=type(exc).__name__,
                              finished_at=time.time(), attempts=tuple(earlier))
                    return
                self.submitted += 1
                self._inflight[cell.key] = job
                self._set(cell, state="queued", prompt_id=job.prompt_id, server=job.server, overflow=job.overflow)
                unsubscribe = job.subscribe(functools.partial(self._on_status, cell, job))
                # held until the job ends: a task nobody references may be collected before it runs
                cancelling = asyncio.ensure_future(job.cancel()) if self._cancelling else None
                try:
                    status = await job.wait()
                finally:
                    unsubscribe()
                    self._inflight.pop(cell.key, None)
                    del cancelling
                release()
                unreachable = await self._record(cell, job, status, saves, earlier, last=round_ == _OUTPUT_ROUNDS - 1)
                if unreachable is None or self._cancelling:
                    return
                earlier += [*job.attempts, job._attempt(unreachable)]
        finally:
            release()

    def _on_status(self, cell: Cell, job: PoolJob, status: JobStatus) -> None:
        current = self._results[cell.key]
        state = "running" if status.state is JobState.RUNNING else "queued"
        if not status.terminal and (state != current.state or job.prompt_id != current.prompt_id):
            self._set(cell, state=state, prompt_id=job.prompt_id, server=job.server, overflow=job.overflow,
                      queued_at=status.queued_at, started_at=status.started_at)

    async def _record(self, cell: Cell, job: PoolJob, status: JobStatus, saves: asyncio.Semaphore,
                      earlier: list[dict[str, Any]], last: bool) -> str | None:
        """Record the end of a cell; returns why instead when its outputs were unreachable (run it again)."""
        common: dict[str, Any] = dict(
            prompt_id=job.prompt_id, server=job.server, overflow=job.overflow, queued_at=status.queued_at,
            started_at=status.started_at, finished_at=status.finished_at or time.time(), attempts=(*earlier, *job.attempts),
        )
        if status.state is JobState.CANCELLED:
            self._set(cell, state="cancelled", **common)
            return None
        if status.state is not JobState.COMPLETED:
            error = status.error
            self._set(cell, state="failed", error=error.message if error else "failed",
                      error_type=(error.exception_type or "JobLost") if error else None, **common)
            return None
        folder = self.store.output_dir(cell.key)
        try:
            async with saves:
                files: list[tuple[Output, bytes]] = []
                for output in status.outputs:
                    if output.is_file:
                        check_output_name(folder, output)  # refused before its download
                        files.append((output, await job.client.download(output)))
                texts = tuple(output.text or "" for output in status.outputs if not output.is_file)
                # One trip to the writer thread for the outputs and the sidecar (in that order: a cell
                # counts as finished once its sidecar exists), not one for each.
                assert self._writer is not None  # set while the sweep runs
                result = await asyncio.wrap_future(self._writer.submit(
                    self._save_completed, cell, folder, files, dict(texts=texts, **common)))
        except ComfyError as exc:
            if isinstance(exc, ComfyConnectionError) and not last:
                return f"outputs unreachable on {job.server}: {exc}"
            self._set(cell, state="failed", error=f"outputs could not be downloaded: {exc}",
                      error_type=type(exc).__name__, **common)
            return None
        self._publish(result)
        return None

    def _save_completed(self, cell: Cell, folder: pathlib.Path, files: list[tuple[Output, bytes]],
                        changes: dict[str, Any]) -> CellResult:
        """On the writer thread: write the outputs, then the sidecar of the completed cell."""
        paths = tuple(write_output(folder, output, data).relative_to(self.directory).as_posix()
                      for output, data in files)
        result = dataclasses.replace(self._results[cell.key], state="completed", outputs=paths, **changes)
        self._write_sidecar(result)
        return result

    def _write_sidecar(self, result: CellResult) -> None:
        """On the writer thread; a failure is logged (the cell keeps its state in this run)."""
        try:
            self.store.write_result(result)
        except Exception as exc:
            log.error("comfy_nb: a sweep sidecar could not be written: %s", exc)
