"""Run client calls without blocking the kernel, for both client flavours.

Widgets talk to either an ``AsyncComfyClient`` (methods are coroutines, run with ``client.spawn``) or
the blocking ``ComfyClient`` (methods block; they run on a small widget-owned thread pool, never on
the kernel's main thread and never on the client's loop thread). Either way the caller gets a
``concurrent.futures.Future`` and attaches a done-callback that only sets traits.
"""

from __future__ import annotations

import concurrent.futures
import inspect
import logging
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["call", "chain", "on_done", "run_in_pool"]

log = logging.getLogger("comfy_nb.widgets")

_pool: concurrent.futures.ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _executor() -> concurrent.futures.ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="comfy_nb-widgets")
        return _pool


def call(target: Any, name: str, /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
    """Call ``target.name(*args, **kwargs)`` in the background; return a Future of its result.

    ``target`` is a client (or anything with the method). Coroutine methods are scheduled with
    ``client.spawn`` (the target's own ``spawn`` or, for a job, its client's); blocking methods run
    on the widgets' thread pool.
    """
    method = getattr(target, name)
    if inspect.iscoroutinefunction(method):
        spawner = getattr(target, "spawn", None) or getattr(getattr(target, "client", None), "spawn", None)
        if spawner is None:  # pragma: no cover - every contract client has spawn
            raise TypeError(f"{type(target).__name__} has no spawn() to run {name}()")
        fut: concurrent.futures.Future[Any] = spawner(method(*args, **kwargs))
        return fut
    return _executor().submit(method, *args, **kwargs)


def on_done(
    fut: concurrent.futures.Future[Any],
    ok: Callable[[Any], None],
    err: Callable[[BaseException], None] | None = None,
) -> None:
    """Attach ``ok(result)`` / ``err(exception)`` to ``fut``; callback errors are logged, not raised."""

    def _cb(f: concurrent.futures.Future[Any]) -> None:
        try:
            if f.cancelled():
                if err is not None:
                    err(concurrent.futures.CancelledError())
                return
            exc = f.exception()
            if exc is not None:
                if err is not None:
                    err(exc)
                else:
                    log.warning("background widget call failed: %s", exc)
                return
            ok(f.result())
        except Exception:  # never let a widget callback kill the loop
            log.exception("widget callback raised")

    fut.add_done_callback(_cb)


def run_in_pool(fn: Callable[..., Any], *args: Any) -> concurrent.futures.Future[Any]:
    """Run CPU work (image decoding) on the widgets' pool, off the client's loop thread."""
    return _executor().submit(fn, *args)


def chain(
    fut: concurrent.futures.Future[Any], fn: Callable[[Any], Any]
) -> concurrent.futures.Future[Any]:
    """A Future of ``fn(result of fut)``, with ``fn`` run on the widgets' pool."""
    out: concurrent.futures.Future[Any] = concurrent.futures.Future()

    def _cb(f: concurrent.futures.Future[Any]) -> None:
        if f.cancelled():
            out.cancel()
            return
        exc = f.exception()
        if exc is not None:
            out.set_exception(exc)
            return

        def _run() -> None:
            try:
                out.set_result(fn(f.result()))
            except BaseException as e:
                out.set_exception(e)

        _executor().submit(_run)

    fut.add_done_callback(_cb)
    return out
