"""Files on a Comfy API v2 endpoint: inputs uploaded as assets by content hash, outputs downloaded
from the links they carry, and the ``asset:`` strings that stand for an uploaded input in a graph."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from ..errors import ComfyError, NotAvailable, ServerError
from ._files import Files, _image_bytes
from ._models import Output
from ._transport import Transport
from ._v2 import V2Session

__all__ = ["KIND", "V2Files", "asset_token", "with_asset_refs"]

KIND = "Comfy API v2"
_TOKEN = re.compile(r"asset:([A-Za-z0-9._=-]+)(?:/(.*))?")


def asset_token(asset_id: str, file_path: str | None) -> str:
    """What ``upload_image`` returns on v2: a string (so tasks and widgets take it as a file name) that
    ``submit`` sends as the contract's ``core/ASSET`` reference."""
    return f"asset:{asset_id}/{file_path}" if file_path else f"asset:{asset_id}"


def with_asset_refs(graph: dict[str, Any]) -> dict[str, Any]:
    """The graph with every input that is an ``asset_token`` replaced by its ``core/ASSET`` reference."""
    out: dict[str, Any] = {}
    for nid, node in graph.items():
        inputs = node.get("inputs") if isinstance(node, dict) else None
        if not isinstance(inputs, dict):
            out[nid] = node
            continue
        fixed = {}
        for name, value in inputs.items():
            match = _TOKEN.fullmatch(value) if isinstance(value, str) else None
            if match is not None:
                info = {"id": match.group(1), **({"file_path": match.group(2)} if match.group(2) else {})}
                value = {"__type": "core/ASSET", "info": info}
            fixed[name] = value
        out[nid] = {**node, "inputs": fixed}
    return out



class V2Files(Files):
    """Uploads as assets by content hash and downloads that follow the links outputs carry."""

    def __init__(self, transport: Transport, session: Callable[[], V2Session]) -> None:
        super().__init__(transport, lambda: None)
        self._session = session

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
        """Upload by content hash (``from-hash`` first, the bytes only when the endpoint lacks them);
        returns the ``asset:<id>/<name>`` string a ``LoadImage`` input takes (``overwrite`` is moot:
        assets are content-addressed)."""
        if mask_for is not None:
            raise NotAvailable("upload_image(mask_for=...)", KIND, "upload the mask with its alpha as its own image")
        if type != "input":
            raise NotAvailable(f"upload_image(type={type!r})", KIND, "only inputs can be uploaded")
        data, filename, mime = _image_bytes(image, name)
        path = f"{subfolder.strip('/')}/{filename}" if subfolder.strip("/") else filename
        asset = await self._session().upload(data, path, content_type=mime)
        return asset_token(asset.id, asset.file_path or path)

    async def download(self, output: Output, *, preview: str | None = None) -> bytes:
        """The output's bytes from the link it carries (``preview`` is not offered by v2: the full file);
        an expired link is renewed from the asset once."""
        if not output.is_file:
            return (output.text or "").encode("utf-8")
        session = self._session()
        if not output.url and not output.asset_id:
            raise ComfyError(f"{output.path!r} carries no link or asset id to download it from a {KIND} endpoint")
        limit = self._transport.max_download_size
        try:
            return await session.download(output.url or (await session.asset(output.asset_id)).url, max_bytes=limit)
        except ServerError as exc:
            if not output.asset_id or exc.status_code not in (403, 404, 410):
                raise
        return await session.download(await session.asset(output.asset_id), max_bytes=limit)
