"""Comfy API v2 (``/api/v2``) wire models and an incremental Server-Sent-Events parser: no I/O.

Shapes follow the v2 OpenAPI contract shipped in ``comfy-api-proxy`` 0.1.6 and ``comfy-sdk`` 0.5.0:
a ``Job`` is polled (``GET /api/v2/jobs/{id}`` is the truth), ``GET .../events`` streams ``status``,
``progress`` (each a complete snapshot), ``preview``, ``output`` and ``log`` events, live only (no
ids, no resume). Models are lenient on input (unknown fields ignored, optional fields defaulted)
because servers omit unset fields; a body that does not fit raises ``ProtocolError``.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import ProtocolError

__all__ = [
    "TERMINAL_V2_STATUSES",
    "SSEMessage",
    "SSEParser",
    "V2Asset",
    "V2ErrorBody",
    "V2Event",
    "V2Job",
    "V2JobError",
    "V2JobStatus",
    "V2LogEvent",
    "V2Output",
    "V2OutputEvent",
    "V2OutputType",
    "V2PreviewEvent",
    "V2Progress",
    "V2ProgressEvent",
    "V2StatusEvent",
    "V2Urls",
    "parse_v2_error",
    "parse_v2_event",
    "parse_v2_job",
]

V2JobStatus = Literal["queued", "running", "succeeded", "canceling", "canceled", "failed", "expired"]
"""Lifecycle: queued -> running -> succeeded | failed | expired; cancel: running -> canceling -> canceled."""

TERMINAL_V2_STATUSES: frozenset[str] = frozenset({"succeeded", "canceled", "failed", "expired"})
V2_STATUSES: frozenset[str] = frozenset(get_args(V2JobStatus))

V2OutputType = Literal["image", "video", "audio", "text", "file", "latent"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class V2Progress(_Model):
    """A complete progress snapshot (one re-syncs a client); ``value`` is the overall 0..1 fraction."""

    value: float = Field(ge=0.0, le=1.0)
    nodes_done: int = 0
    nodes_total: int = 0
    current_node: str | None = None
    current_node_class: str | None = None
    step: int | None = None
    steps: int | None = None
    message: str | None = None


class V2Output(_Model):
    """A committed output: an asset with a short-lived ``url`` to follow (never build it)."""

    node_id: str
    name: str
    type: V2OutputType
    content_type: str = "application/octet-stream"
    size_bytes: int = 0
    id: str
    hash: str | None = None
    url: str
    url_expires_at: str | None = None
    job_id: str | None = None


class V2JobError(_Model):
    """Why a job failed (carried in ``job.error``, not an HTTP error)."""

    code: str
    message: str = ""
    node_id: str | None = None
    class_type: str | None = None
    traceback: str | None = None


class V2Urls(_Model):
    """Follow-up links the server embeds in a job."""

    self: str
    events: str
    cancel: str


class V2Job(_Model):
    """One execution of a workflow, as ``GET /api/v2/jobs/{id}`` reports it."""

    id: str
    status: V2JobStatus
    created_at: str | None = None
    started_at: str | None = None
    completed_at: str | None = None
    expires_at: str | None = None
    queue_position: int | None = None
    progress: V2Progress | None = None
    outputs: tuple[V2Output, ...] = ()
    error: V2JobError | None = None
    outputs_reused: bool = False
    metadata: str | dict[str, str] | None = None  # an opaque label (proxy 0.1.6) or string labels (later v2)
    priority: int | None = None
    urls: V2Urls | None = None

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_V2_STATUSES


class V2Asset(_Model):
    """An uploaded or output asset: a UUID over a content-addressed (``blake3:<hex>``) blob."""

    id: str
    hash: str | None = None
    size_bytes: int = 0
    content_type: str = "application/octet-stream"
    file_path: str | None = None
    created_new: bool | None = None
    created_at: str | None = None
    url: str
    url_expires_at: str | None = None

    def reference(self) -> dict[str, Any]:
        """The ``core/ASSET`` object a workflow carries where a filename would go."""
        info: dict[str, Any] = {"id": self.id}
        if self.hash:
            info["hash"] = self.hash
        if self.file_path:
            info["file_path"] = self.file_path
        return {"__type": "core/ASSET", "info": info}


class V2ErrorBody(_Model):
    """The shared error envelope's body: ``{"error": {code, message, details}}``."""

    code: str
    message: str = ""
    details: dict[str, Any] | None = None


# ---------------------------------------------------------------------- events


class V2StatusEvent(_Model):
    status: V2JobStatus
    queue_position: int | None = None

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_V2_STATUSES


class V2ProgressEvent(_Model):
    progress: V2Progress


class V2PreviewEvent(_Model):
    node_id: str = ""
    content_type: str = "image/jpeg"
    data: bytes = b""


class V2OutputEvent(_Model):
    output: V2Output


class V2LogEvent(_Model):
    level: str = "info"
    message: str = ""


V2Event = V2StatusEvent | V2ProgressEvent | V2PreviewEvent | V2OutputEvent | V2LogEvent


