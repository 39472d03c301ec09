"""``save_output`` writes atomically: a save that fails part-way leaves the old file or none at the
target, never a torn one, and no temporary file beside it.

The failure is a real one: a child process lowers its file-size limit (``RLIMIT_FSIZE``) so the OS
refuses to grow any file past a few bytes, as a full disk would, then saves a real output of the mock.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

from comfy_nb.mock import MockServer

pytest.importorskip("resource")  # POSIX only

CHILD = r"""
import json, os, pathlib, resource, sys

umask = os.umask(0o022)  # read it while this process has one thread
os.umask(umask)
from comfy_nb import ComfyClient

url, folder = sys.argv[1], pathlib.Path(sys.argv[2])
hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
prompt = {
    "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 255}},
    "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "atomic/img"}},
}

def save_with_limit(client, output):
    resource.setrlimit(resource.RLIMIT_FSIZE, (64, hard))  # the file cannot grow past 64 bytes
    try:
        client.save_output(output, folder)
    except Exception as exc:
        return type(exc).__name__ + ": " + str(exc)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
    return None

with ComfyClient(url) as client:
    output = client.run(prompt, timeout=30)[0]
    size = len(client.download(output))
    first = save_with_limit(client, output)
    files_after_first = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    good = client.save_output(output, folder)
    good_bytes = good.read_bytes()
    second = save_with_limit(client, output)
    print(json.dumps({
        "size": size, "first": first, "files_after_first": files_after_first, "second": second,
        "target": str(good.relative_to(folder)), "good_is_whole": len(good_bytes) == size,
        "kept": good.read_bytes() == good_bytes, "mode": good.stat().st_mode & 0o777, "umask": umask,
        "files": sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()),
    }))
"""


def test_a_failed_save_leaves_the_old_file_or_none(mock_server: MockServer, tmp_path: pathlib.Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, mock_server.url, str(tmp_path)],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["size"] > 64, "the output must be larger than the limit for the write to fail part-way"
    assert got["first"] is not None and "File too large" in got["first"], got
    assert got["files_after_first"] == [], "no torn file at the target and no temporary file beside it"
    assert got["good_is_whole"]
    assert got["second"] is not None, "the second save fails too"
    assert got["kept"], "the complete file saved before is untouched by the failed save"
    assert got["files"] == [got["target"]]
    assert got["mode"] == 0o666 & ~got["umask"], "an output is an ordinary file (only configs are 0600)"
