"""``Sweep``: a base task or workflow plus axes of values, expanded into cells.

Cells are expanded eagerly (a sweep is at most a few thousand cells; more than ``max_cells`` is refused
at once with the count) and each gets a key that depends only on the base and on the cell's values, so
a run directory can be resumed by a sweep built again in a later kernel: the same cell gets the same
key and is not run twice. That is why a base task without a seed gets one derived from the task
itself, not drawn at random.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import itertools
import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import WorkflowError
from ..protocol import NodeDef
from ..workflows import PARAMETER_NAMES, bind_parameters

if TYPE_CHECKING:
    from ..client import ComfyClient
    from ._pool import BlockingServerPool
    from ._run import SweepRun

__all__ = ["WORKFLOW_PARAMETERS", "Cell", "Sweep"]

#: Names a ``Workflow`` base binds through its setters (besides ``"node.input"`` and ``"lora:<file>"``).
WORKFLOW_PARAMETERS = (*PARAMETER_NAMES, "size", "lora_strength")
_TASK_EXTRAS = ("size", "lora_strength")
_VARIABLE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_LORA_PREFIX = "lora:"
MAX_CELLS = 100_000
"""The default limit on a sweep's size: a typo (``range(10**6)``) fails at once instead of expanding."""


@dataclass(frozen=True)
class Cell:
    """One point of a sweep: what varies (``params``), what gets bound (``settings``) and a stable key."""

    index: int
    key: str
    params: dict[str, Any]
    """The axis values of this cell (template variables included), in axis order."""
    settings: dict[str, Any]
    """Every value bound into the base for this cell, templates filled in."""

    def label(self) -> str:
        return ", ".join(f"{k}={_short(v)}" for k, v in self.params.items())


def _short(value: Any, limit: int = 40) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _plain(value: Any, name: str) -> Any:
    """A JSON-safe copy of a value (NumPy scalars become Python numbers), or a clear error."""
    item = getattr(value, "item", None)
    if callable(item) and type(value).__module__.startswith("numpy"):
        value = item()
    if isinstance(value, tuple):
        value = [_plain(v, name) for v in value]
    try:
        json.loads(json.dumps(value, allow_nan=False))  # NaN/Infinity would not read back as JSON
    except (TypeError, ValueError):
        raise WorkflowError(
            f"sweep value {value!r} for {name!r} cannot be recorded as JSON: use numbers, strings, lists "
            "or dicts"
        ) from None
    return value


def _is_axis(value: Any) -> bool:
    """Lists, ranges and arrays are axes; strings, numbers, tuples (a size, a LoRA) and dicts are fixed."""
    return not isinstance(value, (str, bytes, tuple, Mapping)) and hasattr(value, "__iter__")


def _base_kind(base: Any) -> str:
    if callable(getattr(base, "to_prompt", None)) and dataclasses.is_dataclass(base):
        return "task"
    if callable(getattr(base, "to_api", None)) and callable(getattr(base, "set", None)):
        return "workflow"
    raise WorkflowError(
        f"a sweep needs a GenerationTask, a Workflow or an API-format graph (dict), not {type(base).__name__}"
    )


