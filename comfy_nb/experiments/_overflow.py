"""``OverflowPolicy``: when a pool's job leaves the local servers for an overflow endpoint (Comfy Cloud, a fleet).

The policy is a pure function of counts, so it is tested on its own and the pool has one placement rule
whether or not it has overflow servers::

    ServerPool(["http://gpu1:8188"], overflow=[cloud], overflow_policy=OverflowPolicy(when_queued_over=4, max_in_flight=8))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import ComfyError

__all__ = ["OverflowPolicy", "Placement"]


@dataclass(frozen=True)
class Placement:
    """Where the next job goes: ``index`` into the local or the overflow servers offered to ``choose``."""

    overflow: bool
    index: int


@dataclass(frozen=True)
class OverflowPolicy:
    """Local servers first; an overflow server only when every local queue is long.

    * ``when_queued_over`` – a job overflows when each local server able to run it already has more
      than this many unfinished jobs (running and waiting).
    * ``max_in_flight`` – unfinished jobs at once on each overflow server (Comfy Cloud runs jobs in
      parallel up to the subscription's limit; set it to that). A full overflow sends jobs back to
      the shortest local queue.
    * ``when_no_local`` – also overflow when no local server able to run the graph is up. With
      ``False`` such jobs wait for a local server (``wait_for_server``) and then fail.
    """

    when_queued_over: int = 4
    max_in_flight: int = 8
    when_no_local: bool = True

    def __post_init__(self) -> None:
        for name, least in (("when_queued_over", 0), ("max_in_flight", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ComfyError(f"OverflowPolicy({name}={value!r}): give a whole number >= {least}")
        if not isinstance(self.when_no_local, bool):
            raise ComfyError(f"OverflowPolicy(when_no_local={self.when_no_local!r}): give True or False")

    def choose(self, local_queues: Sequence[int], overflow_in_flight: Sequence[int]) -> Placement | None:
        """Pick a server from the unfinished-job counts of the up servers able to run the graph.

        Ties go to the first in each list. ``None``: nothing can take the job now (no local server,
        and the overflow is full, absent or not allowed); the pool waits for a change.
        """
        local = min(range(len(local_queues)), key=local_queues.__getitem__, default=None)
        if local is not None and local_queues[local] <= self.when_queued_over:
            return Placement(overflow=False, index=local)
        if local is None and not self.when_no_local:
            return None
        free = [i for i, n in enumerate(overflow_in_flight) if n < self.max_in_flight]
        if free:
            return Placement(overflow=True, index=min(free, key=overflow_in_flight.__getitem__))
        return None if local is None else Placement(overflow=False, index=local)
