"""Every public constructor and method fed bad values: a clear ``comfy_nb.errors`` error naming what is
wrong, never a bare TypeError/ValueError/AttributeError, and never a secret in the message."""

from __future__ import annotations

import json
import logging
import math
import pathlib
import subprocess
import sys
import textwrap
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from comfy_nb import AsyncComfyClient, ComfyClient, GenerationTask, Output, Sweep, Workflow
from comfy_nb.config import ComfyConfig
from comfy_nb.errors import ClientClosed, ComfyError, ConfigError, PromptValidationError, WorkflowError
from comfy_nb.experiments import ServerPool, SweepRun

from ._fake import GRAPH, FakeComfy
from .conftest import BOUND, make_client

SECRET = "s3cr3t-T0KEN"

BAD_CLIENT_ARGS: dict[str, dict[str, Any]] = {
    "url a number": {"url": 5},
    "url no scheme": {"url": "localhost:8188"},
    "url ftp": {"url": "ftp://host"},
    "url no host": {"url": "http://"},
    "url bad port": {"url": "http://host:99999"},
    "url bad port with password": {"url": f"http://bob:{SECRET}@host:99999"},
    "url bad ipv6": {"url": f"http://bob:{SECRET}@[::1"},
    "token newline": {"token": SECRET + "\n"},
    "token CRLF inside": {"token": SECRET[:4] + "\r\n" + SECRET[4:]},
    "token smart quotes": {"token": "\u201c" + SECRET + "\u201d"},
    "token non-ASCII": {"token": SECRET + "\u00e9"},
    "token spaces": {"token": " " + SECRET},
    "header value CR": {"headers": {"X-Key": SECRET + "\r"}},
    "header value non-ASCII": {"headers": {"X-Key": "\u00fc" + SECRET}},
    "timeout negative": {"timeout": -1},
    "timeout zero": {"timeout": 0},
    "timeout NaN": {"timeout": math.nan},
    "timeout inf": {"timeout": math.inf},
    "timeout a string": {"timeout": "30"},
    "max_retries negative": {"max_retries": -1},
    "max_retries a float": {"max_retries": 1.5},
    "max_retries a bool": {"max_retries": True},
    "poll_interval zero": {"poll_interval": 0},
    "outage_timeout negative": {"outage_timeout": -5},
    "max_download_size zero": {"max_download_size": 0},
    "client_id with space": {"client_id": "a b"},
    "client_id with ampersand": {"client_id": "a&x=1"},
    "verify missing file": {"verify": "/nonexistent/ca.pem"},
    "verify a number": {"verify": 5},
    "headers a number": {"headers": 5},
    "header name a number": {"headers": {1: "x"}},
    "header name with colon": {"headers": {"X:Y": "x"}},
    "username a number": {"username": 5},
    "password a number": {"username": "bob", "password": 5},
    "token a number": {"token": 5},
}


@pytest.mark.parametrize("case", list(BAD_CLIENT_ARGS))
async def test_client_constructor_rejects_bad_values(case: str, caplog: pytest.LogCaptureFixture) -> None:
    """Items 7, 8, 9: a ConfigError naming the problem; the secret is never in it, nor in a log line."""
    kwargs = {"url": "http://127.0.0.1:1", **BAD_CLIENT_ARGS[case]}
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ConfigError) as info:
        client = AsyncComfyClient(**kwargs)
        await client.connect()  # a few problems (the CA file) show only when the pool is made
    text = f"{info.value} {info.value!r} {info.value.args}"
    assert SECRET not in text and SECRET not in caplog.text
    if "token" in case or "header" in case:
        assert "token" in str(info.value) or "header" in str(info.value)


async def test_url_password_is_a_secret(fake: FakeComfy, tmp_path: pathlib.Path) -> None:
    """Item 8: user:password@ in the URL works, but never shows in reprs, errors or the saved file."""
    url = fake.url.replace("http://", f"http://bob:{SECRET}@")
    client = AsyncComfyClient(url)
    assert SECRET not in repr(client) and SECRET not in client.url
    config = ComfyConfig(server_url=url)
    assert SECRET not in repr(config) and SECRET not in str(config) and SECRET not in config.model_dump_json()
    assert config.username == "bob" and config.password is not None
    assert config.password.get_secret_value() == SECRET
    saved = config.save(tmp_path / "c.json").read_text()
    assert SECRET not in saved and "bob" in saved
    config.server_url = url.replace("bob", "al")  # assignment goes through the same rule
    assert config.username == "al" and SECRET not in repr(config)
    with pytest.raises(ConfigError) as info:
        ComfyConfig(server_url=url.replace(fake.url.rsplit(":", 1)[1], "99999"))
    assert SECRET not in str(info.value)


