"""The mock's JSON routes, as ComfyUI 0.3.64's ``server.py`` answers them: prompt, queue, history,
interrupt, system stats, object_info, models, settings and the small fixed answers the frontend asks for."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Callable
from typing import Any

from aiohttp import web

from ..protocol import validate_prompt
from ._catalog import MODEL_FOLDERS, Catalog
from ._executor import Executor
from ._faults import ServerStats
from ._http import json_response, read_json, server_error

__all__ = ["ApiRoutes"]

_LOAD_IMAGE_CLASSES = frozenset({"LoadImage", "LoadImageMask"})


class ApiRoutes:
    """Handlers over the executor's queue and history, the catalog and the settings; no file I/O but listings."""

    def __init__(
        self,
        executor: Executor,
        catalog: Catalog,
        stats: ServerStats,
        *,
        settings: dict[str, Any],
        folders: dict[str, str],
        models_root: str,
        features: dict[str, Any],
        argv: Callable[[], list[str]],
    ) -> None:
        self.executor = executor
        self.catalog = catalog
        self.stats = stats
        self.settings = settings
        self.folders = folders
        self.models_root = models_root
        self.features = features
        self.argv = argv

    # ------------------------------------------------------------------ simple GETs

    async def get_features(self, request: web.Request) -> web.StreamResponse:
        return json_response(self.features)

    async def get_empty_list(self, request: web.Request) -> web.StreamResponse:
        return json_response([])

    async def get_empty_object(self, request: web.Request) -> web.StreamResponse:
        return json_response({})

    async def get_models(self, request: web.Request) -> web.StreamResponse:
        folders = list(MODEL_FOLDERS) + [f for f in self.catalog.models if f not in MODEL_FOLDERS]
        return json_response(folders)

    async def get_models_folder(self, request: web.Request) -> web.StreamResponse:
        folder = request.match_info["folder"]
        if folder not in MODEL_FOLDERS and folder not in self.catalog.models:
            return web.Response(status=404)
        return json_response(list(self.catalog.models.get(folder, [])))

    async def view_metadata(self, request: web.Request) -> web.StreamResponse:
        return web.Response(status=404)

    async def system_stats(self, request: web.Request) -> web.StreamResponse:
        total = 16 * 1024**3
        free = 12 * 1024**3
        return json_response(
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
                    "argv": self.argv(),
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
        return json_response({"exec_info": {"queue_remaining": self.executor.remaining()}})

    async def object_info(self, request: web.Request) -> web.StreamResponse:
        return json_response(self.catalog.object_info())

    async def object_info_one(self, request: web.Request) -> web.StreamResponse:
        return json_response(self.catalog.one(request.match_info["node_class"]))

    async def get_users(self, request: web.Request) -> web.StreamResponse:
        return json_response({"storage": "server", "migrated": True})

    async def get_settings(self, request: web.Request) -> web.StreamResponse:
        return json_response(self.settings)

    async def get_setting(self, request: web.Request) -> web.StreamResponse:
        return json_response(self.settings.get(request.match_info["id"]))

    async def post_settings(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await read_json(request)
        except ValueError:
            return server_error()
        key = request.match_info.get("id")
        if key is not None:
            self.settings[key] = body
        elif isinstance(body, dict):
            self.settings.update(body)
        return web.Response()

    async def internal_files(self, request: web.Request) -> web.StreamResponse:
        kind = request.match_info["directory_type"]
        folder = self.folders.get(kind) if kind in ("output", "input", "temp") else None
        if folder is None:
            return json_response({"error": "Invalid directory type"}, status=400)
        entries = sorted(os.scandir(folder), key=lambda e: e.stat().st_mtime, reverse=True)
        return json_response([e.name for e in entries])

    async def internal_folder_paths(self, request: web.Request) -> web.StreamResponse:
        return json_response({f: [os.path.join(self.models_root, f)] for f in MODEL_FOLDERS})

    # ------------------------------------------------------------------ prompt, queue, interrupt

    async def post_prompt(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await read_json(request)
        except ValueError:
            return server_error()
        if not isinstance(body, dict):
            return server_error()
        ex = self.executor
        if "number" in body:
            try:
                number: float = float(body["number"])
            except (TypeError, ValueError):
                return server_error()
        else:
            number = ex.number
            if body.get("front"):
                number = -number
            ex.number += 1
        if "prompt" not in body:
            self.stats.prompts_rejected += 1
            check = validate_prompt(None, {})
            return json_response(check.error_body, status=400)
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
            return json_response(check.error_body, status=400)
        ex.put([number, prompt_id, prompt, extra_data, list(check.outputs_to_execute)])
        self.stats.prompts_submitted += 1
        return json_response({"prompt_id": prompt_id, "number": number, "node_errors": check.node_errors})

    async def get_queue(self, request: web.Request) -> web.StreamResponse:
        ex = self.executor
        return json_response({"queue_running": ex.running_items(), "queue_pending": ex.pending_items()})

    async def post_queue(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await read_json(request)
        except ValueError:
            return server_error()
        if isinstance(body, dict):
            if body.get("clear"):
                self.executor.wipe()
            for prompt_id in body.get("delete") or []:
                self.executor.delete(str(prompt_id))
        return web.Response()

    async def post_interrupt(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await read_json(request)
        except ValueError:
            body = {}
        if isinstance(body, dict) and "prompt_id" in body:
            self.executor.interrupt(str(body["prompt_id"]))
        else:
            self.executor.interrupt(None)
        return web.Response()

    async def post_free(self, request: web.Request) -> web.StreamResponse:
        try:
            await read_json(request)
        except ValueError:
            return server_error()
        return web.Response()

    # ------------------------------------------------------------------ history

    async def get_history(self, request: web.Request) -> web.StreamResponse:
        self.stats.history_fetches += 1
        q = request.rel_url.query
        try:
            max_items = int(q["max_items"]) if "max_items" in q else None
            offset = int(q.get("offset", -1))
        except ValueError:
            return server_error()
        return json_response(self.executor.history_slice(max_items, offset))

    async def get_history_one(self, request: web.Request) -> web.StreamResponse:
        self.stats.history_fetches += 1
        prompt_id = request.match_info["prompt_id"]
        entry = self.executor.history.get(prompt_id)
        return json_response({} if entry is None else {prompt_id: entry})

    async def post_history(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await read_json(request)
        except ValueError:
            return server_error()
        if isinstance(body, dict):
            if body.get("clear"):
                self.executor.history.clear()
            for prompt_id in body.get("delete") or []:
                self.executor.history.pop(str(prompt_id), None)
        return web.Response()
