"""WebSocket text messages ``{"type": T, "data": {...}}`` as typed models.

Unknown message types (custom nodes send their own) parse to ``UnknownMessage`` and are never an
error. A known type whose data does not fit its model raises ``ProtocolError`` naming the type.
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from ..errors import ProtocolError

__all__ = [
    "ExecutedMessage",
    "ExecutingMessage",
    "ExecutionCachedMessage",
    "ExecutionErrorMessage",
    "ExecutionInterruptedMessage",
    "ExecutionStartMessage",
    "ExecutionSuccessMessage",
    "FeatureFlagsMessage",
    "NodeProgress",
    "ProgressMessage",
    "ProgressStateMessage",
    "ServerMessage",
    "StatusMessage",
    "UnknownMessage",
    "epoch_ms",
    "feature_flags_request",
    "parse_message",
]


class _Msg(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


def epoch_ms(value: Any) -> int | None:
    """A timestamp in ms since the epoch, or None when it is not a plausible one (it is only shown)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 10**14:
        return None
    return int(value)


Finite = Annotated[float, AfterValidator(_finite)]
Timestamp = Annotated[int | None, BeforeValidator(epoch_ms)]


class StatusMessage(_Msg):
    """Broadcast on every queue change; ``sid`` only in the hello a new socket gets."""

    type: Literal["status"] = "status"
    queue_remaining: int
    sid: str | None = None


class FeatureFlagsMessage(_Msg):
    type: Literal["feature_flags"] = "feature_flags"
    flags: dict[str, Any]


class ExecutionStartMessage(_Msg):
    type: Literal["execution_start"] = "execution_start"
    prompt_id: str
    timestamp: Timestamp = None


class ExecutionCachedMessage(_Msg):
    type: Literal["execution_cached"] = "execution_cached"
    prompt_id: str
    nodes: list[str]
    timestamp: Timestamp = None


class ExecutingMessage(_Msg):
    """A node starts; ``node=None`` means the prompt is over and its history is written.

    After a reconnect the server replays ``executing`` for the running node with no prompt id.
    """

    type: Literal["executing"] = "executing"
    node: str | None
    display_node: str | None = None
    prompt_id: str | None = None


class ProgressMessage(_Msg):
    type: Literal["progress"] = "progress"
    value: Finite
    max: Finite
    prompt_id: str | None = None
    node: str | None = None


class NodeProgress(_Msg):
    value: Finite
    max: Finite
    state: str
    node_id: str
    display_node_id: str | None = None
    parent_node_id: str | None = None
    real_node_id: str | None = None


class ProgressStateMessage(_Msg):
    type: Literal["progress_state"] = "progress_state"
    prompt_id: str
    nodes: dict[str, NodeProgress]


class ExecutedMessage(_Msg):
    type: Literal["executed"] = "executed"
    prompt_id: str
    node: str
    display_node: str | None = None
    output: dict[str, Any] = Field(default_factory=dict)


class ExecutionSuccessMessage(_Msg):
    type: Literal["execution_success"] = "execution_success"
    prompt_id: str
    timestamp: Timestamp = None


class ExecutionErrorMessage(_Msg):
    type: Literal["execution_error"] = "execution_error"
    prompt_id: str
    node_id: str | None = None
    node_type: str | None = None
    executed: list[str] = Field(default_factory=list)
    exception_message: str = ""
    exception_type: str = ""
    traceback: list[str] = Field(default_factory=list)
    current_inputs: dict[str, Any] = Field(default_factory=dict)
    current_outputs: list[str] = Field(default_factory=list)
    timestamp: Timestamp = None


class ExecutionInterruptedMessage(_Msg):
    type: Literal["execution_interrupted"] = "execution_interrupted"
    prompt_id: str
    node_id: str | None = None
    node_type: str | None = None
    executed: list[str] = Field(default_factory=list)
    timestamp: Timestamp = None


class UnknownMessage(_Msg):
    """A message type this client does not model (custom nodes, ``logs``, future servers)."""

    type: str
    data: Any = None


ServerMessage = (
    StatusMessage
    | FeatureFlagsMessage
    | ExecutionStartMessage
    | ExecutionCachedMessage
    | ExecutingMessage
    | ProgressMessage
    | ProgressStateMessage
    | ExecutedMessage
    | ExecutionSuccessMessage
    | ExecutionErrorMessage
    | ExecutionInterruptedMessage
    | UnknownMessage
)

_MODELS: dict[str, type[_Msg]] = {
    "execution_start": ExecutionStartMessage,
    "execution_cached": ExecutionCachedMessage,
    "executing": ExecutingMessage,
    "progress": ProgressMessage,
    "progress_state": ProgressStateMessage,
    "executed": ExecutedMessage,
    "execution_success": ExecutionSuccessMessage,
    "execution_error": ExecutionErrorMessage,
    "execution_interrupted": ExecutionInterruptedMessage,
}


def parse_message(raw: str | bytes | dict[str, Any]) -> ServerMessage:
    """Parse one text frame (or its decoded JSON) into a typed message."""
    if isinstance(raw, (str, bytes)):
        try:
            obj = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ProtocolError(f"WebSocket text frame is not JSON: {exc}") from None
    else:
        obj = raw
    if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
        raise ProtocolError("WebSocket message is not an object with a string 'type'")
    mtype: str = obj["type"]
    data = obj.get("data")
    try:
        if mtype == "status":
            if not isinstance(data, dict):
                raise ProtocolError("'status' message has no data object")
            status = data.get("status") or {}
            remaining = (status.get("exec_info") or {}).get("queue_remaining", 0)
            return StatusMessage(queue_remaining=remaining, sid=data.get("sid"))
        if mtype == "feature_flags":
            return FeatureFlagsMessage(flags=data if isinstance(data, dict) else {})
        model = _MODELS.get(mtype)
        if model is None:
            return UnknownMessage(type=mtype, data=data)
        if not isinstance(data, dict):
            raise ProtocolError(f"'{mtype}' message has no data object")
        return model.model_validate(data)  # type: ignore[return-value]
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise ProtocolError(f"'{mtype}' message has a bad field {loc!r}: {first['msg']}") from None
    except AttributeError:
        raise ProtocolError(f"'{mtype}' message has a malformed data object") from None


def feature_flags_request(*, supports_preview_metadata: bool = True) -> str:
    """The first text message a client sends to get previews with node and prompt ids (event 4)."""
    return json.dumps(
        {"type": "feature_flags", "data": {"supports_preview_metadata": supports_preview_metadata}}
    )
