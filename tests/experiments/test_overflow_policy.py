"""``OverflowPolicy.choose`` on its own: counts in, a server (or "wait") out."""

from __future__ import annotations

from typing import Any

import pytest

from comfy_nb.errors import ComfyError
from comfy_nb.experiments import OverflowPolicy, Placement

LOCAL = Placement(overflow=False, index=0)


@pytest.mark.parametrize(
    ("local", "overflow", "expected"),
    [
        ([3, 1, 1], [0], Placement(False, 1)),     # the shortest local queue, the first on ties
        ([4, 4], [0], Placement(False, 0)),        # at the threshold is not over it
        ([5, 6], [0], Placement(True, 0)),         # every local queue over it: overflow
        ([5], [2, 1, 1], Placement(True, 1)),      # the overflow with the fewest in flight, the first on ties
        ([5], [8, 7], Placement(True, 1)),         # one below max_in_flight still takes a job
        ([6, 5], [8, 8], Placement(False, 1)),     # overflow full: back to the shortest local queue
        ([9], [], Placement(False, 0)),            # no overflow servers: local whatever the queue
        ([], [3], Placement(True, 0)),             # no local server up (or able): overflow
        ([], [8], None),                           # ... unless it is full: wait
        ([], [], None),                            # nothing at all: wait
    ],
)
def test_choose(local: list[int], overflow: list[int], expected: Placement | None) -> None:
    assert OverflowPolicy(when_queued_over=4, max_in_flight=8).choose(local, overflow) == expected


def test_zero_threshold_overflows_as_soon_as_local_is_busy() -> None:
    policy = OverflowPolicy(when_queued_over=0, max_in_flight=1)
    assert policy.choose([0], [0]) == LOCAL
    assert policy.choose([1], [0]) == Placement(True, 0)
    assert policy.choose([1], [1]) == LOCAL


def test_when_no_local_false_never_sends_a_job_only_to_overflow() -> None:
    policy = OverflowPolicy(when_queued_over=0, when_no_local=False)
    assert policy.choose([], [0]) is None
    assert policy.choose([3], [0]) == Placement(True, 0)  # busy local servers still overflow


def test_defaults() -> None:
    assert OverflowPolicy() == OverflowPolicy(when_queued_over=4, max_in_flight=8, when_no_local=True)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"when_queued_over": -1}, r"when_queued_over=-1\): give a whole number >= 0"),
        ({"max_in_flight": 0}, r"max_in_flight=0\): give a whole number >= 1"),
        ({"max_in_flight": 2.5}, r"max_in_flight=2\.5\)"),
        ({"max_in_flight": True}, r"max_in_flight=True\)"),
        ({"when_no_local": "yes"}, r"when_no_local='yes'\): give True or False"),
    ],
)
def test_bad_values_are_named(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ComfyError, match=message):
        OverflowPolicy(**kwargs)