@pytest.mark.parametrize("field", ["token", "headers"])
def test_config_rejects_unsendable_secrets(field: str) -> None:
    value: Any = SECRET + "\n" if field == "token" else {"X-Key": SECRET + "\n"}
    with pytest.raises(ConfigError, match="line break") as info:
        ComfyConfig(**{field: value})
    assert SECRET not in str(info.value)


@pytest.mark.parametrize("kwargs", [{"timeout": -1}, {"timeout": math.inf}, {"max_retries": -1}])
def test_config_rejects_bad_numbers(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match=next(iter(kwargs))):
        ComfyConfig(**kwargs)


BAD_GRAPHS: dict[str, Any] = {
    "None": None,
    "a string": "graph",
    "a list": [GRAPH],
    "node a number": {"1": 5},
    "no class_type": {"1": {"inputs": {}}},
    "class_type a number": {"1": {"class_type": 5, "inputs": {}}},
    "inputs a list": {"1": {"class_type": "SaveImage", "inputs": []}},
    "_meta a string": {"1": {"class_type": "SaveImage", "inputs": {}, "_meta": "x"}},
    "UI workflow": {"nodes": [], "links": [], "version": 0.4},
    "NaN input": {**GRAPH, "1": {"class_type": "EmptyImage", "inputs": {**GRAPH["1"]["inputs"], "width": math.nan}}},
    "inf input": {**GRAPH, "1": {"class_type": "EmptyImage", "inputs": {**GRAPH["1"]["inputs"], "color": -math.inf}}},
}


@pytest.mark.parametrize("case", list(BAD_GRAPHS))
async def test_submit_rejects_bad_graphs_before_sending(fake: FakeComfy, case: str) -> None:
    """Item 10 (and the rest): a WorkflowError naming the node, and nothing is sent."""
    async with make_client(fake) as client:
        with pytest.raises(WorkflowError) as info:
            await client.submit(BAD_GRAPHS[case])
        if case in ("NaN input", "inf input"):
            assert "node '1'" in str(info.value) and ("width" in str(info.value) or "color" in str(info.value))
    assert fake.posts == []


async def test_nan_in_extra_data_is_refused(fake: FakeComfy) -> None:
    async with make_client(fake) as client:
        with pytest.raises(WorkflowError, match="NaN or Infinity"):
            await client.submit(GRAPH, extra_data={"x": math.nan})
        with pytest.raises(WorkflowError, match="prompt_id"):
            await client.submit(GRAPH, prompt_id="")
    assert fake.posts == []


OBJECT_INFO: dict[str, Any] = {
    "EmptyImage": {"input": {"required": {"width": ["INT", {"min": 1, "max": 64}], "height": ["INT", {}],
                                          "batch_size": ["INT", {}], "color": ["INT", {}]}},
                   "output": ["IMAGE"], "output_node": False},
    "ImageInvert": {"input": {"required": {"image": ["IMAGE"]}}, "output": ["IMAGE"], "output_node": False},
    "SaveImage": {"input": {"required": {"images": ["IMAGE"], "filename_prefix": ["STRING", {}]}},
                  "output": [], "output_node": True},
}


def test_validate_refuses_nan() -> None:
    """Item 10: NaN fails no min/max comparison; Workflow.validate names it anyway."""
    graph = json.loads(json.dumps(GRAPH))
    graph["1"]["inputs"]["width"] = math.nan
    with pytest.raises(PromptValidationError) as info:
        Workflow(graph).validate(OBJECT_INFO)
    assert [(e.node_id, e.input_name) for e in info.value.errors] == [("1", "width")]
    assert "finite" in str(info.value)


def test_wrong_output_index_is_reported_on_the_linking_node() -> None:
    """Item 14: a link to output 3 of a one-output node is reported on the node and input holding it."""
    graph = json.loads(json.dumps(GRAPH))
    graph["3"] = {"class_type": "ImageInvert", "inputs": {"image": ["1", 3]}}
    graph["2"]["inputs"]["images"] = ["3", 0]
    with pytest.raises(PromptValidationError) as info:
        Workflow(graph).validate(OBJECT_INFO)
    assert [(e.node_id, e.input_name) for e in info.value.errors] == [("3", "image")]
    assert "output 3 of node 1 (EmptyImage)" in str(info.value) and "0 (IMAGE)" in str(info.value)
    graph["3"]["inputs"]["image"] = ["9", 0]  # a node that is not there
    with pytest.raises(PromptValidationError, match="node '9', which is not in the graph"):
        Workflow(graph).validate(OBJECT_INFO)


