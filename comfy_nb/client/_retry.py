"""One retry policy, as small pure functions (unit-tested without sleeping).

Reads are retried on connection errors, 5xx and 429; submits only after checking the prompt id is
not already known to the server (see ``AsyncComfyClient.submit``).
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable, Mapping

__all__ = ["BACKOFF_BASE", "BACKOFF_CAP", "MAX_RETRY_AFTER", "is_retryable_status", "retry_delay"]

BACKOFF_BASE = 0.25
BACKOFF_CAP = 8.0
MAX_RETRY_AFTER = 60.0


def is_retryable_status(status: int) -> bool:
    return status == 429 or status == 408 or 500 <= status <= 599


def _retry_after(headers: Mapping[str, str] | None, now: float) -> float | None:
    if not headers:
        return None
    value = headers.get("retry-after-ms")
    if value is not None:
        try:
            return float(value) / 1000.0
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return None if parsed is None else parsed.timestamp() - now


def retry_delay(
    attempt: int,
    headers: Mapping[str, str] | None = None,
    *,
    base: float = BACKOFF_BASE,
    cap: float = BACKOFF_CAP,
    rand: Callable[[], float] = random.random,
    now: Callable[[], float] = time.time,
) -> float:
    """Seconds to wait before retry number ``attempt`` (0-based).

    A server's ``Retry-After`` (seconds, HTTP date, or ``retry-after-ms``) wins when it is between 0 and
    ``MAX_RETRY_AFTER``; otherwise exponential backoff ``base * 2**attempt`` capped at ``cap``, times a
    jitter factor in (0.75, 1] so that many clients do not retry in step.
    """
    try:
        after = _retry_after(headers, now())
    except (TypeError, ValueError, OverflowError):
        after = None
    if after is not None and 0 <= after <= MAX_RETRY_AFTER:
        return float(after)
    delay = min(cap, base * float(2**attempt))
    return float(delay * (1 - 0.25 * rand()))
