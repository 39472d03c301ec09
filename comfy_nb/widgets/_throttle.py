"""Coalescing rate limiter for widget updates.

Client callbacks can fire thousands of times per second (a sampler reporting every step, a burst of
queue changes). A widget only needs the *latest* state, at most about 20 times per second, and it needs
the *final* state promptly. :class:`Throttle` does exactly that:

* ``push(value)`` delivers at once when the last delivery is at least ``interval`` old;
* otherwise it keeps only the newest value and arranges one trailing delivery when the interval ends;
* ``push(value, final=True)`` (a terminal job state) delivers at once and cancels the trailing one.

The clock and the timer are injectable so tests can count deliveries for a simulated burst without
sleeping. The default timer uses ``loop.call_later`` when called on a running asyncio loop (the
client's loop thread) and a daemon :class:`threading.Timer` otherwise.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

__all__ = ["DEFAULT_INTERVAL", "Throttle", "TimerHandle", "default_timer"]

T = TypeVar("T")

#: Minimum time between two deliveries: 55 ms, i.e. at most ~18 updates per second (+ the final one).
DEFAULT_INTERVAL = 0.055


class TimerHandle(Protocol):
    """What a timer returns: something that can be cancelled."""

    def cancel(self) -> object: ...


Timer = Callable[[float, Callable[[], None]], TimerHandle]


def default_timer(delay: float, fn: Callable[[], None]) -> TimerHandle:
    """Run ``fn`` after ``delay`` seconds, on the running asyncio loop if there is one."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        t = threading.Timer(delay, fn)
        t.daemon = True
        t.start()
        return t
    return loop.call_later(delay, fn)


class Throttle(Generic[T]):
    """Deliver the latest pushed value to ``sink`` at most once per ``interval`` seconds.

    Parameters
    ----------
    sink:
        Called with the value to deliver. Calls are serialised (never two at once).
    interval:
        Minimum seconds between two deliveries (default 0.05 → 20 per second).
    clock:
        Monotonic clock in seconds (injectable for tests).
    timer:
        ``timer(delay, fn) -> handle`` scheduling the trailing delivery (injectable for tests).
    """

    def __init__(
        self,
        sink: Callable[[T], None],
        *,
        interval: float = DEFAULT_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
        timer: Timer = default_timer,
    ) -> None:
        self._sink = sink
        self._interval = interval
        self._clock = clock
        self._timer = timer
        self._lock = threading.RLock()
        self._last: float | None = None
        self._pending: tuple[T] | None = None
        self._handle: TimerHandle | None = None
        self._closed = False
        self.delivered = 0
        """How many times the sink has been called."""

    def push(self, value: T, *, final: bool = False) -> None:
        """Offer a new value; ``final=True`` delivers it now whatever the rate."""
        with self._lock:
            if self._closed:
                return
            now = self._clock()
            if final or self._last is None or (now - self._last >= self._interval and self._handle is None):
                self._cancel_timer()
                self._pending = None
                self._deliver(value, now)
                return
            self._pending = (value,)
            if self._handle is None:
                delay = max(0.0, self._interval - (now - self._last))
                self._handle = self._timer(delay, self._on_timer)

    def flush(self) -> None:
        """Deliver the pending value now, if there is one."""
        with self._lock:
            self._cancel_timer()
            if self._pending is not None and not self._closed:
                (value,) = self._pending
                self._pending = None
                self._deliver(value, self._clock())

    def close(self) -> None:
        """Drop any pending value and stop delivering."""
        with self._lock:
            self._cancel_timer()
            self._pending = None
            self._closed = True

    @property
    def pending(self) -> bool:
        """Whether a trailing delivery is scheduled."""
        return self._pending is not None

    def _on_timer(self) -> None:
        with self._lock:
            self._handle = None
            if self._pending is None or self._closed:
                return
            (value,) = self._pending
            self._pending = None
            self._deliver(value, self._clock())

    def _cancel_timer(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _deliver(self, value: T, now: float) -> None:
        self._last = now
        self.delivered += 1
        self._sink(value)
