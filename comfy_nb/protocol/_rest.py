"""HTTP bodies: ``POST /prompt`` answers and errors, ``/queue`` items, ``/history`` entries."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..errors import NodeInputError, PromptValidationError, ProtocolError, RequestInfo, ResponseInfo

__all__ = [
    "FileRef",
    "HistoryEntry",
    "HistoryStatus",
    "PromptResponse",
    "QueueItem",
    "QueueSnapshot",
    "node_errors_to_list",
    "prompt_validation_error",
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class FileRef(_Model):
    """A file the server wrote or holds, fetched with ``/view?filename=&subfolder=&type=``."""

    filename: str
    subfolder: str = ""
    type: str = "output"


class PromptResponse(_Model):
    """A 200 from ``POST /prompt``. ``node_errors`` can be non-empty: invalid outputs were dropped."""

    prompt_id: str
    number: float
    node_errors: dict[str, Any] = Field(default_factory=dict)


class QueueItem(_Model):
    """One ``/queue`` entry, which the server sends as a 5-element array."""

    number: float
    prompt_id: str
    prompt: dict[str, Any]
    extra_data: dict[str, Any] = Field(default_factory=dict)
    outputs_to_execute: list[str] = Field(default_factory=list)

    @classmethod
    def from_wire(cls, item: Any) -> QueueItem:
        if not isinstance(item, (list, tuple)) or len(item) < 2:
            raise ProtocolError(f"queue item is not a [number, prompt_id, ...] array: {str(item)[:100]}")
        return cls(
            number=item[0],
            prompt_id=item[1],
            prompt=item[2] if len(item) > 2 and isinstance(item[2], dict) else {},
            extra_data=item[3] if len(item) > 3 and isinstance(item[3], dict) else {},
            outputs_to_execute=[str(x) for x in item[4]] if len(item) > 4 and item[4] else [],
        )

    @property
    def client_id(self) -> str | None:
        value = self.extra_data.get("client_id")
        return value if isinstance(value, str) else None


class QueueSnapshot(_Model):
    """``GET /queue`` with ``pending`` sorted into the order the server will run it."""

    running: list[QueueItem]
    pending: list[QueueItem]

    @classmethod
    def from_wire(cls, body: Any) -> QueueSnapshot:
        if not isinstance(body, dict):
            raise ProtocolError("GET /queue did not return a JSON object")
        running = [QueueItem.from_wire(i) for i in body.get("queue_running") or []]
        pending = [QueueItem.from_wire(i) for i in body.get("queue_pending") or []]
        pending.sort(key=lambda q: q.number)  # the wire list is a heap, not run order
        return cls(running=running, pending=pending)


class HistoryStatus(_Model):
    status_str: str | None = None
    completed: bool = False
    messages: list[tuple[str, dict[str, Any]]] = Field(default_factory=list)

    def message(self, name: str) -> dict[str, Any] | None:
        """The data of the last status message called ``name``, if any."""
        for event, data in reversed(self.messages):
            if event == name:
                return dict(data)
        return None


class HistoryEntry(_Model):
    """One prompt in ``/history``: its queue item, outputs per node and final status."""

    prompt: list[Any] = Field(default_factory=list)
    outputs: dict[str, dict[str, Any]] = Field(default_factory=dict)
    status: HistoryStatus = Field(default_factory=HistoryStatus)
    meta: dict[str, Any] = Field(default_factory=dict)

    @property
    def api_prompt(self) -> dict[str, Any]:
        return self.prompt[2] if len(self.prompt) > 2 and isinstance(self.prompt[2], dict) else {}


def node_errors_to_list(
    node_errors: dict[str, Any], prompt: dict[str, Any] | None = None
) -> list[NodeInputError]:
    """Flatten the server's ``node_errors`` into one ``NodeInputError`` per problem.

    ``prompt`` (the submitted graph) supplies node titles from ``_meta`` so messages name the node
    the way the user sees it in the UI.
    """
    out: list[NodeInputError] = []
    for node_id, entry in node_errors.items():
        if not isinstance(entry, dict):
            continue
        class_type = str(entry.get("class_type", ""))
        node = (prompt or {}).get(node_id)
        meta = node.get("_meta") if isinstance(node, dict) else None
        title = meta.get("title") if isinstance(meta, dict) else None
        for err in entry.get("errors") or []:
            extra = err.get("extra_info") or {}
            config = extra.get("input_config")
            allowed = config[0] if isinstance(config, list) and config and isinstance(config[0], list) else None
            out.append(
                NodeInputError(
                    node_id=str(node_id),
                    class_type=class_type,
                    title=title,
                    type=str(err.get("type", "")),
                    message=str(err.get("message", "")),
                    details=str(err.get("details", "")),
                    input_name=extra.get("input_name"),
                    received_value=extra.get("received_value"),
                    allowed=allowed,
                    dependent_outputs=[str(x) for x in entry.get("dependent_outputs") or []],
                )
            )
    return out


def prompt_validation_error(
    body: Any,
    *,
    prompt: dict[str, Any] | None = None,
    request: RequestInfo | None = None,
    response: ResponseInfo | None = None,
) -> PromptValidationError:
    """Turn a ``POST /prompt`` 400 body into an error that lists each bad node and input."""
    if not isinstance(body, dict):
        return PromptValidationError(
            "the server refused the prompt", error_type="unknown", errors=[], request=request, response=response
        )
    error = body.get("error") or {}
    if isinstance(error, str):  # some proxies and old servers send a bare string
        error = {"type": "unknown", "message": error}
    etype = str(error.get("type", "unknown"))
    message = str(error.get("message", "the server refused the prompt"))
    details = str(error.get("details", "") or "")
    headline = f"{message}: {details}" if details else message
    errors = node_errors_to_list(body.get("node_errors") or {}, prompt)
    return PromptValidationError(
        f"ComfyUI refused the prompt ({etype}): {headline}",
        error_type=etype,
        errors=errors,
        request=request,
        response=response,
    )
