"""The peer clients live in their own venv (``benchmarks/.peers-venv``), never in the project's.

``python -m benchmarks --setup-peers`` creates it with the versions below, installed the way each
peer's README says (ComfyScript: ``comfy-script[default]``). The client benchmark runs every peer
worker with that venv's interpreter and the repository on ``PYTHONPATH`` (the worker needs only the
standard library, Pillow for the pixel check, and the peer itself).
"""

from __future__ import annotations

import pathlib
import subprocess
import sys
import venv

VENV = pathlib.Path(__file__).resolve().parent / ".peers-venv"
PEERS = [
    "comfy-script[default]==0.6.1",
    "comfy-api-simplified==1.6.0",
    "comfy-sdk==0.5.0",
    "comfy-api-proxy==0.1.6",
    "pillow",
]
MODULES = {  # client name in bench_clients -> the module that must import in the peers venv
    "comfyscript_sync": "comfy_script.runtime",
    "comfyscript_async": "comfy_script.runtime",
    "comfy_api_simplified": "comfy_api_simplified",
    "comfy_sdk_proxy": "comfy_sdk",
}


def python() -> pathlib.Path:
    return VENV / "bin" / "python"


def setup() -> int:
    """Create the peers venv (idempotent) and install the pinned peers into it."""
    if not python().exists():
        venv.EnvBuilder(with_pip=True).create(VENV)
    cmd = [str(python()), "-m", "pip", "install", "-q", *PEERS]
    print("+", " ".join(cmd), flush=True)
    return subprocess.call(cmd)


def available() -> set[str]:
    """The peer clients whose module imports in the peers venv (none when it does not exist)."""
    if not python().exists():
        return set()
    found = set()
    for name, module in MODULES.items():
        code = f"import importlib.util as u, sys; sys.exit(0 if u.find_spec({module.split('.')[0]!r}) else 1)"
        probe = subprocess.run([str(python()), "-c", code], check=False, capture_output=True)
        if probe.returncode == 0:
            found.add(name)
    return found


if __name__ == "__main__":
    sys.exit(setup())
