"""The mock's file routes: ``/view`` (with ComfyUI's preview and channel options) and the image and
mask uploads, confined to the output, input and temp folders as the real server confines them."""

from __future__ import annotations

import hashlib
import io
import json
import mimetypes
import os
from collections.abc import Callable
from typing import Any

from aiohttp import web
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from ._catalog import Catalog
from ._http import json_response, server_error

__all__ = ["FileRoutes"]


class FileRoutes:
    """Handlers that read and write the server's folders (``{"output": ..., "input": ..., "temp": ...}``)."""

    def __init__(self, folders: dict[str, str], catalog: Catalog) -> None:
        self.folders = folders
        self.catalog = catalog

    def folder(self, kind: str | None) -> str | None:
        return self.folders.get(kind or "")

    async def view(self, request: web.Request) -> web.StreamResponse:
        q = request.rel_url.query
        if "filename" not in q:
            return web.Response(status=404)
        filename = q["filename"]
        output_dir: str | None = None
        for kind in ("input", "output", "temp"):
            suffix = f" [{kind}]"
            if filename.endswith(suffix):
                filename = filename[: -len(suffix)]
                output_dir = self.folder(kind)
                break
        if not filename or filename[0] == "/" or ".." in filename:
            return web.Response(status=400)
        if output_dir is None:
            output_dir = self.folder(q.get("type", "output"))
            if output_dir is None:
                return web.Response(status=400)
        if "subfolder" in q:
            full = os.path.abspath(os.path.join(output_dir, q["subfolder"]))
            if os.path.commonpath((os.path.abspath(output_dir), full)) != os.path.abspath(output_dir):
                return web.Response(status=403)
            output_dir = full
        filename = os.path.basename(filename)
        path = os.path.join(output_dir, filename)
        if not os.path.isfile(path):
            return web.Response(status=404)
        disposition = {"Content-Disposition": f'filename="{filename}"'}
        preview = q.get("preview")
        channel = q.get("channel", "rgba")
        if preview:
            fmt, _, quality = preview.partition(";")
            fmt = fmt.lower() if fmt.lower() in ("webp", "jpeg") else "webp"
            try:
                q_int = int(quality) if quality else 90
            except ValueError:
                q_int = 90
            with Image.open(path) as img:
                if fmt == "jpeg" or "A" not in img.getbands():
                    img2 = img.convert("RGB")
                else:
                    img2 = img.convert("RGBA")
                buf = io.BytesIO()
                img2.save(buf, format=fmt.upper(), quality=q_int)
            return web.Response(body=buf.getvalue(), content_type=f"image/{fmt}", headers=disposition)
        if channel in ("rgb", "a"):
            with Image.open(path) as img:
                if channel == "rgb":
                    out = img.convert("RGB")
                else:
                    alpha = img.getchannel("A") if "A" in img.getbands() else Image.new("L", img.size, 255)
                    out = Image.new("RGBA", img.size, (0, 0, 0, 0))
                    out.putalpha(alpha)
                buf = io.BytesIO()
                out.save(buf, format="PNG")
            return web.Response(body=buf.getvalue(), content_type="image/png", headers=disposition)
        ctype = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        if ctype in ("text/html", "text/javascript", "application/javascript", "text/css", "application/xhtml+xml"):
            ctype = "application/octet-stream"
        return web.FileResponse(path, headers={**disposition, "Content-Type": ctype})

    async def _image_upload(
        self, request: web.Request, save: Callable[[str, bytes], None] | None = None
    ) -> web.StreamResponse:
        post = await request.post()
        image = post.get("image")
        overwrite = post.get("overwrite")
        kind = post.get("type") or "input"
        upload_dir = self.folder(str(kind))
        if upload_dir is None:
            return server_error()  # the real server raises here
        if image is None:
            return web.Response(status=400)
        if not isinstance(image, web.FileField):
            return server_error()  # a file part without a filename arrives as text: the real server fails
        filename = image.filename
        if not filename:
            return web.Response(status=400)
        subfolder = str(post.get("subfolder", "") or "")
        folder = os.path.join(upload_dir, os.path.normpath(subfolder))
        path = os.path.abspath(os.path.join(folder, filename))
        if os.path.commonpath((upload_dir, path)) != upload_dir:
            return web.Response(status=400)
        data = image.file.read()
        os.makedirs(folder, exist_ok=True)
        stem, ext = os.path.splitext(filename)
        duplicate = False
        if not (overwrite is not None and str(overwrite) in ("true", "1")):
            i = 1
            digest = hashlib.sha256(data).digest()
            while os.path.exists(path):
                with open(path, "rb") as f:
                    if hashlib.sha256(f.read()).digest() == digest:
                        duplicate = True
                        break
                filename = f"{stem} ({i}){ext}"
                path = os.path.join(folder, filename)
                i += 1
        if not duplicate:
            if save is not None:
                save(path, data)
            else:
                with open(path, "wb") as f:
                    f.write(data)
        self.catalog.invalidate()
        return json_response({"name": filename, "subfolder": subfolder, "type": kind})

    async def upload_image(self, request: web.Request) -> web.StreamResponse:
        return await self._image_upload(request)

    async def upload_mask(self, request: web.Request) -> web.StreamResponse:
        # original_ref is read after the body is parsed, inside the save callback
        state: dict[str, Any] = {}

        def save(path: str, data: bytes) -> None:
            ref = state.get("ref") or {}
            base = self.folder(str(ref.get("type") or "output"))
            if base is None or not ref.get("filename"):
                return
            original = os.path.abspath(os.path.join(base, str(ref.get("subfolder") or ""), str(ref["filename"])))
            if os.path.commonpath((base, original)) != base or not os.path.isfile(original):
                return
            with Image.open(original) as orig:
                info = PngInfo()
                for key, value in (getattr(orig, "text", None) or {}).items():
                    info.add_text(key, value)
                orig_rgba = orig.convert("RGBA")
            with Image.open(io.BytesIO(data)) as mask:
                alpha = mask.convert("RGBA").getchannel("A").resize(orig_rgba.size, Image.Resampling.LANCZOS)
            orig_rgba.putalpha(alpha)
            orig_rgba.save(path, format="PNG", pnginfo=info, compress_level=4)

        post = await request.post()
        try:
            state["ref"] = json.loads(str(post.get("original_ref") or "{}"))
        except ValueError:
            return server_error()
        return await self._image_upload(request, save)
