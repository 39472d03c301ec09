"""One incarnation of the mock server: its parts wired together, the route table and the middleware.

A restart builds a new ``App`` over the same folders, settings, faults and stats, so queue, history,
cache and sockets are lost as on a real restart.
"""

from __future__ import annotations

import http
import os
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ._catalog import Catalog
from ._executor import Executor, Workspace
from ._file_routes import FileRoutes
from ._http import Handler, origin_refused
from ._jobs import add_jobs_routes
from ._routes import ApiRoutes
from ._sockets import Sockets

if TYPE_CHECKING:
    from ._server import MockServer

__all__ = ["App"]


class App:
    """The aiohttp application with its sockets, executor and routes; ``start``/``stop`` run its tasks."""

    def __init__(self, server: MockServer) -> None:
        self.faults = server.faults
        self.stats = server.stats
        self.catalog = Catalog(server.models, server.input_dir)
        self.sockets = Sockets(self.faults, self.stats)
        folders = {"output": server.output_dir, "input": server.input_dir, "temp": server.temp_dir}
        self.executor = Executor(Workspace(
            outbox=self.sockets, catalog=self.catalog, faults=self.faults, stats=self.stats, folders=folders,
            step_delay=server.step_delay, preview_size=server.preview_size, sampler_previews=server.sampler_previews,
        ), workers=server.parallel)
        self.features: dict[str, Any] = {"supports_preview_metadata": True, "max_upload_size": server.max_upload_size}

        def argv() -> list[str]:  # the port is known only once the server is bound
            previews = ["--preview-method", "auto"] if server.sampler_previews else []
            return ["comfy_nb.mock", "--port", str(server.port), *previews]

        self.api = ApiRoutes(
            self.executor, self.catalog, self.stats, settings=server.settings, folders=folders,
            models_root=os.path.join(server.root_dir, "models"), features=self.features, argv=argv,
        )
        self.files = FileRoutes(folders, self.catalog)
        self.app = self._build(server)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self.executor.start()
        self.sockets.start()

    async def stop(self) -> None:
        await self.executor.stop()
        await self.sockets.stop()

    # ------------------------------------------------------------------ app

    def _build(self, server: MockServer) -> web.Application:
        front = server.cloud_front
        middlewares = [self._middleware] if front is None else [front.middleware, self._middleware]
        app = web.Application(client_max_size=server.max_upload_size, middlewares=middlewares)
        api, files = self.api, self.files
        routes: list[tuple[str, str, Handler]] = [
            ("GET", "/ws", self.ws_handler),
            ("GET", "/embeddings", api.get_empty_list),
            ("GET", "/models", api.get_models),
            ("GET", "/models/{folder}", api.get_models_folder),
            ("GET", "/extensions", api.get_empty_list),
            ("POST", "/upload/image", files.upload_image),
            ("POST", "/upload/mask", files.upload_mask),
            ("GET", "/view", files.view),
            ("GET", "/view_metadata/{folder_name}", api.view_metadata),
            ("GET", "/system_stats", api.system_stats),
            ("GET", "/features", api.get_features),
            ("GET", "/prompt", api.get_prompt),
            ("POST", "/prompt", api.post_prompt),
            ("GET", "/object_info", api.object_info),
            ("GET", "/object_info/{node_class}", api.object_info_one),
            ("GET", "/history", api.get_history),
            ("GET", "/history/{prompt_id}", api.get_history_one),
            ("POST", "/history", api.post_history),
            ("GET", "/queue", api.get_queue),
            ("POST", "/queue", api.post_queue),
            ("POST", "/interrupt", api.post_interrupt),
            ("POST", "/free", api.post_free),
            ("GET", "/users", api.get_users),
            ("GET", "/settings", api.get_settings),
            ("GET", "/settings/{id}", api.get_setting),
            ("POST", "/settings", api.post_settings),
            ("POST", "/settings/{id}", api.post_settings),
            ("GET", "/i18n", api.get_empty_object),
            ("GET", "/workflow_templates", api.get_empty_object),
        ]
        if front is not None:  # the cloud's own answers for downloads and uploads
            cloud = {("GET", "/view"): front.view, ("POST", "/upload/image"): front.upload_image}
            routes = [(m, p, cloud.get((m, p), h)) for m, p, h in routes]
        for method, path, handler in routes:
            app.router.add_route(method, path, handler)
            app.router.add_route(method, "/api" + path, handler)
        app.router.add_route("GET", "/internal/files/{directory_type}", api.internal_files)
        app.router.add_route("GET", "/internal/folder_paths", api.internal_folder_paths)
        if server.jobs_api:
            add_jobs_routes(self.executor, app.router)
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
        if resource is None:
            self.stats.unrouted[f"{request.method} {route}"] += 1
        fault = self.faults.take_http(canon)
        if fault is not None:
            self.stats.http_faults += 1
            reason = http.HTTPStatus(fault.status).phrase if fault.status in http.HTTPStatus._value2member_map_ else ""
            headers = {} if fault.retry_after is None else {"Retry-After": f"{fault.retry_after:g}"}
            return web.Response(status=fault.status, text=f"{fault.status}: {reason}", headers=headers)
        if origin_refused(request):
            return web.Response(status=403)
        if request.method == "OPTIONS":
            return web.Response()
        return await handler(request)

    async def ws_handler(self, request: web.Request) -> web.StreamResponse:
        return await self.sockets.serve(request, self._greeting, self.features)

    def _greeting(self, sid: str) -> list[dict[str, Any]]:
        """What a new socket hears first: the queue length and its own id, then the node a run of its is on."""
        hello = {"status": {"exec_info": {"queue_remaining": self.executor.remaining()}}, "sid": sid}
        messages: list[dict[str, Any]] = [{"type": "status", "data": hello}]
        node = self.executor.executing_node(sid)
        if node is not None:
            messages.append({"type": "executing", "data": {"node": node}})
        return messages
