"""``validate_prompt`` answers like the real server: every captured ``POST /prompt`` case is replayed."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from comfy_nb.protocol import PromptCheck, validate_prompt

Capture = Callable[[str], Any]


def _cases(capture: Capture) -> dict[str, Any]:
    cases: dict[str, Any] = capture("prompt_errors_index.json")["cases"]
    return cases


def _without_tracebacks(body: Any) -> Any:
    """Tracebacks name the server's files and lines; everything else must match exactly."""
    if isinstance(body, dict):
        return {k: _without_tracebacks(v) for k, v in body.items() if k != "traceback"}
    if isinstance(body, list):
        return [_without_tracebacks(v) for v in body]
    return body


REFUSED = [
    "missing_required_input",
    "unknown_class_type",
    "bad_combo_value",
    "missing_class_type",
    "no_outputs",
    "no_prompt",
    "value_smaller_than_min",
    "value_bigger_than_max",
    "invalid_input_type",
    "return_type_mismatch",
    "bad_linked_input",
    "link_to_missing_node",
    "custom_validation_failed",
    "two_bad_outputs",
    "prompt_is_empty_list",
]


def test_every_captured_400_is_listed(capture: Capture) -> None:
    refused = {name for name, case in _cases(capture).items() if case["status"] == 400}
    assert refused == set(REFUSED)


@pytest.mark.parametrize("name", REFUSED)
def test_400_body_equals_capture(name: str, capture: Capture, object_info: dict[str, Any]) -> None:
    case = _cases(capture)[name]
    expected = capture(case["file"]) if case.get("file") else case["response"]
    request = case["request"]
    check = validate_prompt(request.get("prompt"), object_info, input_files={"example.png"})
    assert not check.ok and check.error_body is not None
    assert check.outputs_to_execute == []
    assert _without_tracebacks(check.error_body) == _without_tracebacks(expected)
    assert check.node_errors == check.error_body["node_errors"]
    json.dumps(check.error_body)  # JSON-serialisable as is


def test_exception_shape_keeps_a_traceback_list(capture: Capture, object_info: dict[str, Any]) -> None:
    case = _cases(capture)["link_to_missing_node"]
    check = validate_prompt(case["request"]["prompt"], object_info)
    info = check.node_errors["2"]["errors"][0]["extra_info"]
    assert info["exception_type"] == "KeyError" and info["traceback"] == []


@pytest.mark.parametrize(
    ("name", "outputs"),
    [("partial_one_output_invalid", ["5", "6"]), ("v3_combo_bad_value", ["3"])],
)
def test_partial_200_matches_capture(
    name: str, outputs: list[str], capture: Capture, object_info: dict[str, Any]
) -> None:
    case = _cases(capture)[name]
    expected = capture(case["file"]) if case.get("file") else case["response"]
    check = validate_prompt(case["request"]["prompt"], object_info)
    assert check.ok and check.error_body is None
    assert check.outputs_to_execute == outputs
    assert check.node_errors == expected["node_errors"]


def test_partial_bad_combo_two_outputs(capture: Capture, object_info: dict[str, Any]) -> None:
    """The capture has no request: it is the bad-combo prompt plus a valid PreviewImage on node 2."""
    prompt = copy.deepcopy(_cases(capture)["bad_combo_value"]["request"]["prompt"])
    prompt["6"] = {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}}
    check = validate_prompt(prompt, object_info)
    assert check.ok and check.outputs_to_execute == ["6"]
    assert check.node_errors == capture("prompt_response_partial_bad_combo.json")["node_errors"]


@pytest.fixture
def modelfree(capture: Capture) -> dict[str, Any]:
    prompt: dict[str, Any] = capture("workflow_modelfree_api.json")
    return prompt


def test_valid_prompt_is_accepted_and_not_mutated(
    modelfree: dict[str, Any], object_info: dict[str, Any]
) -> None:
    modelfree["1"]["inputs"]["width"] = "12"  # the server coerces with int()
    before = copy.deepcopy(modelfree)
    check = validate_prompt(modelfree, object_info)
    assert check == PromptCheck(ok=True, error_body=None, outputs_to_execute=["5", "6"], node_errors={})
    assert modelfree == before


def test_partial_targets_select_outputs(modelfree: dict[str, Any], object_info: dict[str, Any]) -> None:
    assert validate_prompt(modelfree, object_info, partial_targets=["6"]).outputs_to_execute == ["6"]
    none = validate_prompt(modelfree, object_info, partial_targets=["3"])
    assert none.error_body and none.error_body["error"]["type"] == "prompt_no_outputs"


