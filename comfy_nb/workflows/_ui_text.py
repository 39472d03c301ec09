"""Text rules the ComfyUI frontend (1.27.10) applies to widget values when it queues a prompt.

``process_dynamic_prompt`` is ``processDynamicPrompt`` (``src/utils/formatUtil.ts``): C-style comments
stripped, ``{a|b|c}`` replaced by one choice (nested blocks allowed), ``\\{``/``\\}``/``\\|`` kept literal.
``replace_tokens`` is ``applyTextReplacements`` (``src/utils/searchAndReplace.ts``): ``%date:FORMAT%`` and
``%Node.widget%`` in ``filename_prefix`` values. Both are ported rule for rule, quirks included, so a
converted prompt equals the frontend's; the random draw and the clock are passed in so tests can fix them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Protocol

__all__ = [
    "UNDEFINED",
    "RandomSource",
    "TokenTarget",
    "js_string",
    "process_dynamic_prompt",
    "replace_tokens",
]


class _Undefined:
    """JavaScript's ``undefined``: an input holding it keeps its place but is left out of the JSON."""

    def __repr__(self) -> str:
        return "undefined"


UNDEFINED: Any = _Undefined()


class RandomSource(Protocol):
    """What a dynamic-prompt choice draws from: ``random.Random`` fits (``Math.random`` in the frontend)."""

    def random(self) -> float: ...


# JavaScript's `.` stops at these line terminators, Python's only at "\n".
_COMMENTS = re.compile(r"/\*[\s\S]*?\*/|//[^\n\r\u2028\u2029]*")
_ESCAPED = re.compile(r"\\([{}|])")


def process_dynamic_prompt(text: str, rng: RandomSource) -> str:
    """One random pick per ``{...|...}`` block, drawn in reading order (outer block before its nested ones)."""
    text = _COMMENTS.sub("", text)
    pos = 0
    result: list[str] = []

    def escape() -> str:
        nonlocal pos
        # The frontend reads past the end here and appends the string "undefined".
        char = text[pos] if pos < len(text) else "undefined"
        pos += 1
        return "\\" + char

    def choice_block() -> str:
        nonlocal pos
        options: list[str] = []
        choice = ""
        depth = 0
        while pos < len(text):
            char = text[pos]
            pos += 1
            if char == "\\":
                choice += escape()
                continue
            if char == "{":
                depth += 1
            elif char == "}":
                if not depth:
                    break
                depth -= 1
            elif char == "|" and not depth:
                options.append(choice)
                choice = ""
                continue
            choice += char
        options.append(choice)
        picked = options[math.floor(rng.random() * len(options))]
        return process_dynamic_prompt(picked, rng)

    while pos < len(text):
        char = text[pos]
        pos += 1
        if char == "\\":
            result.append(escape())
        elif char == "{":
            result.append(choice_block())
        else:
            result.append(char)
    return _ESCAPED.sub(r"\1", "".join(result))


class TokenTarget(Protocol):
    """A node as ``%Name.widget%`` sees it: its S&R name, its title and its widget values by name."""

    @property
    def search_name(self) -> str | None: ...

    @property
    def title(self) -> str: ...

    def widget_value(self, name: str) -> tuple[bool, Any]: ...


_TOKEN = re.compile(r"%([^%]+)%")
_DATE_PART = re.compile(r"dd?|MM?|hh?|mm?|ss?|yyy?y?")
_UNSAFE = re.compile(r'[/?<>\\:*|"\x00-\x1f\x7f]')


def replace_tokens(value: str, nodes: Callable[[], Sequence[TokenTarget]], now: datetime) -> str:
    """``%date:yyyy-MM-dd%`` from ``now``'s wall-clock fields; ``%Name.widget%`` from the first node whose
    "Node name for S&R" (else title) is ``Name``; a token that matches nothing stays as written."""

    def token(match: re.Match[str]) -> str:
        text = match.group(1)
        split = text.split(".")
        if len(split) != 2:
            return _format_date(split[0][5:], now) if split[0].startswith("date:") else match.group(0)
        name, widget = split
        candidates = nodes()
        found = [n for n in candidates if n.search_name == name] or [n for n in candidates if n.title == name]
        if not found:
            return match.group(0)
        ok, value = found[0].widget_value(widget)
        if not ok:
            return match.group(0)
        return _UNSAFE.sub("_", "" if value is None or value is UNDEFINED else js_string(value))

    return _TOKEN.sub(token, value)


def _format_date(pattern: str, now: datetime) -> str:
    parts = {"d": now.day, "M": now.month, "h": now.hour, "m": now.minute, "s": now.second}

    def part(match: re.Match[str]) -> str:
        text = match.group(0)
        if text == "yy":
            return str(now.year)[2:]
        if text == "yyyy":
            return str(now.year)
        if text[0] in parts:
            return str(parts[text[0]]).rjust(len(text), "0")
        return text

    return _DATE_PART.sub(part, pattern)


def js_string(value: Any) -> str:
    """``String(value)`` as JavaScript writes it, for the JSON values a widget can hold."""
    if value is None:
        return "null"
    if value is UNDEFINED:
        return "undefined"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return js_string(float(value)) if abs(value) >= 10**21 else str(value)
    if isinstance(value, float):
        return _js_number(value)
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return ",".join("" if v is None else js_string(v) for v in value)
    if isinstance(value, dict):
        return "[object Object]"
    return str(value)


def _js_number(value: float) -> str:
    """Number::toString: shortest round-trip digits, exponent form below 1e-6 and from 1e21."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    digits, exponent = _shortest_digits(abs(value))
    n = exponent + 1  # position of the decimal point relative to the digits
    k = len(digits)
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * (-n) + digits
    exp = n - 1
    exp_str = f"e{'+' if exp >= 0 else '-'}{abs(exp)}"
    return sign + (digits if k == 1 else digits[0] + "." + digits[1:]) + exp_str


def _shortest_digits(value: float) -> tuple[str, int]:
    """The shortest digit string that round-trips (``repr``) and the decimal exponent of its first digit."""
    text = repr(value)
    mantissa, _, exp_part = text.partition("e")
    exponent = int(exp_part) if exp_part else 0
    whole, _, frac = mantissa.partition(".")
    digits = (whole + frac).lstrip("0")
    leading_zeros = len(whole + frac) - len((whole + frac).lstrip("0"))
    exponent += len(whole) - 1 - leading_zeros
    digits = digits.rstrip("0") or "0"
    return digits, exponent
