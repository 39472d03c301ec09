"""The aiohttp application (routes, WebSocket, middleware) and ``MockServer``, its thread and lifecycle."""

from __future__ import annotations

import asyncio
import collections
import hashlib
import http
import io
import ipaddress
import json
import mimetypes
import os
import secrets
import shutil
import sys
import tempfile
import threading
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from aiohttp import WSMsgType, web
from PIL import Image, ImageOps
from PIL.PngImagePlugin import PngInfo

from ..protocol import (
    encode_preview_image,
    encode_preview_with_metadata,
    encode_progress_text,
    validate_prompt,
)
from ._catalog import DEFAULT_MODELS, MODEL_FOLDERS, Catalog, ModelFiles
from ._cloud import CloudFront
from ._executor import Executor, Workspace
from ._faults import Faults, ServerStats
from ._images import GenParams, generate
from ._jobs import add_jobs_routes

__all__ = ["MockServer"]

DEFAULT_MAX_UPLOAD = 100 * 1024 * 1024
_LOAD_IMAGE_CLASSES = frozenset({"LoadImage", "LoadImageMask"})
_INTERNAL_ERROR = "500 Internal Server Error\n\nServer got itself in trouble"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=json.dumps(data).encode("utf-8"), status=status, content_type="application/json", charset="utf-8"
    )


def _server_error() -> web.Response:
    return web.Response(status=500, text=_INTERNAL_ERROR, content_type="text/plain")


async def _read_json(request: web.Request) -> Any:
    """``await request.json()`` as the real routes do it; raises ValueError on a malformed body."""
    text = await request.text()
    return json.loads(text)


@dataclass
class _Socket:
    ws: web.WebSocketResponse
    sid: str
    transport: asyncio.BaseTransport | None
    metadata: bool = False


def _is_loopback(host: str) -> bool:
    if host.startswith("["):
        host = host[1:].split("]", 1)[0]
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _origin_refused(request: web.Request) -> bool:
    host = request.headers.get("Host")
    origin = request.headers.get("Origin")
    if not host or not origin or not _is_loopback(host):
        return False
    origin_netloc = urlparse(origin).netloc.lower()
    host_netloc = host.lower()
    host_has_port = ":" in host_netloc.rsplit("]", 1)[-1]
    origin_has_port = ":" in origin_netloc.rsplit("]", 1)[-1]
    if host_has_port and not origin_has_port:
        host_netloc = host_netloc.rsplit(":", 1)[0]
    elif origin_has_port and not host_has_port:
        origin_netloc = origin_netloc.rsplit(":", 1)[0]
    return host_netloc != origin_netloc


