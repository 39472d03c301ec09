"""``POST /prompt`` validation as a pure function, answering exactly like ComfyUI 0.3.64.

The mock server uses it to produce the server's 400/200 bodies; ``Workflow.validate`` uses it to tell
a user, before submitting, what the server would say. The behaviour follows the reference
(``comfyui-protocol.md`` §3) and the ``prompt_error_*.json`` captures, including the server's quirks:

- class checks run first and stop at the first node without ``class_type`` or with an unknown class;
- each output node is validated depth-first through its links, and results are cached per node;
- a node whose upstream failed is invalid but reported without errors of its own;
- an exception raised while validating a linked node is recorded on *that* node, with the consumer's
  input (``exception_during_inner_validation``); a missing linked node raises ``KeyError`` that way;
- after every failed output, *every* failing node seen so far gets that output appended to its
  ``dependent_outputs`` (so an unrelated earlier failure lists later outputs too);
- V3 ``["COMBO", {...}]`` values are not checked (unless ``strict_combos``); inputs a node validates
  itself (``LoadImage.image``) skip the range and list checks.

``client_checks=True`` adds what a client must check although the server does not: a link to a
missing node or to an output index the source does not have is reported on the node and input that
hold the link (the server reports it, through its exception handler, on the consumer's consumer),
and a NaN or infinite number is refused (the server's comparisons let it through, and JSON cannot
carry it).

Outputs are visited in prompt order, where the server iterates a set (its order varies per run).
Tracebacks are ``[]``: there is no server code to trace. A cycle, which overflows the server's stack,
is reported as a ``RecursionError`` on the node where it closes.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["PromptCheck", "validate_prompt"]

_COMBO_LIST_LIMIT = 20
_COERCE: dict[str, Any] = {"INT": int, "FLOAT": float, "STRING": str, "BOOLEAN": bool}
# Nodes whose own input check replaces the generic range/list checks for these inputs.
_SELF_VALIDATED: dict[str, tuple[str, ...]] = {"LoadImage": ("image",), "LoadImageMask": ("image",)}
_ANNOTATIONS = (" [input]", " [output]", " [temp]")

Error = dict[str, Any]


@dataclass(frozen=True)
class PromptCheck:
    """What the server would answer to a ``POST /prompt``."""

    ok: bool
    """True: a 200 that queues ``outputs_to_execute``; ``node_errors`` may still list dropped outputs."""
    error_body: dict[str, Any] | None
    """When not ok, the exact 400 body ``{"error": {...}, "node_errors": {...}}``."""
    outputs_to_execute: list[str] = field(default_factory=list)
    node_errors: dict[str, Any] = field(default_factory=dict)


def validate_prompt(
    prompt: Any,
    object_info: Mapping[str, Any],
    *,
    partial_targets: list[str] | None = None,
    strict_combos: bool = False,
    input_files: set[str] | None = None,
    client_checks: bool = False,
) -> PromptCheck:
    """Validate an API-format ``prompt`` against ``object_info`` the way ComfyUI does.

    ``prompt=None`` means the request body had no ``prompt`` (``no_prompt``). ``partial_targets`` is the
    request's ``partial_execution_targets``. ``strict_combos`` also checks V3 combo values (the server
    does not; the client may want to). ``input_files`` (paths under ``input/``, e.g. ``"sub/a.png"``)
    enables ``LoadImage``'s file check; without it image names are not checked, as the server's check
    needs its disk.
    """
    if prompt is None:
        return _refuse(_error("no_prompt", "No prompt provided", "No prompt provided"))
    nodes: Mapping[Any, Any] = prompt if isinstance(prompt, Mapping) else {}
    outputs: list[Any] = []
    for node_id, node in nodes.items():
        if not isinstance(node, Mapping) or "class_type" not in node:
            message = "Cannot execute because a node is missing the class_type property."
            return _refuse(_error("invalid_prompt", message, f"Node ID '#{node_id}'"))
        class_type = node["class_type"]
        info = object_info.get(class_type) if isinstance(class_type, str) else None
        if not isinstance(info, Mapping):
            message = f"Cannot execute because node {class_type} does not exist."
            return _refuse(_error("invalid_prompt", message, f"Node ID '#{node_id}'"))
        if info.get("output_node") is True and (partial_targets is None or node_id in partial_targets):
            outputs.append(node_id)
    if not outputs:
        return _refuse(_error("prompt_no_outputs", "Prompt has no outputs"))

    checker = _Checker(
        nodes, object_info, strict_combos=strict_combos, input_files=input_files, client_checks=client_checks
    )
    good: list[str] = []
    failed: list[tuple[Any, list[Error]]] = []
    node_errors: dict[str, Any] = {}
    for output in outputs:
        try:
            valid, reasons = checker.check(output)
        except _RAISED as exc:
            reasons = [
                _error(
                    "exception_during_validation",
                    "Exception when validating node",
                    str(exc),
                    {"exception_type": type(exc).__name__, "traceback": []},
                )
            ]
            valid = False
            checker.validated[output] = (False, reasons)
        if valid:
            good.append(str(output))
            continue
        failed.append((output, reasons))
        for node_id, (node_valid, node_reasons) in checker.validated.items():
            if node_valid or not node_reasons:
                continue  # downstream of a failure: invalid, but the server lists no errors for it
            entry = node_errors.setdefault(
                str(node_id),
                {"errors": node_reasons, "dependent_outputs": [], "class_type": nodes[node_id]["class_type"]},
            )
            entry["dependent_outputs"].append(str(output))
    node_errors = copy.deepcopy(node_errors)  # detach from the caller's prompt and object_info
    if good:
        return PromptCheck(ok=True, error_body=None, outputs_to_execute=good, node_errors=node_errors)
    details = "\n".join(f"{e['message']}: {e['details']}" for _, reasons in failed for e in reasons)
    error = _error("prompt_outputs_failed_validation", "Prompt outputs failed validation", details)
    return PromptCheck(
        ok=False, error_body={"error": error, "node_errors": node_errors}, node_errors=node_errors
    )


# What looking up links and comparing values in untrusted JSON can raise; the server catches these
# (it catches every Exception) and reports them as validation errors.
_RAISED = (LookupError, TypeError, ValueError, RecursionError)


class _Checker:
    """Validates nodes depth-first, caching ``(valid, errors)`` per node id like the server."""

    def __init__(
        self,
        nodes: Mapping[Any, Any],
        object_info: Mapping[str, Any],
        *,
        strict_combos: bool,
        input_files: set[str] | None,
        client_checks: bool = False,
    ) -> None:
        self.nodes = nodes
        self.object_info = object_info
        self.strict_combos = strict_combos
        self.client_checks = client_checks
        self.input_files = input_files
        self.validated: dict[Any, tuple[bool, list[Error]]] = {}
        self._active: set[Any] = set()

    def check(self, node_id: Any) -> tuple[bool, list[Error]]:
        if node_id in self.validated:
            return self.validated[node_id]
        if node_id in self._active:
            raise RecursionError("maximum recursion depth exceeded")
        node = self.nodes[node_id]  # KeyError for a link to a missing node, as on the server
        inputs = node["inputs"]
        class_type = node["class_type"]
        info = self.object_info[class_type]
        self._active.add(node_id)
        try:
            valid, errors = self._check_inputs(class_type, info, inputs)
        finally:
            self._active.discard(node_id)
        # A cycle through this node may already have recorded an error on it: keep it.
        earlier = self.validated.get(node_id, (True, []))[1]
        result = (valid and not errors and not earlier, earlier + errors)
        self.validated[node_id] = result
        return result

    def _check_inputs(
        self, class_type: str, info: Mapping[str, Any], inputs: Mapping[str, Any]
    ) -> tuple[bool, list[Error]]:
        valid = True
        errors: list[Error] = []
        self_checked = _SELF_VALIDATED.get(class_type, ())
        for name, section, spec in _declared_inputs(info):
            input_type = spec[0] if isinstance(spec, (list, tuple)) and spec else None
            options = spec[1] if isinstance(spec, (list, tuple)) and len(spec) > 1 else {}
            config = [input_type, options]
            if name not in inputs:
                if section == "required":
                    errors.append(
                        _error(
                            "required_input_missing", "Required input is missing", name, {"input_name": name}
                        )
                    )
                continue
            value = inputs[name]
            if isinstance(value, (list, tuple)):
                link_ok, link_error = self._check_link(name, config, list(value))
                valid = valid and link_ok
                errors.extend(link_error)
                continue
            error = self._check_value(name, config, value, checked_by_node=name in self_checked)
            if error is not None:
                errors.append(error)
        if self.input_files is not None:
            errors.extend(self._check_files(self_checked, inputs))
        return valid, errors

    def _check_link(self, name: str, config: list[Any], link: list[Any]) -> tuple[bool, list[Error]]:
        if len(link) != 2:
            message = "Bad linked input, must be a length-2 list of [node_id, slot_index]"
            extra = {"input_name": name, "input_config": config, "received_value": link}
            return True, [_error("bad_linked_input", message, name, extra)]
        source_id, slot = link
        if self.client_checks:
            bad = self._bad_link_target(name, config, link)
            if bad is not None:
                return False, [bad]
        source_class = self.nodes[source_id]["class_type"]
        received = tuple(self.object_info[source_class].get("output") or ())[slot]
        if not types_match(received, config[0]):
            details = f"{name}, received_type({received}) mismatch input_type({config[0]})"
            extra = {
                "input_name": name,
                "input_config": config,
                "received_type": received,
                "linked_node": link,
            }
            return True, [
                _error("return_type_mismatch", "Return type mismatch between linked nodes", details, extra)
            ]
        try:
            source_valid, _ = self.check(source_id)
        except _RAISED as exc:
            extra = {
                "input_name": name,
                "input_config": config,
                "exception_message": str(exc),
                "exception_type": type(exc).__name__,
                "traceback": [],
                "linked_node": link,
            }
            reason = _error(
                "exception_during_inner_validation", "Exception when validating inner node", str(exc), extra
            )
            self.validated[source_id] = (False, [reason])
            return False, []
        return source_valid, []

    def _bad_link_target(self, name: str, config: list[Any], link: list[Any]) -> Error | None:
        """A link to a node that is not in the graph, or to an output index its source lacks."""
        source_id, slot = link
        extra = {"input_name": name, "input_config": config, "received_value": link, "linked_node": link}
        source = self.nodes.get(source_id) if isinstance(source_id, (str, int)) else None
        if not isinstance(source, Mapping):
            details = f"{name} links to node {source_id!r}, which is not in the graph"
            return _error("bad_linked_input", "Linked node does not exist", details, extra)
        class_type = source.get("class_type")
        info = self.object_info.get(class_type) if isinstance(class_type, str) else None
        outputs = tuple(info.get("output") or ()) if isinstance(info, Mapping) else ()
        if isinstance(slot, bool) or not isinstance(slot, int) or not 0 <= slot < len(outputs):
            has = ", ".join(f"{i} ({t})" for i, t in enumerate(outputs)) or "none"
            details = (
                f"{name} links to output {slot!r} of node {source_id} ({source.get('class_type')}), "
                f"which has outputs: {has}"
            )
            return _error("bad_linked_input", "Linked output does not exist", details, extra)
        return None

    def _check_value(
        self, name: str, config: list[Any], value: Any, *, checked_by_node: bool
    ) -> Error | None:
        input_type, options = config
        if isinstance(value, Mapping) and "__value__" in value:
            value = value["__value__"]
        if self.client_checks and isinstance(value, float) and not math.isfinite(value):
            bad: Error = {"input_name": name, "input_config": config, "received_value": str(value)}
            message = f"Value {value} is not a finite number (JSON cannot carry it)"
            return _error("value_not_finite", message, name, bad)
        coerce = _COERCE.get(input_type) if isinstance(input_type, str) else None
        if coerce is not None:
            try:
                value = coerce(value)
            except (TypeError, ValueError, OverflowError) as exc:
                extra = {
                    "input_name": name,
                    "input_config": config,
                    "received_value": value,
                    "exception_message": str(exc),
                }
                message = f"Failed to convert an input value to a {input_type} value"
                return _error("invalid_input_type", message, f"{name}, {value}, {exc}", extra)
        if checked_by_node:
            return None
        extra = {"input_name": name, "input_config": config, "received_value": value}
        if "min" in options and value < options["min"]:
            return _error(
                "value_smaller_than_min", f"Value {value} smaller than min of {options['min']}", name, extra
            )
        if "max" in options and value > options["max"]:
            return _error(
                "value_bigger_than_max", f"Value {value} bigger than max of {options['max']}", name, extra
            )
        if isinstance(input_type, list):
            allowed: list[Any] = input_type
        elif self.strict_combos and input_type == "COMBO":
            allowed = list(options.get("options") or [])
        else:
            return None
        chosen = value if options.get("multiselect") and isinstance(value, list) else [value]
        if all(v in allowed for v in chosen):
            return None
        if len(allowed) > _COMBO_LIST_LIMIT:
            listed, extra["input_config"] = f"(list of length {len(allowed)})", None
        else:
            listed = str(allowed)
        return _error("value_not_in_list", "Value not in list", f"{name}: '{value}' not in {listed}", extra)

    def _check_files(self, names: Iterable[str], inputs: Mapping[str, Any]) -> list[Error]:
        """The ``LoadImage``-style check that the named file exists in the server's ``input/``."""
        assert self.input_files is not None
        errors = []
        for name in names:
            value = inputs.get(name)
            if isinstance(value, str) and not _input_file_exists(value, self.input_files):
                details = f"{name} - Invalid image file: {value}"
                errors.append(
                    _error(
                        "custom_validation_failed",
                        "Custom validation failed for node",
                        details,
                        {"input_name": name},
                    )
                )
        return errors


