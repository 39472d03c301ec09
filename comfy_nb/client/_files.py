"""Files on the server: uploads, downloads (bounded by the transport's ``max_download_size``),
images and saving outputs under a directory without ever writing outside it."""

from __future__ import annotations

import asyncio
import io
import json
import os
import pathlib
from collections.abc import Callable
from typing import Any

from .._files import write_atomic
from ..errors import ComfyError, ServerError
from ._models import Output, ServerCapabilities
from ._transport import Transport, json_body

__all__ = ["Files", "check_output_name", "safe_target", "write_output"]


class Files:
    """The file endpoints (``/upload/image``, ``/upload/mask``, ``/view``) of one server."""

    def __init__(self, transport: Transport, capabilities: Callable[[], ServerCapabilities | None]) -> None:
        self._transport = transport
        self._capabilities = capabilities
        """The server's capabilities if already read (the upload limit is checked only then)."""
        self.flat = False
        """True for a flat, content-addressed input namespace (Comfy Cloud): subfolders do not exist there."""

    async def upload_image(
        self,
        image: Any,
        *,
        name: str | None = None,
        subfolder: str = "",
        overwrite: bool = False,
        type: str = "input",
        mask_for: Output | str | None = None,
    ) -> str:
        """Upload a path, bytes, PIL image or NumPy array; returns the name ``LoadImage`` takes.

        The server may rename the file (``name (1).png``) when another file has that name: always use
        the returned value. With ``mask_for`` (an uploaded image), the upload's alpha becomes its mask.
        """
        data, filename, mime = _image_bytes(image, name)
        caps = self._capabilities()
        if caps is not None and caps.max_upload_size and len(data) > caps.max_upload_size:
            raise ComfyError(
                f"{filename} is {len(data)} bytes, over the server's upload limit of {caps.max_upload_size} bytes "
                "(ComfyUI's --max-upload-size, in MB): send a smaller file or raise the limit"
            )
        if self.flat:  # the server ignores the subfolder and names the file by its content
            subfolder = ""
        form: dict[str, str] = {"type": type, "subfolder": subfolder, "overwrite": "true" if overwrite else "false"}
        path = "/upload/image"
        if mask_for is not None:
            ref = mask_for.view_params() if isinstance(mask_for, Output) else _ref_from_name(mask_for)
            form["original_ref"] = json.dumps(ref)
            path = "/upload/mask"
        response = await self._transport.request(
            "POST", path, files={"image": (filename, data, mime)}, data=form, ok=(200,), retries=1
        )
        body = json_body(response, "POST", f"{self._transport.base_url}{path}")
        if not isinstance(body, dict) or "name" not in body:
            raise ServerError(f"POST {self._transport.base_url}{path} did not return the stored name")
        sub = "" if self.flat else str(body.get("subfolder") or "")
        return f"{sub}/{body['name']}" if sub else str(body["name"])

    async def download(self, output: Output, *, preview: str | None = None) -> bytes:
        """The bytes of an output file (``preview="webp;60"`` asks the server for a small re-encode)."""
        if not output.is_file:
            return (output.text or "").encode("utf-8")
        params = output.view_params()
        if preview:
            params["preview"] = preview
        response = await self._transport.download("/view", params=params)
        return response.content

    async def load_image(self, output: Output) -> Any:
        """An output as a ``PIL.Image`` (fully loaded)."""
        from PIL import Image, UnidentifiedImageError

        data = await self.download(output)
        try:
            image = Image.open(io.BytesIO(data))
            image.load()
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
            raise ServerError(
                f"{output.path!r} from {self._transport.base_url} is not an image PIL can read ({type(exc).__name__}: {exc}); "
                "use client.download(output) for its bytes"
            ) from None
        return image

    async def save_output(self, output: Output, directory: str | os.PathLike[str]) -> pathlib.Path:
        """Save an output under ``directory`` (its subfolder kept); never writes outside it."""
        check_output_name(directory, output)  # a name that would leave it is refused before the download
        data = await self.download(output)
        # One trip off the event loop for all the disk work (resolving reads the disk; a large file
        # must not stall every job's events).
        return await asyncio.to_thread(write_output, directory, output, data)


def check_output_name(directory: str | os.PathLike[str], output: Output) -> None:
    """``ComfyError`` when the output's name would leave ``directory`` (from the name alone, no disk access)."""
    _relative_parts(pathlib.Path(directory), output)


def write_output(directory: str | os.PathLike[str], output: Output, data: bytes) -> pathlib.Path:
    """Write an output's bytes under ``directory`` (blocking: call it off the event loop).

    The final check is on the resolved path, and the write is atomic: a failed or interrupted save
    leaves the old file or none, never a torn one.
    """
    return write_atomic(safe_target(pathlib.Path(directory).resolve(), output), data, private=False)


def _ref_from_name(name: str) -> dict[str, str]:
    sub, _, base = name.rpartition("/")
    return {"filename": base, "subfolder": sub, "type": "input"}


def _relative_parts(root: pathlib.Path, output: Output) -> list[str]:
    """The output's path under ``root`` as parts; ``ComfyError`` when its name would leave ``root``
    (read from the name alone, no disk access)."""
    parts = [p for p in output.subfolder.replace("\\", "/").split("/") if p not in ("", ".")]
    name = os.path.basename(output.filename.replace("\\", "/"))
    if not name or name in (".", "..") or ".." in parts:
        raise ComfyError(f"refusing to save {output.path!r}: its name would leave {root}")
    return [*parts, name]


def safe_target(root: pathlib.Path, output: Output) -> pathlib.Path:
    """Where ``output`` goes under the resolved ``root``, checked again after resolving (reads the disk)."""
    target = root.joinpath(*_relative_parts(root, output)).resolve()
    if root != target and root not in target.parents:
        raise ComfyError(f"refusing to save {output.path!r}: its name would leave {root}")
    return target


def _image_bytes(image: Any, name: str | None) -> tuple[bytes, str, str]:
    """Bytes, a file name and a MIME type for anything that can be uploaded."""
    if isinstance(image, (str, os.PathLike)):
        path = pathlib.Path(image)
        if not path.is_file():
            raise ComfyError(f"cannot upload {str(path)!r}: no such file")
        return path.read_bytes(), name or path.name, _mime_for(path.name)
    if isinstance(image, (bytes, bytearray, memoryview)):
        return bytes(image), name or "upload.png", _mime_for(name or "upload.png")
    if type(image).__module__.startswith("numpy"):
        import numpy as np
        from PIL import Image

        array = np.asarray(image)
        if array.dtype != np.uint8:
            scale = 255.0 if array.size and float(array.max()) <= 1.0 else 1.0
            array = np.clip(array * scale, 0, 255).astype(np.uint8)
        image = Image.fromarray(array)
    if hasattr(image, "save") and hasattr(image, "mode"):
        buf = io.BytesIO()
        image.save(buf, format="PNG")
        return buf.getvalue(), name or "upload.png", "image/png"
    raise ComfyError(f"cannot upload a {type(image).__name__}: give a path, bytes, a PIL image or a NumPy array")


def _mime_for(filename: str) -> str:
    import mimetypes

    return mimetypes.guess_type(filename)[0] or "application/octet-stream"