class _App:
    """One incarnation of the server (a restart builds a new one over the same folders)."""

    def __init__(self, server: MockServer) -> None:
        self.server = server
        self.faults = server.faults
        self.stats = server.stats
        self.step_delay = server.step_delay
        self.preview_size = server.preview_size
        self.sampler_previews = server.sampler_previews
        self.max_upload_size = server.max_upload_size
        self.catalog = Catalog(server.models, server.input_dir)
        self.sockets: dict[str, _Socket] = {}
        self._outbox: collections.deque[tuple[str | bytes, str | None]] = collections.deque()
        self._outbox_event = asyncio.Event()
        self._publisher: asyncio.Task[None] | None = None
        self._folders = {"output": server.output_dir, "input": server.input_dir, "temp": server.temp_dir}
        self.executor = Executor(Workspace(
            outbox=self, catalog=self.catalog, faults=self.faults, stats=self.stats, folders=self._folders,
            step_delay=self.step_delay, preview_size=self.preview_size, sampler_previews=self.sampler_previews,
        ), workers=server.parallel)
        self.app = self._build()

    # ------------------------------------------------------------------ folders

    def folder(self, kind: str | None) -> str | None:
        return self._folders.get(kind or "")

    # ------------------------------------------------------------------ messages

    def send(self, event: str, data: dict[str, Any], sid: str | None) -> None:
        self._enqueue(json.dumps({"type": event, "data": data}), sid)

    def _enqueue(self, payload: str | bytes, sid: str | None) -> None:
        self._outbox.append((payload, sid))
        self._outbox_event.set()

    def send_text(self, node_id: str, text: str) -> None:
        self._enqueue(encode_progress_text(node_id, text), None)

    def wants_metadata(self, sid: str | None) -> bool:
        if sid is None:
            return False
        sock = self.sockets.get(sid)
        return sock is not None and sock.metadata

    def send_preview(
        self, image: bytes, mime: str, sid: str | None, prompt_id: str | None, node_id: str | None
    ) -> None:
        if prompt_id is not None and node_id is not None:
            frame = encode_preview_with_metadata(image, mime=mime, prompt_id=prompt_id, node_id=node_id)
        else:
            frame = encode_preview_image(image, mime)
        self._enqueue(frame, sid)

    async def _publish(self) -> None:
        outbox = self._outbox
        faults = self.faults
        while True:
            while not outbox:
                self._outbox_event.clear()
                await self._outbox_event.wait()
            stall = faults.stall_remaining("sockets")
            if stall > 0:
                await asyncio.sleep(stall)
                continue
            payload, sid = outbox.popleft()
            if sid is not None:
                sock = self.sockets.get(sid)
                if sock is not None:
                    await self._deliver(sock, payload)
            elif self.sockets:
                for sock in list(self.sockets.values()):
                    await self._deliver(sock, payload)

    async def _deliver(self, sock: _Socket, payload: str | bytes) -> None:
        ws = sock.ws
        if ws.closed:
            return
        try:
            if isinstance(payload, str):
                await ws.send_str(payload)
            else:
                await ws.send_bytes(payload)
        except (ConnectionError, RuntimeError):
            return
        self.stats.ws_messages += 1
        drop, cid = self.faults.count_message(sock.sid)
        if drop:
            self.drop_sockets(cid)

    def drop_sockets(self, client_id: str | None = None) -> None:
        """Abort connections (no close frame), like a network failure."""
        for sock in list(self.sockets.values()):
            if client_id is None or sock.sid == client_id:
                self.stats.sockets_dropped += 1
                if sock.transport is not None:
                    sock.transport.abort()  # type: ignore[attr-defined]

    # ------------------------------------------------------------------ lifecycle

    async def start_tasks(self) -> None:
        self.executor.start()
        self._publisher = asyncio.get_running_loop().create_task(self._publish(), name="comfy-nb-mock-publisher")

    async def stop_tasks(self) -> None:
        await self.executor.stop()
        if self._publisher is not None:
            self._publisher.cancel()
            try:
                await self._publisher
            except (asyncio.CancelledError, Exception):
                pass
        for sock in list(self.sockets.values()):
            if sock.transport is not None:
                sock.transport.abort()  # type: ignore[attr-defined]
        self.sockets.clear()

    # ------------------------------------------------------------------ app

    def _build(self) -> web.Application:
        front = self.server.cloud_front
        middlewares = [self._middleware] if front is None else [front.middleware, self._middleware]
        app = web.Application(client_max_size=self.max_upload_size, middlewares=middlewares)
        routes: list[tuple[str, str, Handler]] = [
            ("GET", "/ws", self.ws_handler),
            ("GET", "/embeddings", self.get_embeddings),
            ("GET", "/models", self.get_models),
            ("GET", "/models/{folder}", self.get_models_folder),
            ("GET", "/extensions", self.get_extensions),
            ("POST", "/upload/image", self.upload_image),
            ("POST", "/upload/mask", self.upload_mask),
            ("GET", "/view", self.view),
            ("GET", "/view_metadata/{folder_name}", self.view_metadata),
            ("GET", "/system_stats", self.system_stats),
            ("GET", "/features", self.features),
            ("GET", "/prompt", self.get_prompt),
            ("POST", "/prompt", self.post_prompt),
            ("GET", "/object_info", self.object_info),
            ("GET", "/object_info/{node_class}", self.object_info_one),
            ("GET", "/history", self.get_history),
            ("GET", "/history/{prompt_id}", self.get_history_one),
            ("POST", "/history", self.post_history),
            ("GET", "/queue", self.get_queue),
            ("POST", "/queue", self.post_queue),
            ("POST", "/interrupt", self.post_interrupt),
            ("POST", "/free", self.post_free),
            ("GET", "/users", self.get_users),
            ("GET", "/settings", self.get_settings),
            ("GET", "/settings/{id}", self.get_setting),
            ("POST", "/settings", self.post_settings),
            ("POST", "/settings/{id}", self.post_settings),
            ("GET", "/i18n", self.get_empty_object),
            ("GET", "/workflow_templates", self.get_empty_object),
        ]
        if front is not None:  # the cloud's own answers for downloads and uploads
            cloud = {("GET", "/view"): front.view, ("POST", "/upload/image"): front.upload_image}
            routes = [(m, p, cloud.get((m, p), h)) for m, p, h in routes]
        for method, path, handler in routes:
            app.router.add_route(method, path, handler)
            app.router.add_route(method, "/api" + path, handler)
        app.router.add_route("GET", "/internal/files/{directory_type}", self.internal_files)
        app.router.add_route("GET", "/internal/folder_paths", self.internal_folder_paths)
        if self.server.jobs_api:
            add_jobs_routes(self, app.router)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        canon = path[4:] if path.startswith("/api/") else path
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else canon
        if route.startswith("/api/"):
            route = route[4:]
        self.stats.requests[f"{request.method} {route}"] += 1
        fault = self.faults.take_http(canon)
        if fault is not None:
            self.stats.http_faults += 1
            reason = http.HTTPStatus(fault.status).phrase if fault.status in http.HTTPStatus._value2member_map_ else ""
            headers = {} if fault.retry_after is None else {"Retry-After": f"{fault.retry_after:g}"}
            return web.Response(status=fault.status, text=f"{fault.status}: {reason}", headers=headers)
        if _origin_refused(request):
            return web.Response(status=403)
        if request.method == "OPTIONS":
            return web.Response()
        return await handler(request)

    # ------------------------------------------------------------------ WebSocket

    async def ws_handler(self, request: web.Request) -> web.StreamResponse:
        sid = request.rel_url.query.get("clientId") or uuid.uuid4().hex
        ws = web.WebSocketResponse(max_msg_size=0)
        # Counted before the handshake answer: a client that saw its socket open (in another thread)
        # must find it counted.
        self.stats.ws_connects += 1
        await ws.prepare(request)
        sock = _Socket(ws, sid, request.transport)
        self.sockets[sid] = sock  # a reused clientId replaces the entry without closing the old socket
        try:
            hello = {"status": {"exec_info": {"queue_remaining": self.executor.remaining()}}, "sid": sid}
            await ws.send_str(json.dumps({"type": "status", "data": hello}))
            node = self.executor.executing_node(sid)
            if node is not None:
                await ws.send_str(json.dumps({"type": "executing", "data": {"node": node}}))
            first = True
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    try:
                        data = json.loads(msg.data)
                    except ValueError:
                        continue
                    if first and isinstance(data, dict) and data.get("type") == "feature_flags":
                        flags = data.get("data") or {}
                        sock.metadata = isinstance(flags, dict) and bool(flags.get("supports_preview_metadata"))
                        await ws.send_str(json.dumps({"type": "feature_flags", "data": self._features()}))
                    first = False
                elif msg.type == WSMsgType.ERROR:
                    break
        except (ConnectionError, RuntimeError, asyncio.CancelledError):
            pass
        finally:
            # like the real server: whatever is registered under this sid goes, even a newer socket
            self.sockets.pop(sid, None)
        return ws

    # ------------------------------------------------------------------ simple GETs

    def _features(self) -> dict[str, Any]:
        return {"supports_preview_metadata": True, "max_upload_size": self.max_upload_size}

    async def features(self, request: web.Request) -> web.StreamResponse:
        return _json(self._features())

    async def get_embeddings(self, request: web.Request) -> web.StreamResponse:
        return _json([])

    async def get_extensions(self, request: web.Request) -> web.StreamResponse:
        return _json([])

    async def get_models(self, request: web.Request) -> web.StreamResponse:
        folders = list(MODEL_FOLDERS) + [f for f in self.catalog.models if f not in MODEL_FOLDERS]
        return _json(folders)

    async def get_models_folder(self, request: web.Request) -> web.StreamResponse:
        folder = request.match_info["folder"]
        if folder not in MODEL_FOLDERS and folder not in self.catalog.models:
            return web.Response(status=404)
        return _json(list(self.catalog.models.get(folder, [])))

    async def view_metadata(self, request: web.Request) -> web.StreamResponse:
        return web.Response(status=404)

    async def system_stats(self, request: web.Request) -> web.StreamResponse:
        total = 16 * 1024**3
        free = 12 * 1024**3
        return _json(
            {
                "system": {
                    "os": "posix" if os.name == "posix" else os.name,
                    "ram_total": total,
                    "ram_free": free,
                    "comfyui_version": "0.3.64",
                    "required_frontend_version": "1.27.10",
                    "installed_templates_version": "0.1.95",
                    "required_templates_version": "0.1.95",
                    "python_version": sys.version,
                    "pytorch_version": "none (comfy_nb mock)",
                    "embedded_python": False,
                    "argv": ["comfy_nb.mock", "--port", str(self.server.port),
                             *(["--preview-method", "auto"] if self.server.sampler_previews else [])],
                },
                "devices": [
                    {
                        "name": "cpu",
                        "type": "cpu",
                        "index": None,
                        "vram_total": total,
                        "vram_free": free,
                        "torch_vram_total": total,
                        "torch_vram_free": free,
                    }
                ],
            }
        )

    async def get_prompt(self, request: web.Request) -> web.StreamResponse:
        return _json({"exec_info": {"queue_remaining": self.executor.remaining()}})

    async def object_info(self, request: web.Request) -> web.StreamResponse:
        return _json(self.catalog.object_info())

    async def object_info_one(self, request: web.Request) -> web.StreamResponse:
        return _json(self.catalog.one(request.match_info["node_class"]))

    async def get_users(self, request: web.Request) -> web.StreamResponse:
        return _json({"storage": "server", "migrated": True})

    async def get_settings(self, request: web.Request) -> web.StreamResponse:
        return _json(self.server.settings)

    async def get_setting(self, request: web.Request) -> web.StreamResponse:
        return _json(self.server.settings.get(request.match_info["id"]))

    async def post_settings(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await _read_json(request)
        except ValueError:
            return _server_error()
        key = request.match_info.get("id")
        if key is not None:
            self.server.settings[key] = body
        elif isinstance(body, dict):
            self.server.settings.update(body)
        return web.Response()

    async def get_empty_object(self, request: web.Request) -> web.StreamResponse:
        return _json({})

    async def internal_files(self, request: web.Request) -> web.StreamResponse:
        kind = request.match_info["directory_type"]
        folder = self.folder(kind) if kind in ("output", "input", "temp") else None
        if folder is None:
            return _json({"error": "Invalid directory type"}, status=400)
        entries = sorted(os.scandir(folder), key=lambda e: e.stat().st_mtime, reverse=True)
        return _json([e.name for e in entries])

    async def internal_folder_paths(self, request: web.Request) -> web.StreamResponse:
        root = os.path.join(self.server.root_dir, "models")
        return _json({f: [os.path.join(root, f)] for f in MODEL_FOLDERS})

    # ------------------------------------------------------------------ prompt, queue, interrupt

    async def post_prompt(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await _read_json(request)
        except ValueError:
            return _server_error()
        if not isinstance(body, dict):
            return _server_error()
        ex = self.executor
        if "number" in body:
            try:
                number: float = float(body["number"])
            except (TypeError, ValueError):
                return _server_error()
        else:
            number = ex.number
            if body.get("front"):
                number = -number
            ex.number += 1
        if "prompt" not in body:
            self.stats.prompts_rejected += 1
            check = validate_prompt(None, {})
            return _json(check.error_body, status=400)
        prompt = body["prompt"]
        prompt_id = str(body.get("prompt_id", uuid.uuid4()))
        partial = body.get("partial_execution_targets")
        info = self.catalog.object_info()
        files = None
        if isinstance(prompt, dict) and any(
            isinstance(n, dict) and n.get("class_type") in _LOAD_IMAGE_CLASSES for n in prompt.values()
        ):
            files = self.catalog.input_files()
        check = validate_prompt(
            prompt, info, partial_targets=partial if isinstance(partial, list) else None, input_files=files
        )
        extra_data = body.get("extra_data") or {}
        if not isinstance(extra_data, dict):
            extra_data = {}
        if "client_id" in body:
            extra_data["client_id"] = body["client_id"]
        if not check.ok:
            self.stats.prompts_rejected += 1
            return _json(check.error_body, status=400)
        ex.put([number, prompt_id, prompt, extra_data, list(check.outputs_to_execute)])
        self.stats.prompts_submitted += 1
        return _json({"prompt_id": prompt_id, "number": number, "node_errors": check.node_errors})

    async def get_queue(self, request: web.Request) -> web.StreamResponse:
        ex = self.executor
        return _json({"queue_running": ex.running_items(), "queue_pending": ex.pending_items()})

    async def post_queue(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await _read_json(request)
        except ValueError:
            return _server_error()
        if isinstance(body, dict):
            if body.get("clear"):
                self.executor.wipe()
            for prompt_id in body.get("delete") or []:
                self.executor.delete(str(prompt_id))
        return web.Response()

    async def post_interrupt(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await _read_json(request)
        except ValueError:
            body = {}
        if isinstance(body, dict) and "prompt_id" in body:
            self.executor.interrupt(str(body["prompt_id"]))
        else:
            self.executor.interrupt(None)
        return web.Response()

    async def post_free(self, request: web.Request) -> web.StreamResponse:
        try:
            await _read_json(request)
        except ValueError:
            return _server_error()
        return web.Response()

    # ------------------------------------------------------------------ history

    async def get_history(self, request: web.Request) -> web.StreamResponse:
        self.stats.history_fetches += 1
        q = request.rel_url.query
        try:
            max_items = int(q["max_items"]) if "max_items" in q else None
            offset = int(q.get("offset", -1))
        except ValueError:
            return _server_error()
        return _json(self.executor.history_slice(max_items, offset))

    async def get_history_one(self, request: web.Request) -> web.StreamResponse:
        self.stats.history_fetches += 1
        prompt_id = request.match_info["prompt_id"]
        entry = self.executor.history.get(prompt_id)
        return _json({} if entry is None else {prompt_id: entry})

    async def post_history(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await _read_json(request)
        except ValueError:
            return _server_error()
        if isinstance(body, dict):
            if body.get("clear"):
                self.executor.history.clear()
            for prompt_id in body.get("delete") or []:
                self.executor.history.pop(str(prompt_id), None)
        return web.Response()

    # ------------------------------------------------------------------ files

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
            return _server_error()  # the real server raises here
        if image is None:
            return web.Response(status=400)
        if not isinstance(image, web.FileField):
            return _server_error()  # a file part without a filename arrives as text: the real server fails
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
        return _json({"name": filename, "subfolder": subfolder, "type": kind})

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
            return _server_error()
        return await self._image_upload(request, save)


def _example_image(path: str) -> None:
    img = generate(GenParams(positive="example", seed=1, sampler="euler"), 512, 512)
    img = ImageOps.expand(img.resize((496, 496)), border=8, fill=(240, 240, 240))
    img.save(path, format="PNG")


class MockServer:
    """A protocol-faithful ComfyUI 0.3.64 stand-in on real sockets (aiohttp), with fault injection.

    ``MockServer(host="127.0.0.1", port=0, *, step_delay=0.0, root_dir=None, output_dir=None, models=None,
    preview_size=512, sampler_previews=True, max_upload_size=104857600, jobs_api=False, cloud=False,
    api_key=None, parallel=None, url_ttl=300.0)``

    - ``with MockServer() as server:`` or ``server = MockServer().start(); ...; server.stop()``: runs on
      a background thread with its own event loop. ``server.url`` is ``"http://127.0.0.1:PORT"``.
    - ``serve_forever()`` runs in the foreground (the ``python -m comfy_nb.mock`` entry point).
    - ``step_delay``: seconds per sampler step (0 = as fast as possible). ``SlowProgressImage`` sleeps
      its own ``seconds_per_step`` instead.
    - Folders: ``root_dir`` (default: a fresh temporary directory, removed on ``stop()``) holds
      ``output/``, ``input/`` (with an ``example.png``) and ``temp/``; ``output_dir`` overrides the first.
    - ``jobs_api``: also answer ``/api/jobs`` like newer ComfyUI servers (0.3.64 has no jobs API).
    - ``cloud=True``: Comfy Cloud's differences (``_cloud.py``): ``X-API-Key`` (``api_key``, default a
      random one, read it from ``server.api_key``) on every ``/api`` route, ``/ws?token=``, ``/api/view``
      302 to a signed URL on ``server.storage_url`` valid ``url_ttl`` seconds, flat content-addressed
      uploads, ``/api/jobs``, and ``parallel`` jobs at once (default 4; 1 otherwise).
    - ``models``: ``{folder: [file names]}`` the loaders' combos offer (default: a small fake set), or
      ``{folder: {file name: family}}``; a file's model family decides what the loaders give and which
      latents the samplers take, as on a real server.
    - ``faults`` (``Faults``) and ``stats`` (``ServerStats``) are safe to use from any thread;
      ``restart(downtime=0.0)`` drops sockets and loses queue, history, cache and temp, like a real restart.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        step_delay: float = 0.0,
        root_dir: str | os.PathLike[str] | None = None,
        output_dir: str | os.PathLike[str] | None = None,
        models: ModelFiles | None = None,
        preview_size: int = 512,
        sampler_previews: bool = True,
        max_upload_size: int = DEFAULT_MAX_UPLOAD,
        jobs_api: bool = False,
        cloud: bool = False,
        api_key: str | None = None,
        parallel: int | None = None,
        url_ttl: float = 300.0,
    ) -> None:
        self.host = host
        self.port = int(port)
        self.step_delay = float(step_delay)
        self.preview_size = int(preview_size)
        self.sampler_previews = bool(sampler_previews)
        self.max_upload_size = int(max_upload_size)
        self.cloud = bool(cloud)
        self.jobs_api = bool(jobs_api) or self.cloud
        self.parallel = max(1, int(parallel if parallel is not None else (4 if self.cloud else 1)))
        self.api_key: str | None = (api_key or "mock-" + secrets.token_hex(16)) if self.cloud else None
        self.models: ModelFiles = dict(DEFAULT_MODELS if models is None else models)
        self._own_root = root_dir is None
        self.root_dir = os.path.abspath(tempfile.mkdtemp(prefix="comfy_nb_mock_") if root_dir is None else root_dir)
        self.output_dir = os.path.abspath(output_dir) if output_dir else os.path.join(self.root_dir, "output")
        self.input_dir = os.path.join(self.root_dir, "input")
        self.temp_dir = os.path.join(self.root_dir, "temp")
        for d in (self.output_dir, self.input_dir):
            os.makedirs(d, exist_ok=True)
        example = os.path.join(self.input_dir, "example.png")
        if not os.path.exists(example):
            _example_image(example)
        self.settings: dict[str, Any] = {}
        self.faults = Faults()
        self.stats = ServerStats()
        self._app: _App | None = None
        self._runner: web.AppRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop_event: asyncio.Event | None = None
        self._lock = threading.Lock()
        self.faults._notify_drop = self._drop_from_thread
        self.cloud_front: CloudFront | None = None
        self._storage_runner: web.AppRunner | None = None
        self.storage_port = 0
        if self.api_key is not None:
            folders = {"output": self.output_dir, "input": self.input_dir, "temp": self.temp_dir}
            self.cloud_front = CloudFront(self.api_key, url_ttl=url_ttl, folders=folders)

    # ------------------------------------------------------------------ public

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return "ws" + self.url[4:] + "/ws"

    @property
    def storage_url(self) -> str | None:
        """The cloud mode's storage host (where ``/api/view`` redirects), or ``None``."""
        return self.cloud_front.storage_url if self.cloud_front is not None else None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, timeout: float = 30.0) -> MockServer:
        """Start on a background thread; returns once the port accepts connections."""
        with self._lock:
            if self._thread is not None:
                return self
            ready = threading.Event()
            errors: list[BaseException] = []
            self._thread = threading.Thread(
                target=self._thread_main, args=(ready, errors), name="comfy-nb-mock", daemon=True
            )
            self._thread.start()
        if not ready.wait(timeout):
            raise RuntimeError("the mock ComfyUI server did not start in time")
        if errors:
            self._thread.join(timeout)
            self._thread = None
            raise errors[0]
        return self

    def stop(self, timeout: float = 30.0) -> None:
        with self._lock:
            thread, loop, event = self._thread, self._loop, self._stop_event
            self._thread = None
        if thread is None:
            return
        if loop is not None and event is not None and not loop.is_closed():
            loop.call_soon_threadsafe(event.set)
        thread.join(timeout)
        if self._own_root:
            shutil.rmtree(self.root_dir, ignore_errors=True)

    def restart(self, downtime: float = 0.0, timeout: float = 30.0) -> None:
        """Drop every socket, lose queue/history/cache/temp, and come back on the same port."""
        loop = self._loop
        if loop is None or self._thread is None:
            raise RuntimeError("restart() needs a server started with start() or a with-block")
        asyncio.run_coroutine_threadsafe(self._restart(downtime), loop).result(timeout)

    def serve_forever(self) -> None:
        """Run in the foreground until interrupted (Ctrl-C)."""

        async def main() -> None:
            self._stop_event = asyncio.Event()
            self._loop = asyncio.get_running_loop()
            await self._up()
            cloud = f", cloud mode, storage host {self.storage_url}" if self.cloud else ""
            print(f"comfy_nb mock ComfyUI listening on {self.url}{cloud} (files in {self.root_dir})", flush=True)
            try:
                await self._stop_event.wait()
            finally:
                await self._down()

        try:
            asyncio.run(main())
        except KeyboardInterrupt:
            pass

    def call(self, fn: Callable[[], Any], timeout: float = 30.0) -> Any:
        """Run ``fn()`` on the server's loop thread and return its result (for state inspection)."""
        loop = self._loop
        if loop is None:
            raise RuntimeError("the server is not running")

        async def run() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), loop).result(timeout)

    def drop_sockets(self, client_id: str | None = None) -> None:
        """Abort WebSocket connections now (all, or the one registered under ``client_id``)."""
        self._drop_from_thread(client_id)

    def __enter__(self) -> MockServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        mode = ", cloud" if self.cloud else ""
        return f"MockServer(url={self.url!r}{mode}, {state})"

    # ------------------------------------------------------------------ internals

    def _drop_from_thread(self, client_id: str | None) -> None:
        loop, app = self._loop, self._app
        if loop is None or app is None:
            return
        if threading.current_thread() is self._thread or (
            self._thread is None and loop.is_running() and _on_loop(loop)
        ):
            app.drop_sockets(client_id)
        else:
            loop.call_soon_threadsafe(app.drop_sockets, client_id)

    def _thread_main(self, ready: threading.Event, errors: list[BaseException]) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            self._stop_event = asyncio.Event()
            try:
                loop.run_until_complete(self._up())
            except BaseException as exc:  # report to start()
                errors.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_until_complete(self._stop_event.wait())
            loop.run_until_complete(self._down())
        finally:
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()
                self._loop = None

    async def _up(self) -> None:
        if os.path.isdir(self.temp_dir):
            shutil.rmtree(self.temp_dir, ignore_errors=True)  # temp is wiped at start, like the real server
        os.makedirs(self.temp_dir, exist_ok=True)
        app = _App(self)
        runner = web.AppRunner(app.app, access_log=None, handle_signals=False, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, reuse_address=True)
        await site.start()
        server = getattr(site, "_server", None)
        if self.port == 0 and server is not None and server.sockets:
            self.port = int(server.sockets[0].getsockname()[1])
        front = self.cloud_front
        if front is not None:
            storage = web.AppRunner(front.storage_app(), access_log=None, handle_signals=False, shutdown_timeout=0.5)
            await storage.setup()
            await web.TCPSite(storage, self.host, self.storage_port, reuse_address=True).start()
            self.storage_port = int(storage.addresses[0][1])
            host = f"[{self.host}]" if ":" in self.host else self.host
            front.storage_url = f"http://{host}:{self.storage_port}"
            self._storage_runner = storage
        await app.start_tasks()
        self._app, self._runner = app, runner

    async def _down(self) -> None:
        app, runner = self._app, self._runner
        self._app = self._runner = None
        if app is not None:
            await app.stop_tasks()
        if runner is not None:
            await runner.cleanup()
        storage, self._storage_runner = self._storage_runner, None
        if storage is not None:
            await storage.cleanup()

    async def _restart(self, downtime: float) -> None:
        await self._down()
        self.stats.restarts += 1
        if downtime > 0:
            await asyncio.sleep(downtime)
        await self._up()


def _on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False
