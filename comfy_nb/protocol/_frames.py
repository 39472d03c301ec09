"""Binary WebSocket frames: a 4-byte big-endian event type, then a per-event layout."""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from enum import IntEnum

from ..errors import ProtocolError

__all__ = [
    "BinaryEventType",
    "BinaryFrame",
    "PreviewImage",
    "ProgressText",
    "UnknownFrame",
    "decode_binary_frame",
    "encode_preview_image",
    "encode_preview_with_metadata",
    "encode_progress_text",
]

_U32 = struct.Struct(">I")
_TWO_U32 = struct.Struct(">II")


class BinaryEventType(IntEnum):
    """The event numbers ComfyUI puts in the first four bytes of a binary frame."""

    PREVIEW_IMAGE = 1
    UNENCODED_PREVIEW_IMAGE = 2
    TEXT = 3
    PREVIEW_IMAGE_WITH_METADATA = 4


_FORMAT_MIME = {1: "image/jpeg", 2: "image/png"}
_MIME_FORMAT = {v: k for k, v in _FORMAT_MIME.items()}


@dataclass(frozen=True, slots=True)
class PreviewImage:
    """An image from event 1 (no ids) or event 4 (with node and prompt ids)."""

    image: bytes
    mime: str
    prompt_id: str | None = None
    node_id: str | None = None
    display_node_id: str | None = None

    def __repr__(self) -> str:
        return (
            f"PreviewImage(mime={self.mime!r}, bytes={len(self.image)}, "
            f"prompt_id={self.prompt_id!r}, node_id={self.node_id!r})"
        )


@dataclass(frozen=True, slots=True)
class ProgressText:
    """Event 3: a line of text a node reports while it runs."""

    node_id: str
    text: str


@dataclass(frozen=True, slots=True)
class UnknownFrame:
    """A binary frame with an event type this client does not know; kept, not fatal."""

    event_type: int
    payload: bytes

    def __repr__(self) -> str:
        return f"UnknownFrame(event_type={self.event_type}, bytes={len(self.payload)})"


BinaryFrame = PreviewImage | ProgressText | UnknownFrame


def decode_binary_frame(frame: bytes) -> BinaryFrame:
    """Decode one binary frame; a truncated or malformed frame raises ``ProtocolError``."""
    if len(frame) < 4:
        raise ProtocolError(f"binary frame of {len(frame)} bytes is shorter than its 4-byte event type")
    (event,) = _U32.unpack_from(frame, 0)
    if event == BinaryEventType.PREVIEW_IMAGE:
        if len(frame) < 8:
            raise ProtocolError("preview frame (event 1) is missing its 4-byte image format")
        (fmt,) = _U32.unpack_from(frame, 4)
        mime = _FORMAT_MIME.get(fmt)
        if mime is None:
            raise ProtocolError(f"preview frame (event 1) has unknown image format {fmt} (1=JPEG, 2=PNG)")
        return PreviewImage(image=bytes(frame[8:]), mime=mime)
    if event == BinaryEventType.TEXT:
        if len(frame) < 8:
            raise ProtocolError("text frame (event 3) is missing its node id length")
        (n,) = _U32.unpack_from(frame, 4)
        if 8 + n > len(frame):
            raise ProtocolError(f"text frame (event 3) says its node id has {n} bytes, but the frame is shorter")
        try:
            node_id = bytes(frame[8 : 8 + n]).decode("utf-8")
            text = bytes(frame[8 + n :]).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError(f"text frame (event 3) is not UTF-8: {exc}") from None
        return ProgressText(node_id=node_id, text=text)
    if event == BinaryEventType.PREVIEW_IMAGE_WITH_METADATA:
        if len(frame) < 8:
            raise ProtocolError("preview frame (event 4) is missing its metadata length")
        (n,) = _U32.unpack_from(frame, 4)
        if 8 + n > len(frame):
            raise ProtocolError(f"preview frame (event 4) says its metadata has {n} bytes, but the frame is shorter")
        try:
            meta = json.loads(bytes(frame[8 : 8 + n]))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ProtocolError(f"preview frame (event 4) metadata is not JSON: {exc}") from None
        if not isinstance(meta, dict):
            raise ProtocolError("preview frame (event 4) metadata is not a JSON object")
        return PreviewImage(
            image=bytes(frame[8 + n :]),
            mime=str(meta.get("image_type") or "image/jpeg"),
            prompt_id=_opt_str(meta.get("prompt_id")),
            node_id=_opt_str(meta.get("node_id")),
            display_node_id=_opt_str(meta.get("display_node_id")),
        )
    return UnknownFrame(event_type=event, payload=bytes(frame[4:]))


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)


def encode_preview_image(image: bytes, mime: str = "image/jpeg") -> bytes:
    """Event 1, as a server sends it to a client that did not negotiate preview metadata."""
    return _TWO_U32.pack(BinaryEventType.PREVIEW_IMAGE, _MIME_FORMAT[mime]) + image


def encode_preview_with_metadata(
    image: bytes,
    *,
    mime: str,
    prompt_id: str,
    node_id: str,
    display_node_id: str | None = None,
    parent_node_id: str | None = None,
    real_node_id: str | None = None,
) -> bytes:
    """Event 4, with the metadata keys in the order a real server writes them."""
    meta = {
        "node_id": node_id,
        "prompt_id": prompt_id,
        "display_node_id": display_node_id if display_node_id is not None else node_id,
        "parent_node_id": parent_node_id,
        "real_node_id": real_node_id if real_node_id is not None else node_id,
        "image_type": mime,
    }
    raw = json.dumps(meta).encode("utf-8")
    return _TWO_U32.pack(BinaryEventType.PREVIEW_IMAGE_WITH_METADATA, len(raw)) + raw + image


def encode_progress_text(node_id: str, text: str) -> bytes:
    """Event 3: node id length, node id, text."""
    nid = node_id.encode("utf-8")
    return _TWO_U32.pack(BinaryEventType.TEXT, len(nid)) + nid + text.encode("utf-8")
