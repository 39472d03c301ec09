"""Captures from a real ComfyUI 0.3.64 server (``shared/fixtures/comfyui``)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(
    os.environ.get("COMFY_NB_FIXTURES", Path(__file__).resolve().parents[3] / "shared/fixtures/comfyui")
)


@pytest.fixture(scope="session")
def capture() -> Callable[[str], Any]:
    """Load one capture file by name."""
    if not FIXTURES.is_dir():
        pytest.skip(f"ComfyUI captures not found at {FIXTURES} (set COMFY_NB_FIXTURES)")
    return lambda name: json.loads((FIXTURES / name).read_text())


@pytest.fixture(scope="session")
def object_info(capture: Callable[[str], Any]) -> dict[str, Any]:
    info: dict[str, Any] = capture("object_info.json")
    return info