def _ksampler_prompt(sampler: str) -> dict[str, Any]:
    return {
        "1": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "2": {
            "class_type": "KSampler",
            "inputs": {
                "model": ["9", 0],
                "seed": 1,
                "steps": 1,
                "cfg": 1.0,
                "sampler_name": sampler,
                "scheduler": "normal",
                "positive": ["9", 0],
                "negative": ["9", 0],
                "latent_image": ["1", 0],
                "denoise": 1.0,
            },
        },
        "3": {"class_type": "SaveLatent", "inputs": {"samples": ["2", 0], "filename_prefix": "x"}},
    }


def test_long_combo_lists_are_summarised(object_info: dict[str, Any]) -> None:
    prompt = _ksampler_prompt("bogus")
    prompt["9"] = {
        "class_type": "EmptyImage",
        "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0},
    }
    errors = validate_prompt(prompt, object_info).node_errors["2"]["errors"]
    mismatch = [e for e in errors if e["type"] == "return_type_mismatch"]
    assert {e["extra_info"]["input_name"] for e in mismatch} == {"model", "positive", "negative"}
    (combo,) = [e for e in errors if e["type"] == "value_not_in_list"]
    count = len(object_info["KSampler"]["input"]["required"]["sampler_name"][0])
    assert combo["details"] == f"sampler_name: 'bogus' not in (list of length {count})"
    assert combo["extra_info"]["input_config"] is None


def test_v3_combos_only_checked_when_strict(capture: Capture, object_info: dict[str, Any]) -> None:
    prompt = _cases(capture)["v3_combo_bad_value"]["request"]["prompt"]
    assert validate_prompt(prompt, object_info).ok
    strict = validate_prompt(prompt, object_info, strict_combos=True)
    assert not strict.ok
    (error,) = strict.node_errors["2"]["errors"]
    assert error["type"] == "value_not_in_list"
    assert error["details"].startswith("dither: 'bogus' not in ['none', 'floyd-steinberg'")


def test_empty_legacy_combo_rejects_like_the_server(object_info: dict[str, Any]) -> None:
    prompt = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd15.safetensors"}},
        "2": {"class_type": "PreviewAny", "inputs": {"source": ["1", 0]}},
    }
    (error,) = validate_prompt(prompt, object_info).node_errors["1"]["errors"]
    assert error["details"] == "ckpt_name: 'sd15.safetensors' not in []"


def test_load_image_checks_files_only_when_known(object_info: dict[str, Any]) -> None:
    prompt = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "sub/mine.png [input]"}},
        "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}},
    }
    assert validate_prompt(prompt, object_info).ok  # not in the combo list, but LoadImage checks itself
    assert validate_prompt(prompt, object_info, input_files={"sub/mine.png"}).ok
    assert not validate_prompt(prompt, object_info, input_files={"other.png"}).ok


def test_loose_type_matching() -> None:
    from comfy_nb.protocol._validation import types_match

    assert types_match("IMAGE", "IMAGE") and types_match("*", "MODEL") and types_match("LATENT", "*")
    assert types_match("MODEL_TASK_ID,RIG_TASK_ID", "RIG_TASK_ID")
    assert not types_match("INT", "IMAGE") and not types_match(["a"], "COMBO")


def test_output_that_raises_is_exception_during_validation(object_info: dict[str, Any]) -> None:
    prompt = {
        "5": {"class_type": "PreviewImage", "inputs": {"images": ["1", 3]}},
        "1": {"class_type": "EmptyImage", "inputs": {}},
    }
    check = validate_prompt(prompt, object_info)
    (error,) = check.node_errors["5"]["errors"]
    assert error["type"] == "exception_during_validation"
    assert error["details"] == "tuple index out of range"
    assert check.error_body and check.error_body["error"]["details"] == (
        "Exception when validating node: tuple index out of range"
    )


def test_cycle_is_reported_not_infinite(object_info: dict[str, Any]) -> None:
    prompt = {
        "1": {"class_type": "ImageInvert", "inputs": {"image": ["2", 0]}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}},
    }
    check = validate_prompt(prompt, object_info)
    assert not check.ok
    types = {e["extra_info"].get("exception_type") for n in check.node_errors.values() for e in n["errors"]}
    assert types == {"RecursionError"}


def test_non_mapping_prompt_has_no_outputs(object_info: dict[str, Any]) -> None:
    prompt: object
    for prompt in ([], "text", 3):
        body = validate_prompt(prompt, object_info).error_body
        assert body and body["error"]["type"] == "prompt_no_outputs"
