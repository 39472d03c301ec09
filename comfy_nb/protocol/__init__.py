"""The ComfyUI wire protocol as typed models: no I/O.

Shared by the client (which speaks it) and the mock server (which answers it), so both read and
write the same shapes. See ``../shared/reference/comfyui-protocol.md`` for the contract.
"""

from ._frames import (
    BinaryEventType,
    BinaryFrame,
    PreviewImage,
    ProgressText,
    UnknownFrame,
    decode_binary_frame,
    encode_preview_image,
    encode_preview_with_metadata,
    encode_progress_text,
)
from ._graph import api_graph, is_link, is_ui_workflow, linked_nodes
from ._messages import (
    ExecutedMessage,
    ExecutingMessage,
    ExecutionCachedMessage,
    ExecutionErrorMessage,
    ExecutionInterruptedMessage,
    ExecutionStartMessage,
    ExecutionSuccessMessage,
    FeatureFlagsMessage,
    NodeProgress,
    ProgressMessage,
    ProgressStateMessage,
    ServerMessage,
    StatusMessage,
    UnknownMessage,
    feature_flags_request,
    parse_message,
)
from ._object_info import WIDGET_TYPES, InputSpec, NodeDef, parse_node_defs
from ._rest import (
    FileRef,
    HistoryEntry,
    HistoryStatus,
    PromptResponse,
    QueueItem,
    QueueSnapshot,
    node_errors_to_list,
    prompt_validation_error,
)
from ._urls import ServerUrl, parse_server_url, server_url_problem
from ._validation import PromptCheck, validate_prompt

__all__ = [
    "WIDGET_TYPES",
    "BinaryEventType",
    "BinaryFrame",
    "ExecutedMessage",
    "ExecutingMessage",
    "ExecutionCachedMessage",
    "ExecutionErrorMessage",
    "ExecutionInterruptedMessage",
    "ExecutionStartMessage",
    "ExecutionSuccessMessage",
    "FeatureFlagsMessage",
    "FileRef",
    "HistoryEntry",
    "HistoryStatus",
    "InputSpec",
    "NodeDef",
    "NodeProgress",
    "PreviewImage",
    "ProgressMessage",
    "ProgressStateMessage",
    "ProgressText",
    "PromptCheck",
    "PromptResponse",
    "QueueItem",
    "QueueSnapshot",
    "ServerMessage",
    "ServerUrl",
    "StatusMessage",
    "UnknownFrame",
    "UnknownMessage",
    "api_graph",
    "decode_binary_frame",
    "encode_preview_image",
    "encode_preview_with_metadata",
    "encode_progress_text",
    "feature_flags_request",
    "is_link",
    "is_ui_workflow",
    "linked_nodes",
    "node_errors_to_list",
    "parse_message",
    "parse_node_defs",
    "parse_server_url",
    "prompt_validation_error",
    "server_url_problem",
    "validate_prompt",
]
