"""Every exception comfy_nb raises, in one tree.

::

    ComfyError                      base of everything below
    ├── ComfyConnectionError        server unreachable, refused, TLS failure, socket lost for good
    │   ├── ComfyTimeout            a deadline passed (connect, read, or ``job.wait(timeout=...)``)
    │   └── ClientClosed            the client was closed (``aclose()``/``close()``) while waiting or before a call
    ├── ServerError                 the server answered, but not with what the protocol promises
    │                               (5xx after retries, 4xx other than validation, non-JSON body)
    │   └── PromptValidationError   ``POST /prompt`` rejected the graph (400), or a 200 that dropped
    │                               invalid outputs when ``strict`` submission is asked for
    ├── ExecutionError              the prompt ran and a node raised (``execution_error``)
    ├── JobCancelled                the prompt was interrupted or deleted from the queue
    ├── JobLost                     the prompt vanished from queue and history (server restarted)
    ├── NotAvailable                the server's kind has no such operation (e.g. ``queue()`` on Comfy API v2)
    ├── ProtocolError               a WebSocket message or binary frame we cannot parse
    ├── WorkflowError               a graph cannot be converted, bound or validated client-side
    └── ConfigError                 a configuration value or file is invalid

Errors that come from an HTTP exchange carry ``request`` (method and URL, never headers) and
``response`` (status and a bounded body excerpt) so a notebook user can see what happened
without secrets leaking: auth headers are never stored on an exception.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ClientClosed",
    "ComfyConnectionError",
    "ComfyError",
    "ComfyTimeout",
    "ConfigError",
    "ExecutionError",
    "JobCancelled",
    "JobLost",
    "NodeInputError",
    "NotAvailable",
    "PromptValidationError",
    "ProtocolError",
    "RequestInfo",
    "ResponseInfo",
    "ServerError",
    "WorkflowError",
]

_BODY_EXCERPT = 2000


@dataclass(frozen=True)
class RequestInfo:
    """The method and URL of a failed request (headers are deliberately left out)."""

    method: str
    url: str

    def __str__(self) -> str:
        return f"{self.method} {self.url}"


@dataclass(frozen=True)
class ResponseInfo:
    """Status and a bounded excerpt of the body of a failed response."""

    status_code: int
    body: str = ""

    @classmethod
    def from_parts(cls, status_code: int, body: bytes | str) -> ResponseInfo:
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        return cls(status_code, text[:_BODY_EXCERPT])


class ComfyError(Exception):
    """Base class of every comfy_nb error."""

    def __init__(
        self,
        message: str,
        *,
        request: RequestInfo | None = None,
        response: ResponseInfo | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.request = request
        self.response = response


class ComfyConnectionError(ComfyError):
    """The server could not be reached or the connection broke."""


class ComfyTimeout(ComfyConnectionError):
    """A deadline passed before the server answered or the job finished."""


class ClientClosed(ComfyConnectionError):
    """The client was closed: waiters are released with this, and calls after ``close()`` raise it.

    Jobs stay on the server; ``client.track(prompt_id)`` on a new client follows them again.
    """


class ServerError(ComfyError):
    """The server answered with an error status or a body we could not use."""

    @property
    def status_code(self) -> int | None:
        return self.response.status_code if self.response else None


@dataclass(frozen=True)
class NodeInputError:
    """One problem the server (or client-side validation) found in one node of a graph."""

    node_id: str
    class_type: str
    title: str | None
    type: str
    message: str
    details: str = ""
    input_name: str | None = None
    received_value: Any = None
    allowed: list[Any] | None = None
    dependent_outputs: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """One line naming the node, the input and what is wrong with it."""
        who = f"node {self.node_id} ({self.class_type}"
        who += f', "{self.title}")' if self.title and self.title != self.class_type else ")"
        where = f" input '{self.input_name}'" if self.input_name else ""
        text = f"{who}{where}: {self.message}"
        if self.details and self.details != self.input_name:
            text += f" - {self.details}"
        if self.allowed is not None and self.details == "" and self.allowed:
            shown = ", ".join(repr(a) for a in self.allowed[:20])
            more = f", ... ({len(self.allowed)} in all)" if len(self.allowed) > 20 else ""
            text += f" (allowed: {shown}{more})"
        return text


class PromptValidationError(ServerError):
    """The server refused a prompt; ``errors`` lists each node, input and reason in the server's words."""

    def __init__(
        self,
        message: str,
        *,
        error_type: str,
        errors: list[NodeInputError],
        request: RequestInfo | None = None,
        response: ResponseInfo | None = None,
    ) -> None:
        self.error_type = error_type
        self.errors = errors
        lines = [message] + [f"  - {e.describe()}" for e in errors]
        super().__init__("\n".join(lines), request=request, response=response)


class ExecutionError(ComfyError):
    """A node raised while the prompt ran."""

    def __init__(
        self,
        prompt_id: str,
        *,
        node_id: str | None,
        node_type: str | None,
        exception_type: str,
        exception_message: str,
        traceback: list[str] | None = None,
    ) -> None:
        self.prompt_id = prompt_id
        self.node_id = node_id
        self.node_type = node_type
        self.exception_type = exception_type
        self.exception_message = exception_message
        self.traceback = list(traceback or [])
        where = f"node {node_id} ({node_type})" if node_id else "the server"
        super().__init__(
            f"prompt {prompt_id} failed in {where}: {exception_type}: {exception_message.strip()}"
        )


class JobCancelled(ComfyError):
    """The prompt was interrupted while running or removed from the queue."""

    def __init__(self, prompt_id: str, message: str | None = None) -> None:
        self.prompt_id = prompt_id
        super().__init__(message or f"prompt {prompt_id} was cancelled")


class JobLost(ComfyError):
    """The prompt is in neither the queue nor the history (the server restarted or deleted it)."""

    def __init__(self, prompt_id: str, message: str | None = None) -> None:
        self.prompt_id = prompt_id
        super().__init__(
            message
            or f"prompt {prompt_id} vanished from the server's queue and history "
            "(the server was probably restarted); submit it again"
        )


class NotAvailable(ComfyError):
    """The kind of server the client talks to has no equivalent of the called method.

    ``method`` and ``kind`` name them; the message says what to use instead.
    """

    def __init__(self, method: str, kind: str, hint: str) -> None:
        self.method = method
        self.kind = kind
        super().__init__(f"{method}() is not available on a {kind} endpoint; {hint}")


class ProtocolError(ComfyError, ValueError):
    """A message from the server does not follow the ComfyUI protocol."""


class WorkflowError(ComfyError, ValueError):
    """A workflow cannot be converted, bound or validated; the message names the node and why."""


class ConfigError(ComfyError, ValueError):
    """A configuration value or file is invalid; the message names the field."""
