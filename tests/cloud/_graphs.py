"""The graphs the cloud and v2 tests submit: a tiny image, and a slow one with real progress events."""

from __future__ import annotations

from typing import Any


def tiny(color: int, prefix: str = "cloud-tests/img") -> dict[str, Any]:
    """A 16x16 image of one colour, saved (no model, done at once)."""
    return {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 16, "height": 16, "batch_size": 1, "color": color}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": prefix}},
    }


def slow(steps: int, seconds: float, preview: bool = True) -> dict[str, Any]:
    """The mock's ``SlowProgressImage``: ``steps`` progress events ``seconds`` apart (previews optional)."""
    return {
        "1": {
            "class_type": "SlowProgressImage",
            "inputs": {"steps": steps, "seconds_per_step": seconds, "width": 32, "height": 32,
                       "send_preview": preview, "send_text": False, "seed": 1},
            "_meta": {"title": "Slow"},
        },
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "cloud-tests/slow"}},
    }
