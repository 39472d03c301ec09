"""Fault injection and counters for the mock server; every method is safe to call from any thread."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Faults", "ServerStats"]


@dataclass
class _HttpFault:
    remaining: int
    status: int
    paths: tuple[str, ...] | None
    retry_after: float | None


@dataclass
class _NodeFault:
    target: str
    message: str
    exception_type: str
    remaining: int | None


class Faults:
    """Faults a test can switch on while the server runs (``server.faults``).

    - ``drop_sockets(after_messages=0, client_id=None)``: once that many more WebSocket messages
      (text or binary) have been sent to matching sockets, abort every matching socket's connection
      (no close frame, like a network drop). One-shot.
    - ``delay_history(seconds, count=None)``: hold each finished prompt that long before writing its
      history (so ``execution_success`` arrives well before ``/history/{id}`` has it, and the final
      ``status`` / ``executing null`` come late). ``count`` limits it to the next N prompts.
    - ``http_errors(count, status=503, paths=None, retry_after=None)``: answer the next ``count`` HTTP
      requests (only those whose path, without ``/api``, starts with one of ``paths``, when given;
      ``"/ws"`` covers the WebSocket upgrade) with ``status`` and an optional ``Retry-After``.
    - ``stall(seconds, target="worker")``: the worker stops at its next checkpoint (node start or
      progress step) for that long; ``target="sockets"`` holds every outgoing WebSocket message
      instead (they are delivered, in order, when the stall ends).
    - ``fail_node(class_type_or_node_id, message="...", exception_type="RuntimeError", count=None)``:
      that node raises when it runs, giving a real ``execution_error``. ``count`` limits it to N runs.
    - ``hold()`` / ``release()``: a gate, no timing involved: while held, the worker starts no new
      prompt (they wait in the queue; one already running finishes).
    - ``clear()``: switch every fault off (and release a hold).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._drop: tuple[int, str | None] | None = None
        self._history_delay = 0.0
        self._history_count: int | None = None
        self._http: list[_HttpFault] = []
        self._stall_worker_until = 0.0
        self._stall_sockets_until = 0.0
        self._nodes: list[_NodeFault] = []
        self._held = False
        self._release_waiters: list[asyncio.Future[None]] = []
        self._notify_drop: Callable[[str | None], None] | None = None

    # ----------------------------------------------------------------- public API

    def drop_sockets(self, after_messages: int = 0, *, client_id: str | None = None) -> None:
        n = max(0, int(after_messages))
        if n == 0 and self._notify_drop is not None:
            self._notify_drop(client_id)
            return
        with self._lock:
            self._drop = (n, client_id)

    def delay_history(self, seconds: float, *, count: int | None = None) -> None:
        with self._lock:
            self._history_delay = max(0.0, float(seconds))
            self._history_count = count

    def http_errors(
        self,
        count: int,
        status: int = 503,
        paths: list[str] | tuple[str, ...] | str | None = None,
        retry_after: float | None = None,
    ) -> None:
        if isinstance(paths, str):
            paths = (paths,)
        with self._lock:
            self._http.append(
                _HttpFault(int(count), int(status), None if paths is None else tuple(paths), retry_after)
            )

    def stall(self, seconds: float, target: str = "worker") -> None:
        if target not in ("worker", "sockets"):
            raise ValueError(f"stall target must be 'worker' or 'sockets', not {target!r}")
        until = time.monotonic() + max(0.0, float(seconds))
        with self._lock:
            if target == "worker":
                self._stall_worker_until = until
            else:
                self._stall_sockets_until = until

    def fail_node(
        self,
        class_type_or_node_id: str,
        message: str = "mock: injected node failure",
        *,
        exception_type: str = "RuntimeError",
        count: int | None = None,
    ) -> None:
        with self._lock:
            self._nodes.append(_NodeFault(str(class_type_or_node_id), message, exception_type, count))

    def hold(self) -> None:
        with self._lock:
            self._held = True

    def release(self) -> None:
        with self._lock:
            self._held = False
            waiters, self._release_waiters = self._release_waiters, []
        for future in waiters:
            with contextlib.suppress(RuntimeError):  # that server's loop is already closed
                future.get_loop().call_soon_threadsafe(_resolve, future)

    def clear(self) -> None:
        self.release()
        with self._lock:
            self._drop = None
            self._history_delay = 0.0
            self._history_count = None
            self._http.clear()
            self._stall_worker_until = 0.0
            self._stall_sockets_until = 0.0
            self._nodes.clear()

    # ----------------------------------------------------------------- used by the server

    def take_http(self, path: str) -> _HttpFault | None:
        if not self._http:
            return None
        with self._lock:
            for fault in self._http:
                if fault.paths is not None and not any(path.startswith(p) for p in fault.paths):
                    continue
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._http.remove(fault)
                return fault
        return None

    def take_history_delay(self) -> float:
        if not self._history_delay:
            return 0.0
        with self._lock:
            delay = self._history_delay
            if self._history_count is not None:
                self._history_count -= 1
                if self._history_count <= 0:
                    self._history_delay = 0.0
                    self._history_count = None
            return delay

    def held(self) -> asyncio.Future[None] | None:
        """On the server's loop: a future resolved by ``release()``, or ``None`` when not held."""
        with self._lock:
            if not self._held:
                return None
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._release_waiters.append(future)
            return future

    def stall_remaining(self, target: str) -> float:
        until = self._stall_worker_until if target == "worker" else self._stall_sockets_until
        return max(0.0, until - time.monotonic()) if until else 0.0

    def take_node_fault(self, node_id: str, class_type: str) -> tuple[str, str] | None:
        if not self._nodes:
            return None
        with self._lock:
            for fault in self._nodes:
                if fault.target in (node_id, class_type):
                    if fault.remaining is not None:
                        fault.remaining -= 1
                        if fault.remaining <= 0:
                            self._nodes.remove(fault)
                    return fault.message, fault.exception_type
        return None

    def count_message(self, client_id: str | None) -> tuple[bool, str | None]:
        """Count one message sent to ``client_id``'s socket; ``(True, filter)`` when sockets must drop now."""
        drop = self._drop
        if drop is None or (drop[1] is not None and drop[1] != client_id):
            return False, None
        with self._lock:
            if self._drop is None:
                return False, None
            left, cid = self._drop
            if left <= 1:
                self._drop = None
                return True, cid
            self._drop = (left - 1, cid)
            return False, None


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class ServerStats:
    """Cheap counters (``server.stats``); read them from any thread.

    ``requests``: ``Counter`` of ``"METHOD /route"`` (``/api`` folded in, e.g. ``"GET /history/{prompt_id}"``);
    ``unrouted``: ``Counter`` of ``"METHOD /path"`` no route matched (answered 404 or 405: what a client
    asked for that the mock does not serve);
    ``history_fetches`` (``GET /history`` and ``/history/{id}``), ``prompts_submitted`` (200s),
    ``prompts_rejected`` (400s), ``prompts_completed``, ``ws_connects``, ``ws_messages``, ``http_faults``
    (answers replaced by ``faults.http_errors``), ``sockets_dropped``, ``restarts``.
    """

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.unrouted: Counter[str] = Counter()
        self.history_fetches = 0
        self.prompts_submitted = 0
        self.prompts_rejected = 0
        self.prompts_completed = 0
        self.ws_connects = 0
        self.ws_messages = 0
        self.http_faults = 0
        self.sockets_dropped = 0
        self.restarts = 0

    def snapshot(self) -> dict[str, Any]:
        return {
            "requests": dict(self.requests),
            "unrouted": dict(self.unrouted),
            "history_fetches": self.history_fetches,
            "prompts_submitted": self.prompts_submitted,
            "prompts_rejected": self.prompts_rejected,
            "prompts_completed": self.prompts_completed,
            "ws_connects": self.ws_connects,
            "ws_messages": self.ws_messages,
            "http_faults": self.http_faults,
            "sockets_dropped": self.sockets_dropped,
            "restarts": self.restarts,
        }

    def __repr__(self) -> str:
        return f"ServerStats({self.snapshot()!r})"