def types_match(received: Any, expected: Any) -> bool:
    """The server's link type check: equal, or comma-joined type sets that overlap, or a ``*`` side."""
    if received == expected:
        return True
    if not isinstance(received, str) or not isinstance(expected, str):
        return False
    got = {t.strip() for t in received.split(",")}
    want = {t.strip() for t in expected.split(",")}
    return "*" in got or "*" in want or bool(got & want)


def _declared_inputs(info: Mapping[str, Any]) -> list[tuple[str, str, Any]]:
    """``(name, section, raw spec)`` for required then optional inputs, in ``input_order``."""
    spec = info.get("input") or {}
    order = info.get("input_order") or {}
    out: list[tuple[str, str, Any]] = []
    for section in ("required", "optional"):
        declared = spec.get(section) or {}
        names = [n for n in order.get(section) or [] if n in declared]
        names += [n for n in declared if n not in names]
        out += [(n, section, declared[n]) for n in names]
    return out


def _input_file_exists(value: str, input_files: set[str]) -> bool:
    for suffix in _ANNOTATIONS:
        if value.endswith(suffix):
            if suffix != " [input]":
                return True  # output/temp files: we only know the input folder
            value = value[: -len(suffix)]
    return value in input_files


def _error(kind: str, message: str, details: str = "", extra_info: dict[str, Any] | None = None) -> Error:
    return {"type": kind, "message": message, "details": details, "extra_info": extra_info or {}}


def _refuse(error: Error) -> PromptCheck:
    return PromptCheck(ok=False, error_body={"error": error, "node_errors": {}}, node_errors={})
