"""Which nodes of a prompt run and in what order, as ComfyUI's ``ExecutionList`` decides it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ..protocol import is_link

__all__ = ["ExecutionList"]


class ExecutionList:
    """The requested outputs plus their uncached ancestors; a node is ready once what it links to ran.

    ``next()`` picks among the ready nodes as the server does (outputs first, then what feeds them
    soonest); ``done(node)`` unblocks its consumers.
    """

    def __init__(
        self,
        prompt: dict[str, Any],
        outputs: Iterable[Any],
        cached: Callable[[str], bool],
        is_output: Callable[[str], bool],
    ) -> None:
        self._prompt = prompt
        self._cached = cached
        self._is_output = is_output
        self._pending: dict[str, None] = {}
        self._blockers: dict[str, set[str]] = {}
        self._blocking: dict[str, set[str]] = {}
        for out in outputs:
            if out in prompt:
                self._add(str(out))
        self.order = list(self._pending)
        """Every node that will run, in the order they were found (``current_outputs`` of an error)."""

    def _add(self, nid: str) -> None:
        if nid in self._pending:
            return
        self._pending[nid] = None
        self._blockers.setdefault(nid, set())
        for value in (self._prompt[nid].get("inputs") or {}).values():
            if is_link(value):
                src = str(value[0])
                if src not in self._prompt or self._cached(src):
                    continue
                self._blockers[nid].add(src)
                self._blocking.setdefault(src, set()).add(nid)
                self._add(src)

    def __bool__(self) -> bool:
        return bool(self._pending)

    def next(self) -> str:
        """The node to run now."""
        ready = [n for n in self._pending if not self._blockers[n]]
        return self._pick(ready)

    def done(self, nid: str) -> None:
        del self._pending[nid]
        for child in self._blocking.get(nid, ()):
            self._blockers[child].discard(nid)

    def _pick(self, ready: list[str]) -> str:
        """The server's UX-friendly choice among ready nodes: outputs first, then what feeds them soonest."""
        prompt, blocking = self._prompt, self._blocking

        def out(nid: str) -> bool:
            return self._is_output(str(prompt[nid].get("class_type")))

        for nid in ready:
            if out(nid):
                return nid
        for nid in ready:
            if any(out(b) for b in blocking.get(nid, ())):
                return nid
        for nid in ready:
            if any(out(b2) for b in blocking.get(nid, ()) for b2 in blocking.get(b, ())):
                return nid
        return ready[0]
