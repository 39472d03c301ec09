"""``reveal``: the one place a secret's text is taken out of its wrapper, at the point of use only."""

from __future__ import annotations

from typing import Any

__all__ = ["reveal"]


def reveal(value: Any) -> str | None:
    """The plain text of a ``pydantic.SecretStr`` (or of a plain value), ``None`` for ``None``."""
    if value is None:
        return None
    getter = getattr(value, "get_secret_value", None)
    return str(getter()) if callable(getter) else str(value)
