"""Reliability suite helpers: tallies shown in the terminal summary (with or without ``-s``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

TALLIES: list[str] = []
"""Lines the soak and race tests want shown at the end of the run, whatever the capture mode."""


def report(line: str) -> None:
    print(line)
    TALLIES.append(line)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if TALLIES:
        terminalreporter.section("comfy_nb reliability tallies")
        for line in TALLIES:
            terminalreporter.write_line(line)


async def wait_until(cond: Callable[[], Any | Awaitable[Any]], timeout: float = 10.0, what: str = "condition") -> Any:
    """Re-check ``cond`` (sync or async) every few ms until truthy; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.005)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
