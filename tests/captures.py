"""The captures of a real ComfyUI 0.3.64 (``../shared/fixtures/comfyui``), for every test folder.

``COMFY_NB_FIXTURES`` points elsewhere when the shared folder is not beside the checkout.
"""

from __future__ import annotations

import json
import os
import pathlib
from typing import Any

FIXTURES = pathlib.Path(
    os.environ.get("COMFY_NB_FIXTURES", pathlib.Path(__file__).resolve().parents[2] / "shared/fixtures/comfyui")
)


def capture(name: str) -> Any:
    """One capture file, parsed."""
    return json.loads((FIXTURES / name).read_text())