class Sweep:
    """A base plus axes: ``Sweep(task, seed=[1, 2], cfg_scale=[4, 7])`` is the 2×2 product.

    * A list (or range/array) is an axis; anything else (a string, number, tuple, dict) is a fixed
      setting for every cell.
    * ``zip=True`` pairs the axes (equal lengths) instead of crossing them.
    * Strings may name other axes as ``{name}``: ``prompt="a {animal}", animal=["fox", "owl"]``. Such
      names need not be parameters (they are template variables); other braces are left as written.
    * Names: the task's fields (or the workflow's setters, see ``WORKFLOW_PARAMETERS``), ``size``
      (``(w, h)``), ``lora_strength`` (the only LoRA), ``"lora:<file>"`` (that LoRA's strength, added
      when missing) and any node input as ``"node_id.input"``.
    """

    def __init__(self, base: Any, /, *, zip: bool = False, max_cells: int = MAX_CELLS, **axes: Any) -> None:
        if isinstance(base, Mapping):
            from ..workflows import Workflow

            base = Workflow(base)
        self.kind = _base_kind(base)
        if self.kind == "task" and getattr(base, "seed", 0) is None:
            # One seed for the whole sweep (cells differ only by what is swept), derived from the task
            # so that the same Sweep built in a new kernel has the same cell keys and resumes.
            base = dataclasses.replace(base, seed=_derived_seed(base))
        self.base = base
        self.zip = bool(zip)
        self.axes: dict[str, list[Any]] = {}
        self.fixed: dict[str, Any] = {}
        for name, value in axes.items():
            if _is_axis(value):
                values = [_plain(v, name) for v in _bounded_axis(name, value, max_cells)]
                if not values:
                    raise WorkflowError(f"sweep axis {name!r} is empty")
                self.axes[name] = values
            else:
                self.fixed[name] = _plain(value, name)
        self._check_names()
        lengths = {n: len(v) for n, v in self.axes.items()}
        if self.zip and len(set(lengths.values())) > 1:
            shown = ", ".join(f"{n}: {k}" for n, k in lengths.items())
            raise WorkflowError(f"zip=True needs axes of equal length; got {shown}")
        count = min(lengths.values(), default=1) if self.zip else math.prod(lengths.values())
        if count > max_cells:
            shown = " × ".join(f"{n}[{k}]" for n, k in lengths.items())
            raise WorkflowError(
                f"this sweep has {count:,} cells ({shown}), over the limit of {max_cells:,}: check the axes "
                "for a typo, or pass max_cells= to run one this large"
            )
        self.fingerprint = hashlib.sha256(_canonical(self.base_data()).encode()).hexdigest()[:16]
        self.cells: list[Cell] = self._expand()
        if self.kind == "workflow":
            self.build(self.cells[0], None, {})  # a workflow binds without a server: fail now, not per cell

    # ------------------------------------------------------------------ names

    def bindable(self) -> list[str]:
        """The parameter names this base accepts (plus ``"node.input"`` and ``"lora:<file>"``)."""
        if self.kind == "workflow":
            return list(WORKFLOW_PARAMETERS)
        names = [f.name for f in dataclasses.fields(self.base) if f.init]
        return names + [n for n in _TASK_EXTRAS if n not in names]

    def _is_bindable(self, name: str) -> bool:
        if name.startswith(_LORA_PREFIX) and len(name) > len(_LORA_PREFIX):
            return True
        node, dot, input_name = name.rpartition(".")
        if dot and node and input_name:
            return True
        return name in self.bindable()

    def _check_names(self) -> None:
        referenced: set[str] = set()
        for value in [*self.fixed.values(), *itertools.chain.from_iterable(self.axes.values())]:
            if isinstance(value, str):
                referenced.update(_VARIABLE.findall(value))
        unknown = [n for n in [*self.axes, *self.fixed] if not self._is_bindable(n) and n not in referenced]
        if unknown:
            raise WorkflowError(
                f"unknown sweep parameter{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}: "
                f"bindable names are {', '.join(self.bindable())}, 'lora:<file>' and any node input as "
                "'<node id>.<input>' (e.g. '3.seed'); a template variable must appear as {name} in a string"
            )
        self.variables = [n for n in [*self.axes, *self.fixed] if not self._is_bindable(n)]

    # ------------------------------------------------------------------ cells

    def _expand(self) -> list[Cell]:
        names = list(self.axes)
        columns = [self.axes[n] for n in names]
        rows: Iterator[tuple[Any, ...]] = zip(*columns, strict=True) if self.zip else itertools.product(*columns)
        cells = []
        for index, row in enumerate(rows):
            params = dict(zip(names, row, strict=True))
            values = {**self.fixed, **params}
            settings = {
                n: _fill(v, values) for n, v in values.items() if n not in self.variables
            }
            digest = hashlib.sha256(
                _canonical({"base": self.fingerprint, "params": params, "settings": settings}).encode()
            ).hexdigest()
            cells.append(Cell(index, digest[:16], params, settings))
        return cells

    def __len__(self) -> int:
        return len(self.cells)

    def __iter__(self) -> Iterator[Cell]:
        return iter(self.cells)

    def __getitem__(self, index: int) -> Cell:
        return self.cells[index]

    def __repr__(self) -> str:
        shape = " × ".join(f"{n}[{len(v)}]" for n, v in self.axes.items()) or "one cell"
        how = " (zipped)" if self.zip else ""
        return f"Sweep({self.kind}: {shape}{how}, {len(self)} cells)"

    # ------------------------------------------------------------------ binding

    def run(self, client: ComfyClient | BlockingServerPool, **kwargs: Any) -> SweepRun:
        """Run every cell with a blocking client or pool and return the finished ``SweepRun`` (Ctrl-C cancels).

        With an ``AsyncComfyClient`` or ``ServerPool`` use ``run = await run_sweep(client, sweep)`` instead:
        it returns at once and the run fills in while the kernel stays free. Keyword arguments
        (``concurrency``, ``output_dir``, ...) are ``run_sweep``'s, plus ``progress`` (a text progress
        line on stderr; default: a terminal outside a notebook).
        """
        from ._runner import run_sweep_blocking

        return run_sweep_blocking(client, self, **kwargs)

    def build(self, cell: Cell, config: Any, node_defs: dict[str, NodeDef] | None) -> tuple[dict[str, Any], dict[str, Any]]:
        """The API graph and the job parameters for one cell (validated against ``node_defs`` unless None)."""
        if self.kind == "workflow":
            return _bind_workflow(self.base, cell.settings)
        return _bind_task(self.base, cell.settings, config, node_defs)

    # ------------------------------------------------------------------ persistence

    def base_data(self) -> dict[str, Any]:
        """The base as JSON, with what it takes to rebuild it (``SweepRun.load`` → resume)."""
        cls = type(self.base)
        data = self.base.to_api() if self.kind == "workflow" else _task_data(self.base)
        return {"kind": self.kind, "class": f"{cls.__module__}:{cls.__qualname__}", "data": data}

    def to_manifest(self) -> dict[str, Any]:
        return {
            "base": self.base_data(),
            "fingerprint": self.fingerprint,
            "axes": self.axes,
            "fixed": self.fixed,
            "zip": self.zip,
            "variables": self.variables,
            "cells": [{"index": c.index, "key": c.key, "params": c.params} for c in self.cells],
        }

    @classmethod
    def from_manifest(cls, manifest: Mapping[str, Any]) -> Sweep:
        """Rebuild a sweep from ``sweep.json`` (its base class is imported by name)."""
        base_info = manifest["base"]
        module, _, qualname = str(base_info["class"]).partition(":")
        target: Any = importlib.import_module(module)
        for part in qualname.split("."):
            target = getattr(target, part)
        base = target(base_info["data"]) if base_info["kind"] == "workflow" else target(**base_info["data"])
        return cls(base, zip=bool(manifest.get("zip")), **manifest.get("fixed", {}), **manifest["axes"])


