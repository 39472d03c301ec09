"""Graph layout of a 300-node workflow (the GraphView's budget is 200 ms in Python).

``layered_layout`` (layers, dummy nodes, crossing reduction, coordinates) and ``build_graph`` (that
plus the link routes and inputs the view sends) against a baseline in the same run: a bare
longest-path layering of the same graph, the least any layered layout has to do.
"""

from __future__ import annotations

import random
import statistics
import time
from typing import Any

from ._common import record


def synthetic_prompt(n: int = 300, seed: int = 1) -> dict[str, Any]:
    """An API graph shaped like big ComfyUI workflows: each node reads 1-3 outputs of recent nodes."""
    rng = random.Random(seed)
    prompt: dict[str, Any] = {}
    for i in range(n):
        inputs: dict[str, Any] = {"value": rng.randrange(1000), "text": f"node {i}"}
        if i:
            for k in range(rng.choice([1, 1, 2, 3])):
                inputs[f"in{k}"] = [str(rng.randrange(max(0, i - 25), i)), rng.randrange(2)]
        prompt[str(i)] = {"class_type": f"Class{i % 17}", "inputs": inputs, "_meta": {"title": f"Node {i}"}}
    return prompt


def _edges(prompt: dict[str, Any]) -> list[tuple[str, str]]:
    return [(v[0], k) for k, node in prompt.items() for v in node["inputs"].values() if isinstance(v, list)]


def _longest_path(nodes: list[str], edges: list[tuple[str, str]]) -> dict[str, int]:
    succ: dict[str, list[str]] = {v: [] for v in nodes}
    indeg = dict.fromkeys(nodes, 0)
    for a, b in edges:
        succ[a].append(b)
        indeg[b] += 1
    order = [v for v in nodes if indeg[v] == 0]
    layer = dict.fromkeys(nodes, 0)
    for v in order:
        for w in succ[v]:
            layer[w] = max(layer[w], layer[v] + 1)
            indeg[w] -= 1
            if indeg[w] == 0:
                order.append(w)
    return layer


def _median_ms(fn: Any, runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def run(quick: bool = False) -> list[dict[str, Any]]:
    from comfy_nb.widgets._graph_model import build_graph
    from comfy_nb.workflows._layout import layered_layout

    runs = 3 if quick else 15
    prompt = synthetic_prompt(300)
    nodes, edges = list(prompt), _edges(prompt)
    baseline = _median_ms(lambda: _longest_path(nodes, edges), runs)
    layout = _median_ms(lambda: layered_layout(nodes, edges), runs)
    graph = _median_ms(lambda: build_graph(prompt), runs)
    common = {"runs": runs, "nodes": len(nodes), "links": len(edges), "baseline_is": "bare longest-path layering",
              "budget_ms": 200}
    return [
        record("layout_300_nodes", layout, "ms", baseline, **common),
        record("graph_view_model_300_nodes", graph, "ms", baseline, **common),
    ]
