"""``write_atomic``: the one way comfy_nb writes a file that must never be seen half-written."""

from __future__ import annotations

import contextlib
import os
import pathlib
import secrets
import tempfile

__all__ = ["write_atomic"]


def write_atomic(path: str | os.PathLike[str], data: str | bytes, *, private: bool = True) -> pathlib.Path:
    """Write ``data`` to a temporary file beside ``path`` and rename it into place.

    Readers see the old file or the new one, never a torn one (a crash, a full disk, Ctrl-C). A
    ``private`` file is created with mode 0600 (``mkstemp``), so a config holding secrets is never
    readable by others; otherwise the mode is 0666 less the umask, as for any new file.
    """
    target = pathlib.Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    if private:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    else:
        tmp = str(target.parent / f".{target.name}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return target