async def test_methods_with_bad_values(fake: FakeComfy, tmp_path: pathlib.Path) -> None:
    bogus = Output(kind="image", filename="../../etc/passwd", subfolder="..", folder_type="output", node_id="1")
    async with make_client(fake) as client:
        calls: list[Callable[[], Awaitable[Any]]] = [
            lambda: client.choices("NoSuchNode", "x"),
            lambda: client.choices("SaveImage", "nope"),
            lambda: client.upload_image(5),
            lambda: client.upload_image(tmp_path / "missing.png"),
            lambda: client.save_output(bogus, tmp_path),
        ]
        for call in calls:
            with pytest.raises(ComfyError):
                await call()


def test_sweep_limits_and_stable_seeds(tmp_path: pathlib.Path) -> None:
    """Items 11 and 12: a seedless base gets the same seed (and keys) each time it is built; a
    typo-sized sweep fails at once with its cell count."""
    first = Sweep(GenerationTask(prompt="a fox"), cfg_scale=[4.0, 7.0])
    again = Sweep(GenerationTask(prompt="a fox"), cfg_scale=[4.0, 7.0])  # a new task draws a new seed
    assert [c.key for c in first] == [c.key for c in again]
    other = Sweep(GenerationTask(prompt="an owl"), cfg_scale=[4.0, 7.0])
    assert [c.key for c in other] != [c.key for c in first]
    with pytest.raises(WorkflowError, match="cannot be recorded as JSON"):
        Sweep(GenerationTask(prompt="a fox"), cfg_scale=[4.0, math.nan])
    with pytest.raises(WorkflowError, match="1,000,000 cells"):
        Sweep(GenerationTask(prompt="a fox"), steps=range(1000), cfg_scale=range(1000))
    with pytest.raises(WorkflowError, match="1,000,000,000 values"):
        Sweep(GenerationTask(prompt="a fox"), seed=range(10**9))
    with pytest.raises(WorkflowError, match="more than 100 values"):
        Sweep(GenerationTask(prompt="a fox"), seed=iter(range(10**9)), max_cells=100)
    assert len(Sweep(GenerationTask(prompt="a fox"), seed=range(300), max_cells=300)) == 300


def test_sweep_keys_are_the_same_in_a_new_interpreter() -> None:
    """Item 11 as the user meets it: the same Sweep(...) built in a new kernel resumes the same cells."""
    code = textwrap.dedent("""
        from comfy_nb import GenerationTask, Sweep
        print(",".join(c.key for c in Sweep(GenerationTask(prompt="a fox"), steps=[2, 3])))
    """)
    keys = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           timeout=BOUND * 3).stdout for _ in range(2)}
    assert len(keys) == 1 and keys.pop().count(",") == 1


def test_truncated_manifest_names_the_file(tmp_path: pathlib.Path) -> None:
    """Item 13."""
    (tmp_path / "sweep.json").write_text('{"format": "comfy_nb.sweep/1", "cells": [')
    with pytest.raises(ConfigError, match=r"sweep\.json is not valid JSON") as info:
        SweepRun.load(tmp_path)
    assert str(tmp_path) in str(info.value)


async def test_pool_rejects_bad_input(fake: FakeComfy) -> None:
    """Item 20: a UI workflow given to a pool is a WorkflowError, as with a client."""
    with pytest.raises(ComfyError):
        ServerPool([])
    async with ServerPool([fake.url]) as pool:
        with pytest.raises(WorkflowError, match="UI-format"):
            await pool.submit({"nodes": [], "links": []})
        with pytest.raises(WorkflowError):
            await pool.submit({"1": 5})


def test_blocking_client_rejects_the_same(fake_url: str = "http://127.0.0.1:1") -> None:
    with pytest.raises(ConfigError):
        ComfyClient(fake_url, timeout=-1)
    with pytest.raises(ConfigError):
        ComfyClient(fake_url, token="x\n")
    assert issubclass(ClientClosed, ComfyError)
