"""Small-image helpers: downscale previews and outputs before they go to the browser."""

from __future__ import annotations

import base64
import io
import posixpath
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from ..client import ClientLike, Output

__all__ = ["LRU", "SAFE_MIMES", "data_url", "downscale", "mime_for"]

#: Mime types the front end may put in a ``data:`` URL / Blob (anything else is dropped).
SAFE_MIMES = frozenset(
    {"image/jpeg", "image/png", "image/webp", "image/gif", "video/mp4", "video/webm", "audio/wav",
     "audio/mpeg", "audio/flac", "audio/ogg"}
)

_EXT_MIME = {
    ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp",
    ".gif": "image/gif", ".mp4": "video/mp4", ".webm": "video/webm", ".wav": "audio/wav",
    ".mp3": "audio/mpeg", ".flac": "audio/flac", ".ogg": "audio/ogg",
}


def mime_for(filename: str) -> str:
    """The mime type for a file name, or ``application/octet-stream``."""
    return _EXT_MIME.get(posixpath.splitext(filename)[1].lower(), "application/octet-stream")


def downscale(data: bytes, max_side: int = 256, *, quality: int = 80) -> tuple[bytes, str]:
    """Decode an image (first frame), fit it in ``max_side`` px, encode as JPEG (PNG if transparent).

    Returns ``(bytes, mime)``. Raises ``ValueError`` when the bytes are not an image Pillow reads.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            im.seek(0)
            im.draft("RGB", (max_side, max_side))  # cheap JPEG decode at reduced size
            img = im.convert("RGBA") if im.mode in ("RGBA", "LA", "P") else im.convert("RGB")
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"not an image: {exc}") from None
    img.thumbnail((max_side, max_side))
    buf = io.BytesIO()
    if img.mode == "RGBA" and img.getextrema()[3][0] < 255:
        img.save(buf, "PNG", optimize=False)
        return buf.getvalue(), "image/png"
    img.convert("RGB").save(buf, "JPEG", quality=quality)
    return buf.getvalue(), "image/jpeg"


def data_url(data: bytes, mime: str) -> str:
    """A ``data:`` URL for whitelisted mime types (empty string otherwise)."""
    if mime not in SAFE_MIMES:
        return ""
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


K = TypeVar("K")
V = TypeVar("V")


class LRU(Generic[K, V]):
    """A tiny bounded mapping that forgets the least recently used entry."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._data: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K, default: Any = None) -> Any:
        try:
            self._data.move_to_end(key)
        except KeyError:
            return default
        return self._data[key]

    def __setitem__(self, key: K, value: V) -> None:
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self.maxsize:
            self._data.popitem(last=False)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __len__(self) -> int:
        return len(self._data)


def fetch_thumbnail(client: ClientLike, output: Output, max_side: int = 192) -> Any:
    """Future of a thumbnail ``data:`` URL for ``output`` ("" when it is not an image).

    The download asks the server for a compressed preview (``/view?preview=webp;75``) so large PNGs
    travel small, then Pillow fits it in ``max_side`` px on the widgets' thread pool.
    """
    from . import _bg

    kind = getattr(output, "kind", "image")
    preview = "webp;75" if kind == "image" else None
    fut = _bg.call(client, "download", output, preview=preview)

    def _make(data: bytes) -> str:
        try:
            small, mime = downscale(data, max_side)
        except ValueError:
            return ""
        return data_url(small, mime)

    return _bg.chain(fut, _make)
