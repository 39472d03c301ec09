"""Session-wide fixtures: the mock ComfyUI server (a real aiohttp server on 127.0.0.1).

- ``mock_server`` (session): one ``MockServer(step_delay=0)`` shared by every test that only submits
  prompts and reads results. Do not inject faults into it.
- ``fresh_mock`` (function): a new, empty server for tests that inject faults, restart, or need an
  empty queue/history. Faults are confined to it.
- ``pytest_sessionstart`` starts one more mock in a background thread and exports its URL as
  ``COMFY_URL`` for notebooks run by nbval (unless ``COMFY_URL`` is already set); it is stopped in
  ``pytest_sessionfinish``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from captures import FIXTURES
from captures import capture as load_capture

from comfy_nb.mock import MockServer

_NOTEBOOK_MOCK: MockServer | None = None


def pytest_sessionstart(session: pytest.Session) -> None:
    global _NOTEBOOK_MOCK
    if os.environ.get("COMFY_URL"):
        return
    _NOTEBOOK_MOCK = MockServer(step_delay=0.01).start()
    os.environ["COMFY_URL"] = _NOTEBOOK_MOCK.url


def pytest_sessionfinish(session: pytest.Session, exitstatus: Any) -> None:
    global _NOTEBOOK_MOCK
    if _NOTEBOOK_MOCK is not None:
        if os.environ.get("COMFY_URL") == _NOTEBOOK_MOCK.url:
            del os.environ["COMFY_URL"]
        _NOTEBOOK_MOCK.stop()
        _NOTEBOOK_MOCK = None


@pytest.fixture(scope="session")
def mock_server() -> Iterator[MockServer]:
    """A shared mock server (step_delay=0). Do not inject faults into it: use ``fresh_mock``."""
    with MockServer(step_delay=0) as server:
        yield server


@pytest.fixture
def fresh_mock() -> Iterator[MockServer]:
    """A new, empty mock server (step_delay=0) for fault-injection, restart and queue tests."""
    with MockServer(step_delay=0) as server:
        yield server


@pytest.fixture(scope="session")
def capture() -> Any:
    """Load one capture file by name (skips when the shared captures are missing)."""
    if not FIXTURES.is_dir():
        pytest.skip(f"ComfyUI captures not found at {FIXTURES} (set COMFY_NB_FIXTURES)")
    return load_capture


@pytest.fixture(scope="session")
def object_info(capture: Any) -> dict[str, Any]:
    """The captured ``GET /object_info`` (479 node classes, empty model lists)."""
    info: dict[str, Any] = capture("object_info.json")
    return info
