"""Helpers for experiment tests: a small, fast txt2img workflow the mock can run."""

from __future__ import annotations

import pytest

from comfy_nb.workflows import Workflow, load_template


@pytest.fixture
def small_wf() -> Workflow:
    wf = load_template("txt2img")
    wf.set_checkpoint("sd15-mock.safetensors")
    wf.set_size(64, 64)
    wf.set_sampler(steps=4)
    return wf
