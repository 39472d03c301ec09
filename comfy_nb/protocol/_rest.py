"""HTTP bodies: ``POST /prompt`` answers and errors, ``/queue`` items, ``/history`` entries."""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

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


def _finite_number(value: Any) -> float | None:
    """A finite float from a JSON number, else None (a bool, a string, NaN, or an int too big)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


class FileRef(_Model):
    """A file the server wrote or holds, fetched with ``/view?filename=&subfolder=&type=``."""

    filename: str
    subfolder: str = ""
    type: str = "output"


class PromptResponse(_Model):
    """A 200 from ``POST /prompt``. ``node_errors`` can be non-empty: invalid outputs were dropped."""

    prompt_id: str | None = None
    number: float | None = None
    node_errors: dict[str, Any] = Field(default_factory=dict)

    @field_validator("prompt_id", mode="before")
    @classmethod
    def _id_or_none(cls, value: Any) -> Any:
        return value if isinstance(value, str) else None

    @field_validator("number", mode="before")
    @classmethod
    def _number_or_none(cls, value: Any) -> Any:
        return _finite_number(value)

    @field_validator("node_errors", mode="before")
    @classmethod
    def _errors_dict(cls, value: Any) -> Any:
        """A 200 means the prompt was queued: odd extras must not turn it into a failure."""
        return value if isinstance(value, dict) else {}


class QueueItem(_Model):
    """One ``/queue`` entry, which the server sends as a 5-element array."""

    number: float
    prompt_id: str
    prompt: dict[str, Any]
    extra_data: dict[str, Any] = Field(default_factory=dict)
    outputs_to_execute: list[str] = Field(default_factory=list)

    @classmethod
    def from_wire(cls, item: Any) -> QueueItem:
        """One wire entry; a shape that is not ``[number, prompt_id, ...]`` raises ``ProtocolError``."""
        if not isinstance(item, (list, tuple)) or len(item) < 2:
            raise ProtocolError(f"queue item is not a [number, prompt_id, ...] array: {str(item)[:100]}")
        number, prompt_id = _finite_number(item[0]), item[1]
        if number is None:
            raise ProtocolError(f"queue item has a number that is not a finite number: {str(item[0])[:50]}")
        if not isinstance(prompt_id, str) or not prompt_id:
            raise ProtocolError(f"queue item has a prompt id that is not a string: {str(prompt_id)[:50]}")
        targets = item[4] if len(item) > 4 and isinstance(item[4], (list, tuple)) else []
        return cls(
            number=number,
            prompt_id=prompt_id,
            prompt=item[2] if len(item) > 2 and isinstance(item[2], dict) else {},
            extra_data=item[3] if len(item) > 3 and isinstance(item[3], dict) else {},
            outputs_to_execute=[str(x) for x in targets],
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
        lists = []
        for key in ("queue_running", "queue_pending"):
            items = body.get(key) or []
            if not isinstance(items, list):
                raise ProtocolError(f"GET /queue: '{key}' is not a list")
            lists.append([QueueItem.from_wire(i) for i in items])
        running, pending = lists
        pending.sort(key=lambda q: q.number)  # the wire list is a heap, not run order
        return cls(running=running, pending=pending)


def _dict_or_empty(value: Any) -> Any:
    return value if isinstance(value, dict) else {}


class HistoryStatus(_Model):
    """A history entry's status. Parsed tolerantly: a field of the wrong type reads as absent, so a
    strange entry can never stop the reconciler (it then finishes only on what it could read)."""

    status_str: str | None = None
    completed: bool = False
    messages: list[tuple[str, dict[str, Any]]] = Field(default_factory=list)

    @field_validator("status_str", mode="before")
    @classmethod
    def _str_or_none(cls, value: Any) -> Any:
        return value if isinstance(value, str) else None

    @field_validator("completed", mode="before")
    @classmethod
    def _bool_only(cls, value: Any) -> Any:
        return value if isinstance(value, bool) else False

    @field_validator("messages", mode="before")
    @classmethod
    def _pairs_only(cls, value: Any) -> Any:
        if not isinstance(value, list):
            return []
        return [
            (m[0], m[1]) for m in value
            if isinstance(m, (list, tuple)) and len(m) == 2 and isinstance(m[0], str) and isinstance(m[1], dict)
        ]

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

    @field_validator("prompt", mode="before")
    @classmethod
    def _list_or_empty(cls, value: Any) -> Any:
        return list(value) if isinstance(value, (list, tuple)) else []

    @field_validator("outputs", mode="before")
    @classmethod
    def _node_dicts(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return {}
        return {str(k): v for k, v in value.items() if isinstance(v, dict)}

    @field_validator("status", mode="before")
    @classmethod
    def _status_dict(cls, value: Any) -> Any:
        return value if isinstance(value, (dict, HistoryStatus)) else {}

    _meta_dict = field_validator("meta", mode="before")(_dict_or_empty)

    @classmethod
    def from_wire(cls, body: Any, what: str = "history entry") -> HistoryEntry:
        """Parse one entry; anything that still does not fit raises ``ProtocolError``, never a bare
        pydantic error (callers treat it as a transient fault)."""
        if not isinstance(body, dict):
            raise ProtocolError(f"{what} is not a JSON object")
        try:
            return cls.model_validate(body)
        except ValidationError as exc:
            raise ProtocolError(f"{what} has an unexpected shape: {exc.errors()[0]['msg']}") from None

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
        errors = entry.get("errors")
        dependent = entry.get("dependent_outputs")
        dependent = dependent if isinstance(dependent, list) else []
        for err in errors if isinstance(errors, list) else []:
            if not isinstance(err, dict):
                continue
            extra = err.get("extra_info")
            extra = extra if isinstance(extra, dict) else {}
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
                    input_name=extra["input_name"] if isinstance(extra.get("input_name"), str) else None,
                    received_value=extra.get("received_value"),
                    allowed=allowed,
                    dependent_outputs=[str(x) for x in dependent],
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
    if not isinstance(error, dict):
        error = {}
    etype = str(error.get("type", "unknown"))
    message = str(error.get("message", "the server refused the prompt"))
    details = str(error.get("details", "") or "")
    headline = f"{message}: {details}" if details else message
    node_errors = body.get("node_errors")
    errors = node_errors_to_list(node_errors if isinstance(node_errors, dict) else {}, prompt)
    return PromptValidationError(
        f"ComfyUI refused the prompt ({etype}): {headline}",
        error_type=etype,
        errors=errors,
        request=request,
        response=response,
    )
