"""The console progress line: drawn for a terminal outside a notebook, silent otherwise, forced on request."""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from comfy_nb import ComfyClient
from comfy_nb.client import _console
from comfy_nb.client._console import ConsoleLine, wants_progress
from comfy_nb.errors import ComfyTimeout
from comfy_nb.experiments import Sweep
from comfy_nb.mock import MockServer
from comfy_nb.workflows import load_template

TIMEOUT = 30.0


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def slow(steps: int = 30, seconds: float = 0.01) -> dict[str, Any]:
    return {
        "1": {"class_type": "SlowProgressImage",
              "inputs": {"steps": steps, "seconds_per_step": seconds, "width": 16, "height": 16,
                         "send_preview": False, "send_text": False, "seed": 1}},
        "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}},
    }


@pytest.fixture(scope="module")
def client() -> Iterator[ComfyClient]:
    with MockServer() as server:
        c = ComfyClient(server.url)
        yield c
        c.close()


def test_line_looks_like_tqdm_and_redraws_in_place() -> None:
    now = [0.0]
    term = Terminal()
    line = ConsoleLine("a red fox", term, clock=lambda: now[0])
    line.update(0.42, "KSampler 420/1000", 12.0, 17.0)
    now[0] += 0.01
    line.update(0.43, "KSampler 430/1000", 12.1, 16.9)  # inside the redraw interval: skipped
    now[0] += 0.2
    line.update(1.0, "completed", 29.0, None, final=True)
    out = term.getvalue()
    first, last = out.split("\r")[1:]
    assert first.startswith("comfy_nb a red fox  42%|████████▍") and first.endswith("| KSampler 420/1000 [00:12<00:17]")
    assert last.startswith("comfy_nb a red fox 100%|" + "█" * 20 + "| completed [00:29]") and last.endswith("\n")
    assert "430/1000" not in out


def test_default_is_a_terminal_outside_a_notebook(monkeypatch: pytest.MonkeyPatch) -> None:
    assert wants_progress(None, Terminal())
    assert not wants_progress(None, io.StringIO())
    assert wants_progress(True, io.StringIO()) and not wants_progress(False, Terminal())
    monkeypatch.setattr(_console, "_in_notebook", lambda: True)
    assert not wants_progress(None, Terminal())


def test_job_wait_draws_on_a_terminal_stderr(client: ComfyClient, monkeypatch: pytest.MonkeyPatch) -> None:
    term = Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    job = client.submit(slow(steps=1000, seconds=0.01))  # 10 s: still running when the wait gives up
    with pytest.raises(ComfyTimeout):
        job.wait(timeout=0.3)
    job.cancel()
    out = term.getvalue()
    assert out.startswith("\rcomfy_nb ") and "stopped waiting" in out and out.endswith("\n")
    term.truncate(0)
    term.seek(0)
    assert client.submit(slow(steps=3)).result(timeout=TIMEOUT, progress=True)
    last = term.getvalue().split("\r")[-1]
    assert last.startswith("comfy_nb ") and "100%|" + "█" * 20 + "| completed" in last and last.endswith("\n")


def test_job_result_is_silent_when_stderr_is_not_a_terminal(client: ComfyClient,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    plain = io.StringIO()
    monkeypatch.setattr(sys, "stderr", plain)
    client.submit(slow(steps=5)).result(timeout=TIMEOUT)
    assert plain.getvalue() == ""
    term = Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    client.submit(slow(steps=5)).wait(timeout=TIMEOUT, progress=False)
    assert term.getvalue() == ""


def test_asked_for_in_a_log_gives_plain_lines(client: ComfyClient, monkeypatch: pytest.MonkeyPatch) -> None:
    plain = io.StringIO()
    monkeypatch.setattr(sys, "stderr", plain)
    client.submit(slow(steps=5)).result(timeout=TIMEOUT, progress=True)
    lines = plain.getvalue().splitlines()
    assert "\r" not in plain.getvalue() and lines and "100%" in lines[-1] and "completed" in lines[-1]


def test_sweep_draws_cells_done(client: ComfyClient, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    wf = load_template("txt2img")
    wf.set_checkpoint("sd15-mock.safetensors")
    wf.set_size(64, 64)
    wf.set_sampler(steps=2)
    plain = io.StringIO()
    monkeypatch.setattr(sys, "stderr", plain)
    run = Sweep(wf, seed=[1, 2, 3]).run(client, output_dir=tmp_path, progress=True)
    assert run.done
    last = plain.getvalue().splitlines()[-1]
    assert "comfy_nb sweep 100%|" in last and "3/3 cells (3 completed)" in last
