"""Small shared helpers for the widgets."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["PARAM_KEYS", "css", "meta_params", "short", "state_name"]

#: The job parameters a gallery shows, in display order (keys of ``job.meta``).
PARAM_KEYS = ("prompt", "negative_prompt", "seed", "sampler", "scheduler", "steps", "cfg", "model",
              "width", "height")


def state_name(state: Any) -> str:
    """``JobState.RUNNING`` (or ``"running"``) -> ``"running"``."""
    return str(getattr(state, "value", state))


def short(text: str, limit: int = 60) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def meta_params(meta: Mapping[str, Any] | None) -> dict[str, Any]:
    """The displayable parameters of a job, JSON-safe (numbers stay numbers, the rest becomes str)."""
    out: dict[str, Any] = {}
    if not meta:
        return out
    for key in PARAM_KEYS:
        value = meta.get(key)
        if value is None or value == "":
            continue
        out[key] = value if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)
    return out


def stop_following(widget: Any) -> None:
    """End a live widget's subscription and throttle (both optional; safe to call twice)."""
    unsubscribe = getattr(widget, "_unsubscribe", None)
    if unsubscribe is not None:
        unsubscribe()
        widget._unsubscribe = None
    throttle = getattr(widget, "_throttle", None)
    if throttle is not None:
        throttle.close()


def css(name: str) -> str:
    """The shared base stylesheet followed by ``static/<name>`` (one string, as anywidget's ``_css``)."""
    import pathlib

    static = pathlib.Path(__file__).parent / "static"
    return (static / "base.css").read_text(encoding="utf-8") + "\n" + (static / name).read_text(encoding="utf-8")
