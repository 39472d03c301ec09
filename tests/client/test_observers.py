"""One error policy for every callback list: a raising observer is logged or handed to its on_error, never fatal."""

from __future__ import annotations

import logging

import pytest

from comfy_nb._observers import Observers


def test_a_raising_observer_does_not_stop_the_others(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[int] = []
    errors: list[str] = []
    observers: Observers[int] = Observers("subscriber of test")

    def broken(value: int) -> None:
        raise RuntimeError(f"boom {value}")

    observers.add(broken)
    observers.add(broken, on_error=lambda exc: errors.append(str(exc)))
    stop = observers.add(seen.append)
    with caplog.at_level(logging.ERROR, logger="comfy_nb"):
        observers.notify(1)
    assert seen == [1] and errors == ["boom 1"]
    assert [r.getMessage() for r in caplog.records] == ["subscriber of test raised"]
    stop()
    stop()  # twice is harmless
    observers.notify(2)
    assert seen == [1] and len(observers) == 2
