"""One rule each for links, UI saves, API graphs and server URLs (client, workflows, mock and widgets share them)."""

from __future__ import annotations

from typing import Any

import pytest

from comfy_nb.errors import ConfigError, WorkflowError
from comfy_nb.protocol import (
    api_graph,
    is_link,
    is_ui_workflow,
    linked_nodes,
    parse_server_url,
    server_url_problem,
)
from comfy_nb.widgets._config_panel import validate_url


@pytest.mark.parametrize(
    ("value", "expected"),
    [(["3", 0], True), (["3", 1.0], True), ([3, 0], False), (["3", True], False), (["3", 0, 1], False),
     (("3", 0), False), ("3", False), ({"__value__": ["3", 0]}, False)],
)
def test_is_link_is_the_servers_rule(value: Any, expected: bool) -> None:
    assert is_link(value) is expected


def test_linked_nodes_and_ui_saves() -> None:
    assert linked_nodes({"a": ["1", 0], "b": 5, "c": ["2", 1]}) == ["1", "2"]
    assert linked_nodes(None) == []
    assert is_ui_workflow({"nodes": [], "links": []})
    assert not is_ui_workflow({"nodes": {"class_type": "X", "inputs": {}}})  # a node whose id is "nodes"


def test_api_graph_names_what_is_wrong() -> None:
    assert api_graph({1: {"class_type": "X", "inputs": {}}}) == {"1": {"class_type": "X", "inputs": {}}}
    for bad, words in [({"nodes": [], "links": []}, "UI-format"), ({"1": {"inputs": {}}}, "class_type"),
                       ({"1": {"class_type": "X", "inputs": []}}, "'inputs' must be a dict"), ([1], "not list")]:
        with pytest.raises(WorkflowError, match=words):
            api_graph(bad)


@pytest.mark.parametrize(
    ("url", "problem"),
    [("http://[::1]:8188", None), ("https://gpu.example.org/comfy/", None), ("http://my_host:1", None),
     ("http://h:1/?x=1", "query"), ("http://h:0", "invalid port"), ("http://300.1.1.1:1", "invalid IP"),
     ("http://bad host:1", "spaces"), ("http://h*st:1", "invalid host name"), ("", "is empty")],
)
def test_one_url_rule_for_client_config_and_panel(url: str, problem: str | None) -> None:
    found = server_url_problem(url)
    assert found is None if problem is None else problem in (found or "")
    if problem is None:
        assert parse_server_url(url).ws.endswith("/ws") and validate_url(url) is None
    else:
        with pytest.raises(ConfigError, match="server URL"):
            parse_server_url(url)
        assert validate_url(url) == f"The URL {found}"


def test_url_credentials_stay_out_of_the_repr() -> None:
    server = parse_server_url("http://ada:s3cret@h:1")
    assert server.auth == ("ada", "s3cret") and "s3cret" not in repr(server) and server.http == "http://h:1"
