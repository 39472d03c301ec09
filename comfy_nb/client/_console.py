"""A text progress line for consoles (scripts, terminals, CI): what a JobView is in a notebook.

``job.result()`` / ``job.wait()`` and sweeps draw one tqdm-style line on stderr while they wait::

    comfy_nb a red fox  42%|████████▍           | KSampler 420/1000 [00:12<00:17]

By default only when stderr is a terminal and the code does not run in a notebook kernel (where the
widgets show progress); ``progress=True`` forces it (a stream that is not a terminal then gets a plain
line every few seconds instead of a redrawn one), ``progress=False`` silences it. No dependency.
"""

from __future__ import annotations

import math
import shutil
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

__all__ = ["ConsoleLine", "follow_job", "follow_sweep", "wants_progress"]

_TTY_INTERVAL = 0.1
_LOG_INTERVAL = 5.0
_BAR_WIDTH = 20
_BLOCKS = " ▏▎▍▌▋▊▉█"


def _in_notebook() -> bool:
    """True inside a Jupyter kernel (checked without importing IPython when nothing else did)."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    shell = ipython.get_ipython()
    return shell is not None and hasattr(shell, "kernel")


def wants_progress(progress: bool | None, stream: TextIO | None = None) -> bool:
    """``progress`` when given, else: a terminal on stderr and no notebook."""
    if progress is not None:
        return bool(progress)
    stream = stream if stream is not None else sys.stderr
    isatty = getattr(stream, "isatty", None)
    return bool(isatty is not None and isatty()) and not _in_notebook()


def _clock(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "?"
    s = round(seconds)
    h, rest = divmod(s, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60:02d}:{rest % 60:02d}"


def _bar(fraction: float, width: int = _BAR_WIDTH) -> str:
    cells = max(0.0, min(1.0, fraction)) * width
    full = int(cells)
    part = _BLOCKS[int((cells - full) * (len(_BLOCKS) - 1))] if full < width else ""
    return ("█" * full + part).ljust(width)


class ConsoleLine:
    """One redrawn progress line (``\\r``) on a terminal, or a plain line every few seconds elsewhere."""

    def __init__(self, label: str, stream: TextIO | None = None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream if stream is not None else sys.stderr
        isatty = getattr(self.stream, "isatty", None)
        self._tty = bool(isatty is not None and isatty())
        self._interval = _TTY_INTERVAL if self._tty else _LOG_INTERVAL
        self._clock = clock
        self._label = label
        self._last_draw: float | None = None
        self._last_text = ""
        self._width = 0
        self.closed = False

    def render(self, fraction: float, detail: str, elapsed: float | None, eta: float | None) -> str:
        label = self._label if len(self._label) <= 24 else self._label[:23] + "…"
        pct = f"{int(max(0.0, min(1.0, fraction)) * 100):3d}%"
        times = f"[{_clock(elapsed)}<{_clock(eta)}]" if eta is not None else f"[{_clock(elapsed)}]"
        line = " ".join(part for part in (f"comfy_nb {label} {pct}|{_bar(fraction)}|", detail, times) if part)
        columns = shutil.get_terminal_size((100, 20)).columns if self._tty else 200
        return line[: max(20, columns - 1)]

    def update(self, fraction: float, detail: str, elapsed: float | None, eta: float | None, *,
               final: bool = False) -> None:
        if self.closed:
            return
        now = self._clock()
        if not final and self._last_draw is not None and now - self._last_draw < self._interval:
            return
        text = self.render(fraction, detail, elapsed, eta)
        if text == self._last_text and not final:
            return
        self._last_draw, self._last_text = now, text
        if self._tty:
            pad = " " * max(0, self._width - len(text))
            self.stream.write("\r" + text + pad)
            self._width = len(text)
        else:
            self.stream.write(text + "\n")
        if final:
            if self._tty:
                self.stream.write("\n")
            self.closed = True
        self.stream.flush()


def _job_line(line: ConsoleLine, status: Any) -> None:
    node = status.current_node
    if status.terminal:
        detail = status.state.value
    elif status.state.value == "queued":
        ahead = status.queue_position
        detail = "queued" if ahead is None else f"queued, {ahead} ahead"
    else:
        name = node.label if node is not None else "running"
        detail = f"{name} {status.step}/{status.steps}" if status.steps else name
    line.update(status.progress / 100.0, detail, status.elapsed, status.eta, final=status.terminal)


def follow_job(job: Any, progress: bool | None, stream: TextIO | None = None) -> Callable[[], None]:
    """Draw ``job``'s progress until the returned function is called (a no-op when not wanted)."""
    if not wants_progress(progress, stream):
        return lambda: None
    meta = getattr(job, "meta", None) or {}
    line = ConsoleLine(str(meta.get("prompt") or job.prompt_id), stream)
    _job_line(line, job.status)
    unsubscribe = job.subscribe(lambda st: _job_line(line, st))

    def stop() -> None:
        unsubscribe()
        status = job.status
        if status.terminal:
            _job_line(line, status)
        else:  # a timeout: end the line, the job goes on
            line.update(status.progress / 100.0, "stopped waiting", status.elapsed, None, final=True)

    return stop


def follow_sweep(run: Any, progress: bool | None, stream: TextIO | None = None) -> Callable[[], None]:
    """Draw a sweep's cells done / total until the returned function is called."""
    if not wants_progress(progress, stream):
        return lambda: None
    line = ConsoleLine("sweep", stream)
    started = time.monotonic()

    def draw(_cell: Any = None, *, final: bool = False) -> None:
        counts = run.counts()
        total = max(1, len(run))
        finished = sum(n for state, n in counts.items() if state in ("completed", "failed", "cancelled"))
        fraction = finished / total
        elapsed = time.monotonic() - started
        eta = elapsed * (1 - fraction) / fraction if 0 < fraction < 1 else None
        parts = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()) if n)
        line.update(fraction, f"{finished}/{total} cells ({parts})", elapsed, eta, final=final)

    draw()
    unsubscribe = run.on_update(draw)

    def stop() -> None:
        unsubscribe()
        draw(final=True)

    return stop
