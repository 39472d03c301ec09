"""Fixtures for the v2 / cloud tests: ``comfy-api-proxy`` in front of the built-in mock."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from _proxy import PROXY_TOKEN, ProxyThread  # noqa: E402

from comfy_nb.mock import MockServer  # noqa: E402


@pytest.fixture
def proxied() -> Iterator[tuple[MockServer, ProxyThread]]:
    """A fresh mock (with the jobs API the proxy's cancel calls) and comfy-api-proxy in front of it."""
    with MockServer(step_delay=0, jobs_api=True) as mock, ProxyThread(mock.url, token=PROXY_TOKEN) as proxy:
        yield mock, proxy