def _load(data: str, what: str) -> Any:
    try:
        return json.loads(data)
    except ValueError as exc:
        raise ProtocolError(f"{what} is not JSON: {data[:200]!r}") from exc


def parse_v2_event(message: SSEMessage) -> V2Event | None:
    """Lift one SSE message into a typed event; ``None`` for event names the contract does not define."""
    name = message.event
    if name not in ("status", "progress", "preview", "output", "log"):
        return None
    body = _load(message.data, f"the data of a v2 {name!r} event")
    if not isinstance(body, dict):
        raise ProtocolError(f"the data of a v2 {name!r} event is not an object: {message.data[:200]!r}")
    try:
        if name == "status":
            return V2StatusEvent.model_validate(body)
        if name == "progress":
            return V2ProgressEvent(progress=V2Progress.model_validate(body))
        if name == "output":
            return V2OutputEvent(output=V2Output.model_validate(body))
        if name == "log":
            return V2LogEvent.model_validate(body)
    except ValidationError as exc:
        raise ProtocolError(f"a v2 {name!r} event does not fit the contract: {_first_error(exc)}") from exc
    raw = body.get("data_base64", "")
    try:
        data = base64.b64decode(raw, validate=True) if isinstance(raw, str) else b""
    except (binascii.Error, ValueError) as exc:
        raise ProtocolError("a v2 'preview' event carries invalid base64 data") from exc
    return V2PreviewEvent(
        node_id=str(body.get("node_id") or ""),
        content_type=str(body.get("content_type") or "image/jpeg"),
        data=data,
    )


def parse_v2_job(body: Any) -> V2Job:
    """Validate a job body; ``ProtocolError`` names the first field that does not fit."""
    try:
        return V2Job.model_validate(body)
    except ValidationError as exc:
        raise ProtocolError(f"a v2 job body does not fit the contract: {_first_error(exc)}") from exc


def parse_v2_error(body: Any) -> V2ErrorBody | None:
    """The error envelope's body, or ``None`` when ``body`` is not one."""
    if not isinstance(body, dict) or not isinstance(body.get("error"), dict):
        return None
    try:
        return V2ErrorBody.model_validate(body["error"])
    except ValidationError:
        return None


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err.get("loc", ())) or "body"
    return f"{where}: {err.get('msg', 'invalid')}"


# ---------------------------------------------------------------------- SSE


@dataclass(frozen=True)
class SSEMessage:
    """One dispatched SSE message (``event`` defaults to ``"message"``; ``data`` lines joined by newlines)."""

    event: str
    data: str
    id: str | None = None
    retry: int | None = None


class SSEParser:
    """Incremental ``text/event-stream`` parser: bytes in (split anywhere), messages out.

    Follows the WHATWG rules: lines end in CRLF, LF or CR; a leading UTF-8 BOM is dropped; ``:``
    starts a comment; one space after the colon is stripped; ``data`` lines join with ``\\n``; a
    blank line dispatches (nothing if no ``data`` was seen); ``retry`` takes ASCII digits only and
    is reported on the next message and in ``retry``; an ``id`` holding NUL is ignored; an unfinished
    message at end of stream is dropped.
    """

    def __init__(self) -> None:
        self._buffer = b""
        self._started = False
        self._cr_pending = False
        self._event = ""
        self._data: list[str] = []
        self._has_data = False
        self._last_id: str | None = None
        self.retry: int | None = None

    def feed(self, chunk: bytes) -> list[SSEMessage]:
        """Parse ``chunk`` and return every message it completed (usually zero or one)."""
        buf = self._buffer + chunk
        if not self._started:
            if len(buf) < 3 and b"\xef\xbb\xbf".startswith(buf):
                self._buffer = buf
                return []
            self._started = True
            if buf.startswith(b"\xef\xbb\xbf"):
                buf = buf[3:]
        if self._cr_pending and buf:
            self._cr_pending = False
            if buf[:1] == b"\n":
                buf = buf[1:]
        out: list[SSEMessage] = []
        start = 0
        n = len(buf)
        while start < n:
            cr = buf.find(b"\r", start)
            lf = buf.find(b"\n", start)
            ends = [i for i in (cr, lf) if i >= 0]
            if not ends:
                break
            end = min(ends)
            line = buf[start:end]
            if buf[end : end + 1] == b"\r":
                if end + 1 < n:
                    start = end + 2 if buf[end + 1 : end + 2] == b"\n" else end + 1
                else:
                    start = end + 1
                    self._cr_pending = True
            else:
                start = end + 1
            message = self._line(line.decode("utf-8", "replace"))
            if message is not None:
                out.append(message)
        self._buffer = buf[start:]
        return out

    def _line(self, line: str) -> SSEMessage | None:
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
            self._has_data = True
        elif name == "id":
            if "\0" not in value:
                self._last_id = value
        elif name == "retry" and value and value.isascii() and value.isdigit():
            self.retry = int(value)
        return None

    def _dispatch(self) -> SSEMessage | None:
        event, data, has_data = self._event, self._data, self._has_data
        self._event, self._data, self._has_data = "", [], False
        if not has_data:
            return None
        return SSEMessage(event or "message", "\n".join(data), self._last_id or None, self.retry)