def _bounded_axis(name: str, value: Any, limit: int) -> list[Any]:
    """The axis's values, reading no more than ``limit + 1`` of them (a typo-sized range fails fast)."""
    size = len(value) if hasattr(value, "__len__") else None
    values = list(itertools.islice(iter(value), limit + 1)) if size is None or size > limit else list(value)
    if len(values) > limit:
        total = f"{size:,}" if size is not None else f"more than {limit:,}"
        raise WorkflowError(
            f"sweep axis {name!r} has {total} values, over the limit of {limit:,} cells: check it for a typo, "
            "or pass max_cells= to run a sweep this large"
        )
    return values


def _derived_seed(task: Any) -> int:
    """A seed that depends only on the task's fields (the same in every kernel)."""
    digest = hashlib.sha256(_canonical(_task_data(task)).encode()).digest()
    return int.from_bytes(digest[:4], "big")


def _fill(value: Any, values: Mapping[str, Any]) -> Any:
    """Fill ``{name}`` in a string from the cell's values; unknown braces stay as they are."""
    if not isinstance(value, str):
        return value

    def sub(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            return match.group(0)
        inner = values[name]
        return str(_fill(inner, values) if isinstance(inner, str) and inner != value else inner)

    return _VARIABLE.sub(sub, value)


def _split_settings(settings: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, float], dict[str, Any]]:
    """(named parameters, LoRA strengths by file, node inputs by "node.input")."""
    named: dict[str, Any] = {}
    loras: dict[str, float] = {}
    nodes: dict[str, Any] = {}
    for name, value in settings.items():
        if name.startswith(_LORA_PREFIX):
            loras[name[len(_LORA_PREFIX):]] = float(value)
        elif "." in name:
            nodes[name] = value
        else:
            named[name] = value
    return named, loras, nodes


