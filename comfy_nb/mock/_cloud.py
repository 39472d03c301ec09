"""The mock's cloud mode: Comfy Cloud's documented differences from a local ComfyUI.

- Every request carries ``X-API-Key`` (else 401); routes live under ``/api`` only (else 404); the
  WebSocket is ``/ws?clientId=...&token=<API key>``.
- ``/api/view`` answers 302 to a short-lived signed URL on a second server (the "storage" host,
  127.0.0.1 on another port) that checks the signature and the expiry and refuses, and counts, any
  request that carries the API key: a client must not send it there.
- Uploads land in a flat, content-addressed namespace: ``<sha256>.<ext>``, subfolder ignored.
- Jobs run in parallel up to a limit (``MockServer(parallel=...)``) and ``/api/jobs`` answers.

The 401 body and the storage URL layout are the mock's own (Comfy Cloud does not document them).
"""

from __future__ import annotations

import hashlib
import hmac
import mimetypes
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlencode

from aiohttp import web

__all__ = ["CloudFront", "CloudStats"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_FOLDERS = ("output", "input", "temp")


@dataclass
class CloudStats:
    """Counters of the cloud mode (read them from any thread; they only grow)."""

    unauthorized: int = 0
    redirects: int = 0
    storage_served: int = 0
    storage_bad_signature: int = 0
    storage_expired: int = 0
    storage_key_leaks: int = 0  # requests to the storage host that carried the API key: must stay 0


def _unauthorized(stats: CloudStats, what: str) -> web.Response:
    stats.unauthorized += 1
    return web.json_response({"error": {"type": "unauthorized", "message": what}}, status=401)


class CloudFront:
    """Key checks, signed redirects and flat uploads in front of the mock's routes.

    ``folders`` maps ``output`` / ``input`` / ``temp`` to directories; ``storage_url`` is set once the
    storage server listens.
    """

    def __init__(self, api_key: str, *, url_ttl: float, folders: dict[str, str]) -> None:
        if not api_key:
            raise ValueError("the cloud mode needs a non-empty api_key")
        self._api_key = api_key
        self._secret = os.urandom(32)
        self.url_ttl = float(url_ttl)
        self.folders = folders
        self.storage_url = ""
        self.stats = CloudStats()

    def __repr__(self) -> str:
        return f"CloudFront(storage_url={self.storage_url!r}, url_ttl={self.url_ttl:g})"

    def _is_key(self, value: str | None) -> bool:
        return value is not None and hmac.compare_digest(value.encode(), self._api_key.encode())

    # ------------------------------------------------------------------ the API host

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        if path == "/ws":
            if not (self._is_key(request.rel_url.query.get("token")) or self._is_key(request.headers.get("X-API-Key"))):
                return _unauthorized(self.stats, "the WebSocket needs ?token=<API key>")
            return await handler(request)
        if not path.startswith("/api/"):
            return web.Response(status=404, text="404: Not Found")
        if not self._is_key(request.headers.get("X-API-Key")):
            return _unauthorized(self.stats, "missing or invalid X-API-Key header")
        return await handler(request)

    def _sign(self, kind: str, subfolder: str, filename: str, expires: int) -> str:
        msg = f"{kind}\n{subfolder}\n{filename}\n{expires}".encode()
        return hmac.new(self._secret, msg, hashlib.sha256).hexdigest()

    def _resolve(self, kind: str, subfolder: str, filename: str) -> str | None:
        base = self.folders.get(kind)
        if base is None or not filename or "/" in filename or "\\" in filename or filename in (".", ".."):
            return None
        base = os.path.abspath(base)
        path = os.path.abspath(os.path.join(base, subfolder, filename))
        if os.path.commonpath((base, path)) != base or not os.path.isfile(path):
            return None
        return path

    async def view(self, request: web.Request) -> web.StreamResponse:
        """``/api/view``: 302 to a signed, expiring URL on the storage host."""
        q = request.rel_url.query
        kind, subfolder, filename = q.get("type", "output"), q.get("subfolder", ""), q.get("filename", "")
        if self._resolve(kind, subfolder, filename) is None:
            return web.Response(status=404)
        expires = int(time.time() + self.url_ttl)
        query = {"type": kind, "subfolder": subfolder, "filename": filename, "expires": str(expires)}
        query["signature"] = self._sign(kind, subfolder, filename, expires)
        self.stats.redirects += 1
        raise web.HTTPFound(f"{self.storage_url}/blob?{urlencode(query)}")

    async def upload_image(self, request: web.Request) -> web.StreamResponse:
        """``/api/upload/image``: stored as ``<sha256>.<ext>`` in one flat namespace."""
        post = await request.post()
        image = post.get("image")
        if not isinstance(image, web.FileField) or not image.filename:
            return web.Response(status=400)
        data = image.file.read()
        ext = os.path.splitext(image.filename)[1].lower()
        name = hashlib.sha256(data).hexdigest() + ext
        path = os.path.join(self.folders["input"], name)
        if not os.path.exists(path):
            with open(path, "wb") as f:
                f.write(data)
        return web.json_response({"name": name, "subfolder": "", "type": "input"})

    # ------------------------------------------------------------------ the storage host

    def storage_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/blob", self._blob)
        return app

    async def _blob(self, request: web.Request) -> web.StreamResponse:
        q = request.rel_url.query
        carried = [request.headers.get("X-API-Key"), q.get("token")]
        auth = request.headers.get("Authorization", "")
        carried.append(auth.split(" ", 1)[-1] if auth else None)
        if any(self._is_key(v) for v in carried):
            self.stats.storage_key_leaks += 1
            return web.Response(status=400, text="the API key must not be sent to the storage host")
        kind, subfolder, filename = q.get("type", ""), q.get("subfolder", ""), q.get("filename", "")
        try:
            expires = int(q.get("expires", ""))
        except ValueError:
            expires = 0
        if not hmac.compare_digest(self._sign(kind, subfolder, filename, expires), q.get("signature", "")):
            self.stats.storage_bad_signature += 1
            return web.Response(status=403, text="SignatureDoesNotMatch")
        if time.time() > expires:
            self.stats.storage_expired += 1
            return web.Response(status=403, text="the signed URL has expired")
        path = self._resolve(kind, subfolder, filename)
        if path is None:
            return web.Response(status=404)
        self.stats.storage_served += 1
        ctype = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        return web.FileResponse(path, headers={"Content-Type": ctype})
