"""Hypothesis fuzzing: the WebSocket parsers, the job state machine and graph submission.

Only comfy_nb's own errors may escape (``ProtocolError`` from the parsers, ``WorkflowError`` /
``PromptValidationError`` from a bad graph), never ``KeyError``, ``TypeError``, ``IndexError``...
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from comfy_nb import ComfyClient
from comfy_nb.client import JobTracker
from comfy_nb.errors import ComfyError, PromptValidationError, ProtocolError, WorkflowError
from comfy_nb.mock import MockServer
from comfy_nb.protocol import decode_binary_frame, parse_message

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)
MESSAGE_TYPES = [
    "status", "feature_flags", "execution_start", "execution_cached", "executing", "progress", "progress_state",
    "executed", "execution_success", "execution_error", "execution_interrupted", "logs", "crystools.monitor",
]
FIELD_NAMES = [
    "prompt_id", "node", "display_node", "value", "max", "nodes", "output", "timestamp", "node_id", "node_type",
    "exception_message", "exception_type", "traceback", "executed", "status", "exec_info", "queue_remaining", "sid",
    "state", "images", "filename", "subfolder", "type",
]
PID = "fuzz-prompt"


def data_objects() -> st.SearchStrategy[Any]:
    """Message data that looks like the real thing: known keys, wrong or right value types."""
    field_value = st.one_of(json_values, st.just(PID), st.sampled_from(["1", "2", "3"]))
    known = st.dictionaries(st.sampled_from(FIELD_NAMES), field_value, max_size=8)
    return st.one_of(known, json_values)


messages = st.builds(lambda t, d: {"type": t, "data": d}, st.sampled_from(MESSAGE_TYPES), data_objects())


@FUZZ
@given(st.one_of(st.text(max_size=200), st.binary(max_size=200)))
def test_parse_message_raw_text_only_raises_protocol_error(raw: str | bytes) -> None:
    try:
        parse_message(raw)
    except ProtocolError:
        pass


@FUZZ
@given(messages)
def test_parse_message_structured_only_raises_protocol_error(message: dict[str, Any]) -> None:
    for form in (json.dumps(message), message):
        try:
            parse_message(form)
        except ProtocolError as exc:
            assert str(exc), "a ProtocolError says what is wrong"


@FUZZ
@given(
    st.one_of(
        st.binary(max_size=64),
        st.builds(
            lambda ev, n, rest: struct.pack(">II", ev, n) + rest,
            st.integers(0, 6), st.integers(0, 2**32 - 1) | st.integers(0, 40), st.binary(max_size=48),
        ),
        st.builds(
            lambda meta, rest: struct.pack(">II", 4, len(meta)) + meta + rest,
            st.one_of(st.binary(max_size=20), json_values.map(lambda v: json.dumps(v).encode())), st.binary(max_size=8),
        ),
    )
)
def test_decode_binary_frame_only_raises_protocol_error(frame: bytes) -> None:
    try:
        decode_binary_frame(frame)
    except ProtocolError:
        pass


GRAPH = {
    "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
    "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
    "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "fuzz"}},
}


@FUZZ
@given(st.lists(messages, max_size=25))
def test_job_state_machine_survives_any_message_sequence(sequence: list[dict[str, Any]]) -> None:
    tracker = JobTracker(PID, prompt=json.loads(json.dumps(GRAPH)))
    last = tracker.status
    for raw in sequence:
        try:
            msg = parse_message(raw)
        except ProtocolError:
            continue
        if getattr(msg, "prompt_id", PID) not in (PID, None):
            continue  # the client routes by prompt id; the tracker only sees its own
        tracker.apply(msg)
        status = tracker.status
        assert status.progress >= last.progress, "progress never goes backwards"
        assert 0 <= status.progress <= 100
        if last.terminal:
            assert status == last, "a terminal status never changes"
        last = status


# ---------------------------------------------------------------------------- malformed workflows

CLASSES = ["EmptyImage", "ImageInvert", "SaveImage", "KSampler", "CheckpointLoaderSimple", "PreviewImage", "Nope"]
node_ids = st.sampled_from(["1", "2", "3", "4", "x", "", "1:2"])
links = st.builds(lambda n, i: [n, i], node_ids, st.integers(-2, 4))
input_values = st.one_of(json_values, links)
nodes = st.one_of(
    st.fixed_dictionaries(
        {"class_type": st.one_of(st.sampled_from(CLASSES), json_values)},
        optional={"inputs": st.one_of(st.dictionaries(st.text(max_size=10), input_values, max_size=5), json_values),
                  "_meta": json_values},
    ),
    json_values,
)
graphs = st.one_of(
    st.dictionaries(node_ids, nodes, max_size=5),
    json_values,
    st.just({"nodes": [], "links": []}),
)


@pytest.fixture(scope="module")
def blocking_client(mock_server: MockServer) -> Iterator[ComfyClient]:
    with ComfyClient(mock_server.url) as client:
        yield client


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(graphs)
def test_malformed_workflows_give_workflow_or_validation_errors(blocking_client: ComfyClient, graph: Any) -> None:
    try:
        job = blocking_client.submit(graph)
    except (WorkflowError, PromptValidationError) as exc:
        assert str(exc).strip(), "the error says what is wrong"
        return
    # the server accepted it (perhaps dropping invalid outputs): it must still end, cleanly
    status = job.wait(timeout=20)
    assert status.terminal
    try:
        job.result()
    except ComfyError:
        pass


@FUZZ
@given(graphs)
def test_workflow_objects_refuse_junk_with_workflow_error(graph: Any) -> None:
    from comfy_nb.workflows import Workflow

    try:
        wf = Workflow(graph)
    except (WorkflowError, TypeError) as exc:
        assert isinstance(exc, WorkflowError), f"raw {type(exc).__name__} for a junk graph: {exc}"
        return
    wf.to_api()
