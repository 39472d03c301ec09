"""Start JupyterLab headless on 127.0.0.1 (fresh port + token) and drive it with Debian's Chromium.

Recipe: ../shared/reference/ecosystem.md B.3. No browser download: ``executable_path=/usr/bin/chromium``.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Lab:
    def __init__(self, root: Path, port: int, token: str, proc: subprocess.Popen[bytes]) -> None:
        self.root, self.port, self.token, self.proc = root, port, token, proc

    def url(self, notebook: str) -> str:
        return f"http://127.0.0.1:{self.port}/lab/tree/{notebook}?token={self.token}&reset"


@contextmanager
def running_lab(root: Path, timeout: float = 60.0) -> Iterator[Lab]:
    port = free_port()
    token = secrets.token_hex(16)
    workspaces = tempfile.mkdtemp(prefix="cnb-lab-ws-")
    args = [
        sys.executable, "-m", "jupyterlab", "--no-browser",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
        f"--LabApp.workspaces_dir={workspaces}", "--LabApp.expose_app_in_browser=True",
        "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--allow-root")
    log = open(root / "lab.log", "wb")  # noqa: SIM115 - closed in finally
    env = dict(os.environ, JUPYTER_PLATFORM_DIRS="1", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env, cwd=root)
    try:
        deadline = time.monotonic() + timeout
        status_url = f"http://127.0.0.1:{port}/api/status?token={token}"
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited early:\n{(root / 'lab.log').read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(status_url, timeout=2) as r:
                    if r.status == 200:
                        break
            except urllib.error.HTTPError as exc:
                raise RuntimeError(f"port {port} answered {exc.code}: a stale server?") from None
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"JupyterLab did not start:\n{(root / 'lab.log').read_text()[-3000:]}")
            time.sleep(0.2)  # polling interval for an external process, not synchronisation of test logic
        yield Lab(root, port, token, proc)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        log.close()


def write_notebook(path: Path, cells: list[str]) -> None:
    nb = {
        "cells": [{"cell_type": "code", "execution_count": None, "id": f"c{i}", "metadata": {}, "outputs": [],
                   "source": src} for i, src in enumerate(cells)],
        "metadata": {"kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python",
                                    "name": "python3"},
                     "language_info": {"name": "python"}},
        "nbformat": 4, "nbformat_minor": 5,
    }
    path.write_text(json.dumps(nb, indent=1))


def open_and_run(page: Any, lab: Lab, notebook: str, timeout: float = 60_000) -> None:
    """Open ``notebook``, wait for its kernel to be idle, run all cells (retrying until the first runs)."""
    from playwright.sync_api import TimeoutError as PWTimeout
    from playwright.sync_api import expect

    page.goto(lab.url(notebook))
    page.wait_for_selector(".jp-Notebook", timeout=timeout)
    expect(page.locator("#jp-main-statusbar").get_by_text("Python 3 (ipykernel) | Idle")).to_be_visible(
        timeout=timeout)
    prompt = page.locator(".jp-Cell").first.locator(".jp-InputPrompt")
    deadline = time.monotonic() + timeout / 1000
    while True:
        page.locator(".jp-Cell").first.click()
        page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
        try:
            expect(prompt).not_to_have_text("[ ]:", timeout=5_000)
            return
        except (AssertionError, PWTimeout):
            if time.monotonic() > deadline:
                raise
