"""The prompt queue, the worker(s) and the classic output cache, as ComfyUI runs them.

Message order per prompt (reference §10.5): ``execution_start``, ``execution_cached``, then per node
``progress_state``(running) → ``executing`` → [``progress_state`` → ``progress`` → preview]* →
``executed`` → ``progress_state``(finished); then ``execution_success`` / ``_error`` / ``_interrupted``,
history written, ``status`` broadcast, and ``executing {node: null}``.
"""

from __future__ import annotations

import asyncio
import heapq
import os
import random
import re
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..protocol import is_link
from . import _image_nodes, _loaders, _sampling_nodes  # noqa: F401 - they register the node classes
from ._cache import CacheEntry, signatures
from ._catalog import Catalog
from ._execution_list import ExecutionList
from ._faults import Faults, ServerStats
from ._nodes import NODE_IMPLS, NodeImpl, encode_for_error
from ._run import Outbox, Run

__all__ = ["SENSITIVE_EXTRA", "Executor", "Interrupted", "Outbox", "Workspace"]

SENSITIVE_EXTRA = ("auth_token_comfy_org", "api_key_comfy_org")
"""``extra_data`` keys the server never writes to history (the user's comfy.org credentials)."""
MAX_HISTORY = 10000


@dataclass(frozen=True)
class Workspace:
    """What the executor works with, handed over by the server: it never reaches into the server itself."""

    outbox: Outbox
    catalog: Catalog
    faults: Faults
    stats: ServerStats
    folders: Mapping[str, str]
    step_delay: float
    preview_size: int
    sampler_previews: bool

    def folder(self, kind: str | None) -> str | None:
        return self.folders.get(kind or "")


class Interrupted(Exception):
    """The interrupt flag was seen at a checkpoint."""


class _InjectedFailure(Exception):
    def __init__(self, message: str, type_name: str) -> None:
        super().__init__(message)
        self.type_name = type_name


@dataclass(order=True)
class _HeapEntry:
    number: float
    prompt_id: str
    seq: int
    item: list[Any]


class _NodeCtx:
    """What a running node sees (``_nodes.NodeContext``)."""

    __slots__ = ("env", "executor", "node_id", "prompt_id", "run")

    def __init__(self, executor: Executor, run: Run, node_id: str) -> None:
        self.executor = executor
        self.env = executor.env
        self.run = run
        self.node_id = node_id
        self.prompt_id = run.prompt_id

    async def progress(
        self, value: int | float, total: int | float, preview: bytes | None = None, mime: str = "image/jpeg"
    ) -> None:
        await self.executor.checkpoint(self.run)
        self.run.progress_update(self.node_id, value, total, preview, mime)

    async def text(self, text: str) -> None:
        self.env.outbox.send_text(self.node_id, text)

    async def step_sleep(self) -> None:
        delay = self.env.step_delay
        if delay > 0:
            await asyncio.sleep(delay)

    async def sleep(self, seconds: float) -> None:
        if seconds > 0:
            await asyncio.sleep(seconds)

    @property
    def preview_size(self) -> int:
        return self.env.preview_size

    @property
    def sampler_previews(self) -> bool:
        return self.env.sampler_previews

    def folder(self, kind: str) -> str:
        return self.env.folder(kind) or self.env.folder("output") or ""

    def models(self, folder: str) -> list[str]:
        return self.env.catalog.models.get(folder, [])

    def family(self, folder: str, name: str) -> str | None:
        return self.env.catalog.family(folder, name)

    def next_counter(self, folder: str, filename: str, count: int = 1) -> int:
        return self.executor.next_counter(folder, filename, count)

    def temp_prefix(self) -> str:
        return self.executor.temp_prefix(self.node_id)

    def input_changed(self) -> None:
        self.env.catalog.invalidate()


