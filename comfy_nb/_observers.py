"""``Observers``: the one list of callbacks behind ``job.subscribe``, ``run.on_update`` and the widgets' hooks.

One error policy everywhere: a callback that raises never stops the others or the code that notified
them. Its exception goes to the ``on_error`` given with it, or to the ``comfy_nb`` log.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Generic, TypeVar

__all__ = ["Observers"]

T = TypeVar("T")

log = logging.getLogger("comfy_nb")


class Observers(Generic[T]):
    """Callbacks called with each new value, in the order they were added."""

    def __init__(self, what: str) -> None:
        self._what = what
        """Named in the log line when a callback raises, e.g. ``"subscriber of job 1234"``."""
        self._entries: list[tuple[Callable[[T], Any], Callable[[BaseException], Any] | None]] = []

    def add(
        self, callback: Callable[[T], Any], on_error: Callable[[BaseException], Any] | None = None
    ) -> Callable[[], None]:
        """Call ``callback(value)`` on each ``notify``; returns a function that stops it (safe to call twice)."""
        entry = (callback, on_error)
        self._entries.append(entry)

        def remove() -> None:
            if entry in self._entries:
                self._entries.remove(entry)

        return remove

    def notify(self, value: T) -> None:
        for callback, on_error in tuple(self._entries):
            try:
                callback(value)
            except Exception as exc:  # a broken observer must not break the notifier
                if on_error is None:
                    log.exception("%s raised", self._what)
                    continue
                try:
                    on_error(exc)
                except Exception:
                    log.exception("on_error of %s raised", self._what)

    def fail(self, exc: BaseException) -> None:
        """Hand ``exc`` to every ``on_error`` given (the source ended abnormally); plain callbacks are skipped."""
        for _callback, on_error in tuple(self._entries):
            if on_error is None:
                continue
            try:
                on_error(exc)
            except Exception:
                log.exception("on_error of %s raised", self._what)

    def __len__(self) -> int:
        return len(self._entries)
