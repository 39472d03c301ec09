"""The run directory: ``sweep.json``, one sidecar per finished cell, and the downloaded outputs.

::

    runs/foxes/
      sweep.json                 the sweep (base, axes, cells) — rewritten when a run starts
      cells/<key>.json           one per finished cell: parameters, exact graph, seed, server, timings
      outputs/<key>/<file>       what the cell produced, as the server named it

Every file is written whole (temp file + rename), so a crash or kernel restart leaves either the old
file or the new one, never half of one; a cell counts as finished only once its sidecar exists.
"""

from __future__ import annotations

import json
import os
import pathlib
from dataclasses import dataclass, field, fields
from typing import Any

from .._files import write_atomic

__all__ = ["TERMINAL", "CellResult", "RunStore", "write_json_atomic"]

MANIFEST = "sweep.json"
FORMAT = "comfy_nb.sweep/1"
TERMINAL = frozenset({"completed", "failed", "cancelled"})


@dataclass(frozen=True)
class CellResult:
    """What happened to one cell; replaced (not mutated) at each change, so any thread may read it."""

    index: int
    key: str
    params: dict[str, Any]
    state: str = "pending"
    """``pending``, ``queued``, ``running``, ``completed``, ``failed`` or ``cancelled``."""
    prompt_id: str | None = None
    server: str | None = None
    overflow: bool = False
    """The server was one of the pool's overflow servers (``ServerPool(..., overflow=[...])``)."""
    seed: Any = None
    """The seed the graph was built with (resolved when the task asked for a random one)."""
    meta: dict[str, Any] = field(default_factory=dict)
    graph: dict[str, Any] | None = None
    """The exact API graph submitted."""
    submitted_at: float | None = None
    queued_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    outputs: tuple[str, ...] = ()
    """Output files, relative to the run directory."""
    texts: tuple[str, ...] = ()
    error: str | None = None
    error_type: str | None = None
    attempts: tuple[dict[str, Any], ...] = ()
    """Earlier submissions of this cell that were moved away from a server that went down."""

    @property
    def done(self) -> bool:
        return self.state in TERMINAL

    def to_json(self) -> dict[str, Any]:
        """The sidecar's JSON object. Its nested values are this result's own (read them, do not change
        them): ``asdict`` would deep-copy every cell's graph only for it to be serialised."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["format"] = "comfy_nb.cell/1"
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CellResult:
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        for name in ("outputs", "texts", "attempts"):
            values[name] = tuple(values.get(name) or ())
        return cls(**values)


def write_json_atomic(path: pathlib.Path, data: Any) -> None:
    """Write JSON next to ``path`` and rename it into place (never a half-written file)."""
    write_atomic(path, json.dumps(data, ensure_ascii=False, default=str))


class RunStore:
    """Reads and writes one run directory."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = pathlib.Path(directory).resolve()

    @property
    def manifest_path(self) -> pathlib.Path:
        return self.directory / MANIFEST

    def sidecar_path(self, key: str) -> pathlib.Path:
        return self.directory / "cells" / f"{key}.json"

    def output_dir(self, key: str) -> pathlib.Path:
        return self.directory / "outputs" / key

    def read_manifest(self) -> dict[str, Any] | None:
        """The manifest, None if there is none; ``ConfigError`` naming the file if it cannot be used."""
        from ..errors import ConfigError

        try:
            data = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read the sweep manifest {self.manifest_path}: {exc}") from None
        except ValueError as exc:  # truncated or edited by hand
            raise ConfigError(
                f"the sweep manifest {self.manifest_path} is not valid JSON ({exc}); it may have been cut "
                "short or edited. Restore it, or delete it and run the same Sweep again into this directory "
                "(finished cells are kept: their results are in cells/)"
            ) from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ConfigError(f"{self.manifest_path} is not a comfy_nb sweep manifest")
        return data

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        write_json_atomic(self.manifest_path, {"format": FORMAT, **manifest})

    def read_results(self) -> dict[str, CellResult]:
        """Every readable sidecar, by cell key (a damaged one counts as not finished)."""
        out: dict[str, CellResult] = {}
        folder = self.directory / "cells"
        if not folder.is_dir():
            return out
        for path in folder.glob("*.json"):
            try:
                result = CellResult.from_json(json.loads(path.read_text(encoding="utf-8")))
            except (OSError, ValueError, TypeError):
                continue
            out[result.key] = result
        return out

    def write_result(self, result: CellResult) -> None:
        write_json_atomic(self.sidecar_path(result.key), result.to_json())