def _size(value: Any) -> tuple[int, int]:
    if isinstance(value, int):
        return value, value
    if isinstance(value, str) and "x" in value.lower():
        w, _, h = value.lower().partition("x")
        return int(w), int(h)
    if isinstance(value, Sequence) and len(value) == 2:
        return int(value[0]), int(value[1])
    raise WorkflowError(f"size must be (width, height), 'WxH' or one number, not {value!r}")


def _bind_workflow(base: Any, settings: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    wf = base.copy()
    named, loras, nodes = _split_settings(settings)
    if "size" in named:
        width, height = _size(named.pop("size"))
        named.setdefault("width", width)
        named.setdefault("height", height)
    lora_strength = named.pop("lora_strength", None)
    bind_parameters(wf, named)
    if lora_strength is not None:
        strength = float(lora_strength)
        loaders = [n for n in wf.nodes() if "lora_name" in n.inputs]
        if len(loaders) != 1:
            raise WorkflowError(
                f"lora_strength needs exactly one LoRA loader in the workflow, found {len(loaders)}; "
                "sweep 'lora:<file>' instead"
            )
        _set_lora_node(loaders[0], strength)
    for file, strength in loras.items():
        found = [n for n in wf.nodes() if n.inputs.get("lora_name") == file]
        if found:
            for node in found:
                _set_lora_node(node, strength)
        else:
            wf.add_lora(file, strength, strength)
    for path, value in nodes.items():
        wf.set(path, value)
    meta = {k: v for k, v in wf.parameters().items() if v is not None}
    if "cfg" in meta:
        meta["cfg_scale"] = meta["cfg"]
    return wf.to_api(), meta


def _set_lora_node(node: Any, strength: float) -> None:
    for name in ("strength_model", "strength_clip"):
        if name in node.inputs:
            node.inputs[name] = strength


def _task_data(task: Any) -> dict[str, Any]:
    """A task's constructor arguments as JSON (LoRAs as ``[name, strength_model, strength_clip]``)."""
    data = {f.name: getattr(task, f.name) for f in dataclasses.fields(task) if f.init}
    if data.get("loras") is not None:
        data["loras"] = [list(spec) for spec in _lora_specs(data["loras"])]
    return data


def _lora_specs(items: Sequence[Any]) -> list[tuple[str, float, float]]:
    from ..config import LoraSpec

    specs = [item if isinstance(item, LoraSpec) else LoraSpec.model_validate(item) for item in items]
    return [(s.name, s.strength_model, s.strength_clip) for s in specs]


def _bind_task(
    base: Any, settings: Mapping[str, Any], config: Any, node_defs: dict[str, NodeDef] | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    named, loras, nodes = _split_settings(settings)
    if "size" in named:
        named["width"], named["height"] = _size(named.pop("size"))
    if "lora_strength" in named or loras:
        current = _lora_specs(base.loras or [])
        if "lora_strength" in named:
            if len(current) != 1:
                raise WorkflowError(
                    f"lora_strength needs exactly one LoRA on the task (loras=[...]), it has {len(current)}; "
                    "sweep 'lora:<file>' instead"
                )
            strength = float(named.pop("lora_strength"))
            current = [(current[0][0], strength, strength)]
        for file, strength in loras.items():
            if not any(name == file for name, _, _ in current):
                current.append((file, strength, strength))
            current = [(n, strength, strength) if n == file else (n, m, c) for n, m, c in current]
        named["loras"] = current
    task = dataclasses.replace(base, **named)
    graph, meta = task.to_prompt(config, node_defs)
    for path, value in nodes.items():
        node_id, _, input_name = path.rpartition(".")
        node = graph.get(node_id)
        if not isinstance(node, dict):
            raise WorkflowError(
                f"sweep parameter {path!r}: the task's graph has no node {node_id!r}; nodes: "
                + ", ".join(f"{k} ({v.get('class_type')})" for k, v in graph.items())
            )
        node.setdefault("inputs", {})[input_name] = value
    if "cfg" in meta:
        meta["cfg_scale"] = meta["cfg"]
    return graph, dict(meta)
