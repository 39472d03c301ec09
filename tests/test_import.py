"""Importing the client stays light: no ipywidgets (nor anywidget, IPython, the mock or PIL)."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ["ipywidgets", "anywidget", "IPython", "comfy_nb.widgets", "comfy_nb.mock", "aiohttp.web", "numpy"]


def _loaded_after(code: str) -> dict[str, bool]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps({{m: m in sys.modules for m in {HEAVY!r}}}))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    loaded: dict[str, bool] = json.loads(out.stdout.strip().splitlines()[-1])
    return loaded


def test_import_comfy_nb_does_not_import_widgets() -> None:
    loaded = _loaded_after("import comfy_nb")
    assert not any(loaded.values()), {k for k, v in loaded.items() if v}


def test_using_the_client_api_does_not_import_widgets() -> None:
    loaded = _loaded_after(
        "from comfy_nb import AsyncComfyClient, ComfyClient, Job, JobStatus, JobState, Output\n"
        "import comfy_nb.client, comfy_nb.protocol, comfy_nb.errors\n"
        "AsyncComfyClient('http://127.0.0.1:1')"
    )
    assert not any(loaded.values()), {k for k, v in loaded.items() if v}


def test_the_probe_can_see_a_widget_import() -> None:
    """The check above is real: importing the widgets is seen."""
    assert _loaded_after("import comfy_nb.widgets")["ipywidgets"]


def test_no_import_points_up_a_layer() -> None:
    """``.ci/layers.py`` reads every import (lazy and TYPE_CHECKING ones too) and refuses upward arrows."""
    import pathlib

    script = pathlib.Path(__file__).resolve().parents[1] / ".ci" / "layers.py"
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stdout
    assert "0 problems" in out.stdout
