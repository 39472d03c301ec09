"""``MockServer``: the mock's public handle, its background thread and event loop, start, stop and restart."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import tempfile
import threading
from collections.abc import Callable
from typing import Any

from aiohttp import web
from PIL import ImageOps

from ._app import App
from ._catalog import DEFAULT_MODELS, ModelFiles
from ._cloud import CloudFront
from ._faults import Faults, ServerStats
from ._images import GenParams, generate

__all__ = ["MockServer"]

DEFAULT_MAX_UPLOAD = 100 * 1024 * 1024


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
    - ``drop_sockets(client_id=None)`` aborts sockets; ``send_frame(payload, client_id=None)`` sends a raw
      frame, in order with the server's own messages (for tests of malformed frames).
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
        self._app: App | None = None
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

    def send_frame(self, payload: str | bytes, client_id: str | None = None) -> None:
        """Send one raw WebSocket frame (``str``: text, ``bytes``: binary) to ``client_id``'s socket, or to
        every socket, after every message already on its way: for testing what a client does with frames
        a real server would not send."""
        if not self._on_app(lambda app: app.sockets.send_frame(payload, client_id)):
            raise RuntimeError("the server is not running")

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
        self._on_app(lambda app: app.sockets.drop(client_id))

    def _on_app(self, fn: Callable[[App], None]) -> bool:
        """Run ``fn(app)`` on the server's loop: now when called there, else as its next callback."""
        loop, app = self._loop, self._app
        if loop is None or app is None:
            return False
        if threading.current_thread() is self._thread or (
            self._thread is None and loop.is_running() and _on_loop(loop)
        ):
            fn(app)
        else:
            loop.call_soon_threadsafe(fn, app)
        return True

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
        app = App(self)
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
        await app.start()
        self._app, self._runner = app, runner

    async def _down(self) -> None:
        app, runner = self._app, self._runner
        self._app = self._runner = None
        if app is not None:
            await app.stop()
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
