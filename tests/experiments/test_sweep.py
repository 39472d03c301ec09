"""Sweep expansion: product, zip, templates, node inputs, LoRA strengths, errors, stable keys."""

from __future__ import annotations

from typing import Any

import pytest

from comfy_nb.config import ComfyConfig
from comfy_nb.errors import WorkflowError
from comfy_nb.experiments import Sweep
from comfy_nb.workflows import GenerationTask, Workflow, load_template

CONFIG = ComfyConfig(server_url="http://127.0.0.1:1")


@pytest.fixture
def wf() -> Workflow:
    wf = load_template("txt2img")
    wf.set_checkpoint("sd15-mock.safetensors")
    return wf


def sampler_of(graph: dict[str, Any]) -> dict[str, Any]:
    return next(n["inputs"] for n in graph.values() if n["class_type"] == "KSampler")


def test_product_order_and_values(wf: Workflow) -> None:
    sweep = Sweep(wf, seed=[1, 2, 3], cfg_scale=[4, 7, 10])
    assert len(sweep) == 9
    assert [c.params for c in sweep][:4] == [
        {"seed": 1, "cfg_scale": 4}, {"seed": 1, "cfg_scale": 7}, {"seed": 1, "cfg_scale": 10},
        {"seed": 2, "cfg_scale": 4},
    ]
    graph, meta = sweep.build(sweep[5], None, {})
    assert (sampler_of(graph)["seed"], sampler_of(graph)["cfg"]) == (2, 10)
    assert meta["seed"] == 2 and meta["cfg_scale"] == 10


def test_zip_pairs_and_needs_equal_lengths(wf: Workflow) -> None:
    sweep = Sweep(wf, zip=True, seed=[1, 2], sampler=["euler", "dpmpp_2m"])
    assert [c.params for c in sweep] == [{"seed": 1, "sampler": "euler"}, {"seed": 2, "sampler": "dpmpp_2m"}]
    with pytest.raises(WorkflowError, match=r"equal length.*seed: 2.*sampler: 3"):
        Sweep(wf, zip=True, seed=[1, 2], sampler=["euler", "ddim", "lms"])


def test_prompt_template_variables(wf: Workflow) -> None:
    sweep = Sweep(wf, prompt="a {animal} in {style}, {unknown|braces}", animal=["fox", "owl"], style=["ink", "oil"])
    assert len(sweep) == 4
    cell = sweep[1]
    assert cell.params == {"animal": "fox", "style": "oil"}
    assert cell.settings == {"prompt": "a fox in oil, {unknown|braces}"}
    graph, _ = sweep.build(cell, None, {})
    texts = [n["inputs"]["text"] for n in graph.values() if n["class_type"] == "CLIPTextEncode"]
    assert "a fox in oil, {unknown|braces}" in texts


def test_node_inputs_and_sizes(wf: Workflow) -> None:
    sampler_id = next(k for k, n in wf.to_api().items() if n["class_type"] == "KSampler")
    sweep = Sweep(wf, size=[(64, 64), (128, 64)], **dict[str, Any]({f"{sampler_id}.steps": [3, 5]}))
    graph, meta = sweep.build(sweep[3], None, {})
    assert sampler_of(graph)["steps"] == 5
    assert (meta["width"], meta["height"]) == (128, 64)


def test_lora_strengths_on_workflow(wf: Workflow) -> None:
    sweep = Sweep(wf, **dict[str, Any]({"lora:detail-mock.safetensors": [0.0, 0.5]}))
    graph, _ = sweep.build(sweep[1], None, {})
    lora = next(n["inputs"] for n in graph.values() if n["class_type"] == "LoraLoader")
    assert lora["lora_name"] == "detail-mock.safetensors" and lora["strength_model"] == 0.5
    wf.add_lora("style-ink-mock.safetensors", 1.0, 1.0)
    graph, _ = Sweep(wf, lora_strength=[0.25]).build(Sweep(wf, lora_strength=[0.25])[0], None, {})
    lora = next(n["inputs"] for n in graph.values() if n["class_type"] == "LoraLoader")
    assert lora["strength_model"] == lora["strength_clip"] == 0.25


def test_task_sweep_binds_fields_loras_and_nodes() -> None:
    task = GenerationTask(prompt="a fox", loras=[("detail-mock.safetensors", 1.0)])
    sweep = Sweep(task, cfg_scale=[4.0, 9.0], lora_strength=[0.3], **dict[str, Any]({"7.filename_prefix": ["x"]}))
    graph, meta = sweep.build(sweep[1], CONFIG, None)
    assert sampler_of(graph)["cfg"] == 9.0 and meta["cfg_scale"] == 9.0
    lora = next(n["inputs"] for n in graph.values() if n["class_type"] == "LoraLoader")
    assert lora["strength_model"] == 0.3
    assert any(n["inputs"].get("filename_prefix") == "x" for n in graph.values())


def test_task_random_seed_is_drawn_once_per_sweep() -> None:
    sweep = Sweep(GenerationTask(prompt="a fox"), steps=[2, 3, 4])
    seeds = {sweep.build(c, CONFIG, None)[1]["seed"] for c in sweep}
    assert len(seeds) == 1


def test_unknown_names_list_bindable_ones(wf: Workflow) -> None:
    with pytest.raises(WorkflowError, match=r"unknown sweep parameter 'colour'.*bindable names are .*cfg_scale"):
        Sweep(wf, colour=["red"])
    with pytest.raises(WorkflowError, match="\"99\""):
        Sweep(wf, **dict[str, Any]({"99.seed": [1]}))
    with pytest.raises(WorkflowError, match="empty"):
        Sweep(wf, seed=[])
    with pytest.raises(WorkflowError, match="JSON"):
        Sweep(wf, seed=[object()])
    with pytest.raises(WorkflowError, match="GenerationTask, a Workflow"):
        Sweep(42)


def test_keys_are_stable_and_depend_on_base(wf: Workflow) -> None:
    a = Sweep(wf, seed=[1, 2])
    b = Sweep(wf.copy(), seed=[2, 1, 3])
    assert {c.key for c in a} < {c.key for c in b}
    other = wf.copy()
    other.set_sampler(steps=3)
    assert not {c.key for c in a} & {c.key for c in Sweep(other, seed=[1, 2])}
    assert len({c.key for c in b}) == 3


def test_manifest_round_trip(wf: Workflow) -> None:
    for base in (wf, GenerationTask(prompt="a fox", seed=5)):
        sweep = Sweep(base, prompt="a {animal}", animal=["fox", "owl"], steps=[2, 3])
        again = Sweep.from_manifest(sweep.to_manifest())
        assert [c.key for c in again] == [c.key for c in sweep]


def test_graph_base_and_repr() -> None:
    graph = load_template("txt2img").to_api()
    sweep = Sweep(graph, seed=range(3), steps=[1, 2])
    assert repr(sweep) == "Sweep(workflow: seed[3] × steps[2], 6 cells)"
    assert [c.index for c in sweep] == list(range(6))
