"""Items 18 and 19, as a user meets them in a terminal: run as scripts in a subprocess."""

from __future__ import annotations

import os
import pathlib
import re
import socket
import subprocess
import sys

import pytest

from comfy_nb.mock import MockServer

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"
LIMIT = 120.0
"""Seconds a subprocess may take (an upper bound on hangs, never a speed check)."""


def tour_code() -> str:
    """The README's 30-second tour, exactly as written there."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## 30-second tour", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match is not None
    return match.group(1)


def env(**extra: str) -> dict[str, str]:
    root = str(pathlib.Path(__file__).resolve().parents[2])
    return {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]), **extra}


def test_the_tour_as_a_script_exits_quietly() -> None:
    """Item 18: a client never closed is cleaned up at interpreter exit without a word on stderr."""
    with MockServer(step_delay=0) as server:
        done = subprocess.run([sys.executable, "-c", tour_code()], check=False, capture_output=True, text=True,
                              timeout=LIMIT, env=env(COMFY_URL=server.url))
    assert done.returncode == 0, done.stderr
    assert "completed" in done.stdout
    assert done.stderr == ""


def test_a_script_with_a_job_in_flight_exits_quietly() -> None:
    """Exit while a job still runs and a thread could be waiting: nothing is left to complain."""
    code = (
        "import comfy_nb\n"
        "from comfy_nb import GenerationTask\n"
        "client = comfy_nb.connect()\n"
        "job = client.submit_task(GenerationTask(prompt='x', steps=200, seed=1))\n"
        "print(job.status.state)\n"
    )
    with MockServer(step_delay=0.05) as server:
        done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=LIMIT,
                              env=env(COMFY_URL=server.url))
    assert done.returncode == 0 and done.stderr == "", done.stderr


def test_mock_on_a_taken_port_says_so_in_one_line() -> None:
    """Item 19."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "comfy_nb.mock", "--port", str(port)], check=False, capture_output=True,
                              text=True, timeout=LIMIT, env=env())
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "already in use" in lines[0] and "--port" in lines[0] and str(port) in lines[0]


@pytest.mark.parametrize("argv", [["--port", "-5"], ["--port", "99999"]])
def test_mock_with_a_bad_port_is_short(argv: list[str]) -> None:
    done = subprocess.run([sys.executable, "-m", "comfy_nb.mock", *argv], check=False, capture_output=True, text=True,
                          timeout=LIMIT, env=env())
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip().splitlines()[-1].endswith("is not a port number (0-65535; 0 picks a free one)")