class Executor:
    """Queue (a min-heap on ``number``), history, the worker tasks and the classic cache.

    ``workers`` prompts run at once (1 like ComfyUI; more for the cloud mode's parallel jobs), each
    worker with its own cache, as separate machines would have.
    """

    def __init__(self, env: Workspace, workers: int = 1) -> None:
        self.env = env
        self.heap: list[_HeapEntry] = []
        self.running: dict[str, list[Any]] = {}
        self.history: dict[str, dict[str, Any]] = {}
        self.number = 0
        self._seq = 0
        self._wake = asyncio.Event()
        self.workers = max(1, int(workers))
        self.runs: dict[str, Run] = {}
        self._caches: list[dict[Any, CacheEntry]] = [{} for _ in range(self.workers)]
        self._counters: dict[tuple[str, str], int] = {}
        self._temp_prefixes: dict[str, str] = {}
        self._tasks: list[asyncio.Task[None]] = []

    # ------------------------------------------------------------------ queue

    def remaining(self) -> int:
        return len(self.heap) + len(self.running)

    def queue_updated(self) -> None:
        """Broadcast the queue length, as the server does after every queue change."""
        self.env.outbox.send("status", {"status": {"exec_info": {"queue_remaining": self.remaining()}}}, None)

    def put(self, item: list[Any]) -> None:
        self._seq += 1
        heapq.heappush(self.heap, _HeapEntry(item[0], item[1], self._seq, item))
        self.queue_updated()
        self._wake.set()

    def pending_items(self) -> list[list[Any]]:
        return [e.item for e in self.heap]

    def running_items(self) -> list[list[Any]]:
        return list(self.running.values())

    def wipe(self) -> None:
        self.heap = []
        self.queue_updated()

    def delete(self, prompt_id: str) -> bool:
        for i, entry in enumerate(self.heap):
            if entry.prompt_id == prompt_id:
                if len(self.heap) == 1:
                    self.wipe()
                else:
                    self.heap.pop(i)
                    heapq.heapify(self.heap)
                self.queue_updated()
                return True
        return False

    def interrupt(self, prompt_id: str | None) -> None:
        for run in self.runs.values():
            if prompt_id is None or prompt_id == run.prompt_id:
                run.interrupted = True

    def executing_node(self, client_id: str) -> str | None:
        """The node a run of ``client_id``'s is executing (replayed to a reconnecting socket)."""
        for run in self.runs.values():
            if run.client_id == client_id and run.last_node_id is not None:
                return run.last_node_id
        return None

    async def checkpoint(self, run: Run) -> None:
        """A place where the worker honours stalls and interrupts (node start, each progress step)."""
        stall = self.env.faults.stall_remaining("worker")
        while stall > 0:
            await asyncio.sleep(stall)
            stall = self.env.faults.stall_remaining("worker")
        if run.interrupted:
            raise Interrupted()

    # ------------------------------------------------------------------ history

    def history_slice(self, max_items: int | None, offset: int) -> dict[str, Any]:
        if offset < 0 and max_items is not None:
            offset = len(self.history) - max_items
        out: dict[str, Any] = {}
        for i, key in enumerate(self.history):
            if i >= offset:
                out[key] = self.history[key]
                if max_items is not None and len(out) >= max_items:
                    break
        return out

    # ------------------------------------------------------------------ files

    def next_counter(self, folder: str, filename: str, count: int = 1) -> int:
        """The next free ``filename_NNNNN_`` number in ``folder``; reserves ``count`` numbers."""
        key = (folder, filename)
        counter = self._counters.get(key)
        if counter is None:
            pattern = re.compile(re.escape(filename) + r"_(\d+)_")
            counter = 0
            try:
                for name in os.listdir(folder):
                    m = pattern.match(name)
                    if m:
                        counter = max(counter, int(m.group(1)))
            except OSError:
                pass
            counter += 1
        self._counters[key] = counter + max(1, count)
        return counter

    def temp_prefix(self, node_id: str) -> str:
        prefix = self._temp_prefixes.get(node_id)
        if prefix is None:
            letters = "".join(random.choice("abcdefghijklmnopqrstupvxyz") for _ in range(5))
            prefix = self._temp_prefixes[node_id] = f"ComfyUI_temp_{letters}"
        return prefix

    # ------------------------------------------------------------------ worker

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._worker(i), name=f"comfy-nb-mock-worker-{i}") for i in range(self.workers)
        ]

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass

    async def _worker(self, index: int) -> None:
        while True:
            while not self.heap:
                self._wake.clear()
                await self._wake.wait()
            held = self.env.faults.held()
            if held is not None:
                await held
                continue
            stall = self.env.faults.stall_remaining("worker")
            if stall > 0:
                await asyncio.sleep(stall)
                continue
            entry = heapq.heappop(self.heap)
            item = entry.item
            self.running[item[1]] = item
            self.queue_updated()
            try:
                await self._execute(item, index)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug in the mock must not kill the worker
                traceback.print_exc()
                self.running.pop(item[1], None)
                self.runs.pop(item[1], None)
                self.queue_updated()

    async def _execute(self, item: list[Any], worker: int = 0) -> None:
        run = Run(self.env.outbox, item)
        self.runs[run.prompt_id] = run
        prompt: dict[str, Any] = run.prompt
        run.add_message("execution_start", {"prompt_id": run.prompt_id}, False)

        sigs = run.sigs = signatures(prompt, self.env.catalog, lambda kind: self.env.folder(kind) or "")
        wanted = set(sigs.values())
        cache = self._caches[worker]
        if len(cache) > len(wanted) or any(k not in wanted for k in cache):
            cache = self._caches[worker] = {k: v for k, v in cache.items() if k in wanted}
        run.cache = cache
        cached = [nid for nid in prompt if sigs.get(nid) in cache]
        run.add_message("execution_cached", {"nodes": cached, "prompt_id": run.prompt_id}, False)

        todo = ExecutionList(
            prompt, run.outputs_to_execute, lambda nid: sigs.get(nid) in cache, self.env.catalog.is_output
        )
        run.order = todo.order
        success = False
        current: str | None = None
        try:
            while todo:
                current = todo.next()
                await self._run_node(run, current, sigs, cache)
                todo.done(current)
            run.add_message("execution_success", {"prompt_id": run.prompt_id}, False)
            success = True
        except Interrupted:
            nid = current or ""
            run.add_message(
                "execution_interrupted",
                {
                    "prompt_id": run.prompt_id,
                    "node_id": nid,
                    "node_type": str((prompt.get(nid) or {}).get("class_type", "")),
                    "executed": list(run.executed),
                },
                True,
            )
        except _NodeFailed as failed:
            run.add_message("execution_error", failed.details, False)

        delay = self.env.faults.take_history_delay()
        if delay:
            await asyncio.sleep(delay)
        extra = dict(run.extra_data) if isinstance(run.extra_data, dict) else {}
        for key in SENSITIVE_EXTRA:
            extra.pop(key, None)
        self.history[run.prompt_id] = {
            "prompt": [run.number, run.prompt_id, prompt, extra, list(run.outputs_to_execute)],
            "outputs": run.ui_outputs,
            "status": {"status_str": "success" if success else "error", "completed": success, "messages": run.messages},
            "meta": run.meta,
        }
        while len(self.history) > MAX_HISTORY:
            del self.history[next(iter(self.history))]
        self.running.pop(run.prompt_id, None)
        self.env.stats.prompts_completed += 1
        self.queue_updated()
        run.to_client("executing", {"node": None, "prompt_id": run.prompt_id})
        self.runs.pop(run.prompt_id, None)

    async def _run_node(self, run: Run, nid: str, sigs: dict[str, Any], cache: dict[Any, CacheEntry]) -> None:
        node = run.prompt[nid]
        class_type = str(node.get("class_type"))
        sig = sigs[nid]
        hit = cache.get(sig)
        if hit is not None:
            if hit.ui is not None:
                run.record_ui(nid, hit.ui)
            run.progress_finish(nid)
            run.executed.append(nid)
            return
        run.progress_start(nid)
        run.last_node_id = nid
        run.to_client("executing", {"node": nid, "display_node": nid, "prompt_id": run.prompt_id})
        await self.checkpoint(run)
        impl = NODE_IMPLS.get(class_type)
        kwargs = self._inputs(run, nid, node, class_type, impl)
        try:
            if impl is None:
                raise NotImplementedError(f"the mock has no implementation of {class_type}")
            fault = self.env.faults.take_node_fault(nid, class_type)
            if fault is not None:
                raise _InjectedFailure(*fault)
            outputs, ui = await impl.fn(_NodeCtx(self, run, nid), **kwargs)
        except (Interrupted, asyncio.CancelledError):
            raise
        except Exception as exc:
            type_name = exc.type_name if isinstance(exc, _InjectedFailure) else _type_name(exc)
            raise _NodeFailed(
                {
                    "prompt_id": run.prompt_id,
                    "node_id": nid,
                    "node_type": class_type,
                    "executed": list(run.executed),
                    "exception_message": f"{exc}\n",
                    "exception_type": type_name,
                    "traceback": traceback.format_tb(exc.__traceback__),
                    "current_inputs": {k: [encode_for_error(v)] for k, v in kwargs.items()},
                    "current_outputs": list(run.order),
                }
            ) from None
        cache[sig] = CacheEntry(outputs, ui)
        if ui is not None:
            run.record_ui(nid, ui)
        run.progress_finish(nid)
        run.executed.append(nid)

    def _inputs(
        self, run: Run, nid: str, node: dict[str, Any], class_type: str, impl: NodeImpl | None
    ) -> dict[str, Any]:
        types = self.env.catalog.input_types(class_type)
        kwargs: dict[str, Any] = {}
        for name, value in (node.get("inputs") or {}).items():
            kind = types.get(name)
            if kind is None or kind == "HIDDEN":
                continue  # undeclared inputs are ignored, like the real server
            if is_link(value):
                entry = run.cache.get(run.sigs.get(str(value[0])))
                if entry is None:
                    raise RuntimeError(f"node {nid}: input {name} links to {value[0]}, which has no output")
                kwargs[name] = entry.outputs[int(value[1])]
                continue
            if isinstance(value, dict) and "__value__" in value:
                value = value["__value__"]
            conv: Callable[[Any], Any] | None = {"INT": int, "FLOAT": float, "STRING": str, "BOOLEAN": bool}.get(
                kind
            )
            if conv is not None:
                try:
                    value = conv(value)
                except (TypeError, ValueError):
                    pass
            kwargs[name] = value
        for name, kind in types.items():
            if kind == "HIDDEN":
                if name == "prompt":
                    kwargs[name] = run.prompt
                elif name == "extra_pnginfo":
                    kwargs[name] = (run.extra_data or {}).get("extra_pnginfo")
                elif name == "unique_id":
                    kwargs[name] = nid
        return kwargs

class _NodeFailed(Exception):
    def __init__(self, details: dict[str, Any]) -> None:
        super().__init__(details.get("exception_message", ""))
        self.details = details


def _type_name(exc: BaseException) -> str:
    cls = type(exc)
    module = cls.__module__
    return cls.__qualname__ if module in ("builtins", "__main__") else f"{module}.{cls.__qualname__}"
