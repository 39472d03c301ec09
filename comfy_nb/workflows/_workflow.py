"""``Workflow``: an API-format graph you can load (a file, a PNG, a UI save plus the server's
``object_info``), bind parameters into by role (``_roles.py``), validate as the server would, and save."""

from __future__ import annotations

import builtins
import json
import os
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from ..errors import ComfyError, WorkflowError
from ..protocol import is_ui_workflow, prompt_validation_error, validate_prompt
from ._defs import ObjectInfo, as_node_defs, as_object_info
from ._graph import Node
from ._layout import ui_boxes
from ._roles import RoleBinding
from ._ui import ui_to_api
from ._ui_text import RandomSource

__all__ = ["Node", "Workflow"]


class Workflow(RoleBinding):
    """An API-format ComfyUI graph ``{node_id: {"class_type", "inputs", "_meta"}}``."""

    def __init__(self, prompt: Mapping[str, Any], *, name: str | None = None) -> None:
        super().__init__(prompt)
        self.name = name
        self.ui_layout: dict[str, tuple[float, float, float, float]] | None = None
        """``{node_id: (x, y, w, h)}`` from the UI workflow this came from (its nodes' ``pos``/``size``), else None."""

    def __repr__(self) -> str:
        name = f" {self.name!r}" if self.name else ""
        return f"<Workflow{name}: {len(self)} nodes>"

    # -- loading and saving --------------------------------------------------------------------
    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        object_info: ObjectInfo | None = None,
        *,
        rng: RandomSource | int | None = None,
        now: datetime | None = None,
    ) -> Workflow:
        """Read an API-format file, or a UI-format one when ``object_info`` is given to convert it
        (``rng``/``now`` as in ``from_ui``)."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise WorkflowError(f"cannot read workflow {path}: {exc}") from None
        return cls._from_data(data, object_info, name=path.stem, source=str(path), rng=rng, now=now)

    @classmethod
    def from_ui(
        cls,
        ui: Mapping[str, Any],
        object_info: ObjectInfo,
        *,
        name: str | None = None,
        rng: RandomSource | int | None = None,
        now: datetime | None = None,
    ) -> Workflow:
        """Convert a UI-format workflow exactly as the ComfyUI frontend would, using the server's node definitions.

        ``rng`` (a seed or a ``random.Random``) fixes the ``{a|b}`` choices in dynamic-prompt text, which
        are random by default as in the frontend; ``now`` is the time for ``%date:...%`` in file names
        (default: now).
        """
        workflow = cls(ui_to_api(ui, as_node_defs(object_info), rng=rng, now=now), name=name)
        boxes = ui_boxes(ui, workflow._nodes)
        workflow.ui_layout = {k: (b.x, b.y, b.w, b.h) for k, b in boxes.items()} or None
        return workflow

    @classmethod
    def from_png(
        cls,
        path: str | os.PathLike[str],
        object_info: ObjectInfo | None = None,
        *,
        rng: RandomSource | int | None = None,
        now: datetime | None = None,
    ) -> Workflow:
        """Read the graph ComfyUI embeds in a PNG: the ``prompt`` text chunk, else ``workflow`` (UI, needs object_info)."""
        from PIL import Image

        try:
            with Image.open(path) as image:
                chunks = {k: v for k, v in image.info.items() if isinstance(v, str)}
        except OSError as exc:
            raise WorkflowError(f"cannot read {path} as an image: {exc}") from None
        for key in ("prompt", "workflow"):
            if key in chunks:
                try:
                    data = json.loads(chunks[key])
                except ValueError:
                    raise WorkflowError(f"the {key!r} metadata in {path} is not JSON") from None
                if key == "workflow" and object_info is None:
                    raise WorkflowError(
                        f"{path} only carries the UI workflow; pass object_info to convert it"
                    )
                return cls._from_data(
                    data, object_info, name=Path(path).stem, source=str(path), rng=rng, now=now
                )
        raise WorkflowError(f"{path} has no ComfyUI 'prompt' or 'workflow' metadata")

    @classmethod
    def _from_data(
        cls,
        data: Any,
        object_info: ObjectInfo | None,
        *,
        name: str,
        source: str,
        rng: RandomSource | int | None = None,
        now: datetime | None = None,
    ) -> Workflow:
        if is_ui_workflow(data):
            if object_info is None:
                raise WorkflowError(
                    f"{source} is a UI-format workflow (saved with 'Save', not 'Export (API)'): pass "
                    "object_info=client.object_info() to convert it, or export it in API format"
                )
            return cls.from_ui(data, object_info, name=name, rng=rng, now=now)
        if not isinstance(data, Mapping):
            raise WorkflowError(f"{source} is not a ComfyUI workflow (expected a JSON object)")
        return cls(data, name=name)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the API-format JSON (loadable by ``Workflow.load`` and ComfyUI's API)."""
        path = Path(path)
        path.write_text(self.to_json() + "\n", encoding="utf-8")
        return path

    def copy(self) -> Workflow:
        twin = Workflow(self._nodes, name=self.name)
        twin.ui_layout = dict(self.ui_layout) if self.ui_layout is not None else None
        return twin

    def show(self) -> Any:
        """A ``GraphView`` of this graph (not running); the last line of a cell displays it."""
        from .._display import viewer_for

        view = viewer_for(self)
        if view is None:
            raise ComfyError(
                "Workflow.show() needs comfy_nb.widgets, which could not be imported: check that ipywidgets "
                "and anywidget (dependencies of comfy_nb) are installed in this environment"
            )
        return view

    # -- validation ----------------------------------------------------------------------------
    def validate(
        self,
        object_info: ObjectInfo,
        *,
        strict_combos: bool = True,
        input_files: builtins.set[str] | None = None,
    ) -> None:
        """Check the graph as the server would; raise ``PromptValidationError`` in the server's words.

        Unlike the server, V3 combo values are checked too (``strict_combos``), and a graph where only
        some outputs are valid is an error (the server would silently drop the others).
        """
        prompt = self.to_api()
        check = validate_prompt(
            prompt,
            as_object_info(object_info),
            strict_combos=strict_combos,
            input_files=input_files,
            client_checks=True,
        )
        if check.ok and not check.node_errors:
            return
        body = check.error_body or {
            "error": {
                "type": "prompt_outputs_failed_validation",
                "message": "Some outputs failed validation (the server would drop them)",
                "details": "",
                "extra_info": {},
            },
            "node_errors": check.node_errors,
        }
        raise prompt_validation_error(body, prompt=prompt)
