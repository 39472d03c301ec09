"""The one event-loop thread the library owns, for the blocking facade.

No global asyncio patching: blocking calls hand their coroutine to this loop and wait for the
answer, so they work the same in a script, in pytest and inside a running Jupyter cell.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import threading
import weakref
from collections.abc import Coroutine
from typing import Any, Protocol, TypeVar

__all__ = ["library_loop", "on_library_thread", "register_client", "run_sync"]

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None
_EXIT_GRACE = 5.0
"""Seconds the exit hook gives open clients to close (then it stops the loop anyway)."""


class _Closable(Protocol):
    async def aclose(self) -> None: ...


_clients: weakref.WeakSet[Any] = weakref.WeakSet()


def register_client(client: _Closable) -> None:
    """Remember an open client so the exit hook can close it if its owner never did."""
    _clients.add(client)


def library_loop() -> asyncio.AbstractEventLoop:
    """The library's background loop, started on first use and stopped at interpreter exit."""
    global _loop, _thread
    with _lock:
        if _loop is None or _loop.is_closed() or _thread is None or not _thread.is_alive():
            loop = asyncio.new_event_loop()
            ready = threading.Event()

            def run() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(ready.set)
                loop.run_forever()

            thread = threading.Thread(target=run, name="comfy_nb-loop", daemon=True)
            thread.start()
            ready.wait()
            _loop, _thread = loop, thread
        return _loop


def on_library_thread() -> bool:
    return _thread is not None and threading.current_thread() is _thread


def run_sync(coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
    """Run ``coro`` on the library loop and block until it is done."""
    if on_library_thread():
        coro.close()
        raise RuntimeError(
            "a blocking comfy_nb call was made from the library's own event loop (inside a job callback?); "
            "use the async client and `await` there instead"
        )
    future = asyncio.run_coroutine_threadsafe(coro, library_loop())
    try:
        return future.result(timeout)
    except KeyboardInterrupt:
        future.cancel()
        raise


async def _close_everything() -> None:
    """Close the clients left open on this loop, then end every other task, like ``asyncio.run`` does."""
    loop = asyncio.get_running_loop()
    clients = [c for c in list(_clients) if getattr(c, "_loop", None) is loop]
    await asyncio.gather(*(c.aclose() for c in clients), return_exceptions=True)
    current = asyncio.current_task()
    tasks = [t for t in asyncio.all_tasks(loop) if t is not current and not t.done()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await loop.shutdown_asyncgens()


def _shutdown() -> None:
    """At exit, close clients nobody closed and stop the loop, quietly: no task, session or
    socket is left for the garbage collector to complain about."""
    loop, thread = _loop, _thread
    if loop is None or loop.is_closed():
        return
    if thread is not None and thread.is_alive() and loop.is_running():
        future = asyncio.run_coroutine_threadsafe(_close_everything(), loop)
        with contextlib.suppress(Exception):
            future.result(_EXIT_GRACE)
    loop.call_soon_threadsafe(loop.stop)
    if thread is not None:
        thread.join(timeout=5)
    if not loop.is_running():
        loop.close()


atexit.register(_shutdown)
