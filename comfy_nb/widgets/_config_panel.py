"""ConfigPanel: server URL (validated as typed), kind, auth, connection test, workflows, preferred models."""

from __future__ import annotations

import inspect
import logging
import threading
from collections.abc import Callable
from typing import Any

import ipywidgets as W
import traitlets as t

from .._secrets import reveal
from ..errors import NotAvailable
from ..protocol import server_url_problem
from . import _bg
from ._forms import LoraStack, field_layout, lora_triples, section, set_options, status_html
from ._server_info import caps_html, in_use_html, kind_text

__all__ = ["ConfigPanel", "validate_url"]

log = logging.getLogger("comfy_nb.widgets")
_TASK_TYPES = ("image", "video", "upscale", "inpaint", "grid")
_SECRET_FIELDS = ("token", "password", "api_key")
_KIND_OPTIONS = (("auto-detect", "auto"), ("ComfyUI", "comfyui"), ("Comfy Cloud", "cloud"), ("Comfy API v2", "v2"))
_PROBE_TIMEOUT = 60.0


def validate_url(text: str) -> str | None:
    """Why ``text`` is not a usable server URL, or ``None`` when it is (no request is made)."""
    problem = server_url_problem(text)
    return None if problem is None else f"The URL {problem}"


class _SecretField(W.Password):  # type: ignore[misc]
    """A Password box whose typed value is never echoed back to the browser (ipywidgets 8 echoes by default)."""

    value = t.Unicode("", help="String value").tag(sync=True, echo_update=False)


def _config_class() -> Any:
    from ..config import ComfyConfig

    return ComfyConfig


class ConfigPanel(W.VBox):  # type: ignore[misc]
    """Edit a ``ComfyConfig``: URL, kind, auth, connection test, workflow per task type, preferred models.

    Secrets typed into the token / password / API key fields go straight into the config's
    ``SecretStr``; the fields are then cleared, so the secret is never echoed back or kept in widget
    state. "Test connection" reports the server's kind (detected when the selector says auto-detect).

    Parameters
    ----------
    config:
        The ``ComfyConfig`` to edit (the client's, else a default one). ``panel.config`` is always current.
    client:
        The client in use (optional): the panel shows its server (URL, kind, whether it sends
        credentials, never them), tests it and offers "Use this server" to switch to what the form says.
    """

    def __init__(self, config: Any = None, *, client: Any = None) -> None:
        self._lock = threading.Lock()
        self.client = client
        """The client in use (``None`` for a panel that only edits a config)."""
        if config is None and client is not None:
            config = getattr(client, "config", None)
            if config is None:  # what submit_task would make; attached so Settings edits reach the tasks
                config = _config_class()(server_url=client.url)
                getattr(client, "aclient", client).config = config
        self.config = config if config is not None else _config_class()()
        self.capabilities: Any = None
        """ServerCapabilities from the last successful Test connection."""
        self.tested_kind: str | None = None
        """What the last successful Test connection found the server to be (``"Comfy Cloud (detected)"``)."""
        self._auth_typed = False
        self._use_listeners: list[Callable[[Any], None]] = []
        self.in_use = W.HTML("")
        self.in_use.add_class("cnb-in-use")
        lab = {"description_width": "90px"}
        self.url = W.Text(value=str(self._get("server_url") or ""), description="Server URL",
                          placeholder="http://127.0.0.1:8188", continuous_update=True, style=lab,
                          layout=field_layout("460px"))
        self.url_status = W.HTML("")
        self.url_status.add_class("cnb-url-status")
        self.kind = W.Dropdown(options=_KIND_OPTIONS, value=str(self._get("kind") or "auto"), description="Kind",
                               style=lab, layout=field_layout("300px"),
                               tooltip="auto-detect asks the server; Comfy Cloud needs an API key")
        self.api_key = _SecretField(description="API key", style=lab, layout=field_layout("300px"),
                                    continuous_update=False)
        self.username = W.Text(value=str(self._get("username") or ""), description="Username", style=lab,
                               layout=field_layout("300px"), continuous_update=False)
        self.token = _SecretField(description="Token", style=lab, layout=field_layout("300px"),
                                continuous_update=False)
        self.password = _SecretField(description="Password", style=lab, layout=field_layout("300px"),
                                   continuous_update=False)
        self.test_button = W.Button(description="Test connection", icon="plug", layout=field_layout("170px"))
        self.test_button.add_class("cnb-test-button")
        self.test_status = W.HTML("")
        self.test_status.add_class("cnb-test-status")
        self.use_button = W.Button(description="Use this server", icon="exchange", layout=field_layout("170px"),
                                   tooltip="Connect to the URL above and use it from now on")
        self.use_button.add_class("cnb-use-button")
        self.use_button.layout.display = "" if client is not None else "none"
        self.workflows: dict[str, W.Text] = {}
        wf = self._get("workflows") or {}
        for tt in sorted(set(_TASK_TYPES) | set(wf)):
            self.workflows[tt] = W.Text(value=str(wf.get(tt) or ""), description=tt, style=lab,
                                        placeholder="template name or path to a workflow .json",
                                        layout=field_layout("460px"), continuous_update=False)
        self.checkpoint = W.Dropdown(description="Checkpoint", style=lab, layout=field_layout("460px"))
        self.vae = W.Dropdown(description="VAE", style=lab, layout=field_layout("460px"))
        set_options(self.checkpoint, [], keep=self._get("checkpoint"), allow_none=True)
        set_options(self.vae, [], keep=self._get("vae"), allow_none=True)
        self.loras = LoraStack((), lora_triples(self._get("loras")))
        self.path = W.Text(description="File", placeholder="default location", style=lab,
                           layout=field_layout("460px"))
        self.save_button = W.Button(description="Save", icon="save", layout=field_layout("90px"))
        self.load_button = W.Button(description="Load", icon="folder-open", layout=field_layout("90px"))
        self.file_status = W.HTML("")

        self.url.observe(self._on_url, "value")
        self.username.observe(lambda c: self._set_auth("username", c["new"] or None), "value")
        self.token.observe(lambda c: self._on_secret("token", c), "value")
        self.password.observe(lambda c: self._on_secret("password", c), "value")
        self.api_key.observe(lambda c: self._on_secret("api_key", c), "value")
        self.kind.observe(lambda c: self._set("kind", c["new"]), "value")
        for tt, box in self.workflows.items():
            box.observe(lambda c, tt=tt: self._on_workflow(tt, c["new"]), "value")
        self.checkpoint.observe(lambda c: self._set("checkpoint", c["new"] or None), "value")
        self.vae.observe(lambda c: self._set("vae", c["new"] or None), "value")
        self.loras.on_change(lambda: self._set("loras", self.loras.value))
        self.test_button.on_click(lambda _b: self.test_connection())
        self.use_button.on_click(lambda _b: self.use_server())
        self.save_button.on_click(lambda _b: self.save())
        self.load_button.on_click(lambda _b: self.load())

        super().__init__([
            section("Server"),
            self.in_use,
            W.HBox([self.url, self.url_status], layout=W.Layout(align_items="center")),
            W.HBox([self.kind, self.api_key], layout=W.Layout(flex_flow="row wrap")),
            W.HBox([self.username], layout=W.Layout(flex_flow="row wrap")),
            W.HBox([self.token, self.password], layout=W.Layout(flex_flow="row wrap")),
            W.HBox([self.test_button, self.use_button], layout=W.Layout(flex_flow="row wrap")),
            self.test_status,
            section("Workflow per task type"),
            *self.workflows.values(),
            section("Preferred models"),
            self.checkpoint,
            self.vae,
            self.loras,
            section("Configuration file"),
            W.HBox([self.path, self.save_button, self.load_button], layout=W.Layout(flex_flow="row wrap")),
            self.file_status,
        ], layout=W.Layout(max_width="820px"))
        self.add_class("cnb-config-panel")
        self._on_url({"new": self.url.value})
        self._show_secret_state()
        self._show_in_use()
        if client is not None:  # what the client already knows (cached after its first call)
            self._probe_in_use(client)

    # -- config access ----------------------------------------------------------------------
    def _auth_holder(self) -> Any:
        auth = getattr(self.config, "auth", None)
        return auth if auth is not None and not isinstance(auth, (str, bytes)) else self.config

    def _get(self, name: str) -> Any:
        if name in ("username", *_SECRET_FIELDS):
            return getattr(self._auth_holder(), name, None)
        return getattr(self.config, name, None)

    def _set(self, name: str, value: Any) -> None:
        try:
            setattr(self.config, name, value)
        except Exception as exc:  # pydantic validation (validate_assignment)
            self.file_status.value = status_html(f"{name}: {exc}", "error")

    def _set_auth(self, name: str, value: Any) -> None:
        self._auth_typed = True
        holder = self._auth_holder()
        try:
            if name in _SECRET_FIELDS and value is not None:
                from pydantic import SecretStr

                value = SecretStr(value)
            setattr(holder, name, value)
        except Exception as exc:
            # never include the value: it may be a secret
            self.test_status.value = status_html(f"Cannot set {name}: {type(exc).__name__}", "error")

    # -- reactions --------------------------------------------------------------------------
    def _on_url(self, change: Any) -> None:
        problem = validate_url(change["new"])
        if problem is None:
            self.url_status.value = status_html("✓", "ok")
            self.test_button.disabled = self.use_button.disabled = False
            self._set("server_url", change["new"].strip().rstrip("/"))
        else:
            self.url_status.value = status_html(problem, "error")
            self.test_button.disabled = self.use_button.disabled = True

    def _on_secret(self, name: str, change: Any) -> None:
        value = change["new"]
        if not value:
            return
        self._set_auth(name, value)
        self._secret_boxes()[name].value = ""  # never keep (or echo) the secret in widget state
        self._show_secret_state()

    def _secret_boxes(self) -> dict[str, _SecretField]:
        return {"token": self.token, "password": self.password, "api_key": self.api_key}

    def _show_secret_state(self) -> None:
        for name, box in self._secret_boxes().items():
            box.placeholder = "•••••• (set — type to replace)" if reveal(self._get(name)) else "not set"

    def _on_workflow(self, task_type: str, value: str) -> None:
        wf = dict(self._get("workflows") or {})
        if value.strip():
            wf[task_type] = value.strip()
        else:
            wf.pop(task_type, None)
        self._set("workflows", wf)

    def _probe_in_use(self, client: Any) -> None:
        """Fill the in-use line with what the client's server is (cached by the client after one call)."""

        def show(caps: Any) -> None:
            if self.client is client:  # not a late answer about a server no longer in use
                self._show_in_use(caps)

        _bg.on_done(_bg.call(client, "capabilities"), show, lambda _exc: None)

    def _show_in_use(self, caps: Any = None) -> None:
        client = self.client
        self.in_use.value = "" if client is None else in_use_html(
            str(client.url), getattr(client, "auth", None), caps, getattr(client, "kind", None)
        )

    def _form_is_client(self) -> bool:
        """Whether the form still says what the client in use already is (same URL and kind, no new credentials)."""
        client = self.client
        return (client is not None and not self._auth_typed and self.url.value.strip().rstrip("/") == client.url
                and self.kind.value in ("auto", str(getattr(client, "kind", None))))

    # -- actions ----------------------------------------------------------------------------
    def _make_client(self) -> Any:
        from ..client import ComfyClient

        return ComfyClient(self.config.server_url, config=self.config)

    def on_use(self, callback: Callable[[Any], None]) -> None:
        """Call ``callback(new_client)`` when "Use this server" has connected a new client."""
        self._use_listeners.append(callback)

    def use_server(self) -> Any:
        """Connect a client to the server the form names and make it the one in use (in the background).

        Returns a Future of the new client (or of the error); the old client is left open for its jobs.
        """
        problem = validate_url(self.url.value)
        if problem is not None:
            self.test_status.value = status_html(problem, "error")
            return None
        self.test_status.value = status_html("Connecting…")
        self.use_button.disabled = True
        fut = _bg.run_in_pool(self._make_client)
        _bg.on_done(fut, self._switched, self._test_failed)
        return fut

    def _switched(self, client: Any) -> None:
        self.client = client
        self._auth_typed = False
        self.use_button.disabled = False
        self.test_status.value = status_html(f"Now using {client.url}", "ok")
        self._show_in_use()
        for callback in tuple(self._use_listeners):
            try:
                callback(client)
            except Exception:  # one broken listener must not stop the others
                log.exception("a ConfigPanel on_use callback raised")
        self._probe_in_use(client)

    def test_connection(self) -> Any:
        """Connect with the current settings in the background; the result shows under the button.

        Returns a Future of the ``ServerCapabilities`` (or of the error).
        """
        problem = validate_url(self.url.value)
        if problem is not None:
            self.test_status.value = status_html(problem, "error")
            return None
        self.test_status.value = status_html("Connecting…")
        self.test_button.disabled = True

        in_use = self.client if self._form_is_client() else None

        def _probe() -> tuple[Any, str, list[str], list[str], list[str]]:
            client = in_use if in_use is not None else self._make_client()
            try:
                try:
                    caps = _blocking(client, "capabilities", refresh=True)
                except NotAvailable:  # a Comfy API v2 endpoint: it answered the connect, and has no stats
                    caps = None
                kind = kind_text(getattr(client, "kind", None), detected=self.kind.value == "auto")
                lists = []
                for folder in ("checkpoints", "vae", "loras"):
                    try:
                        lists.append(list(_blocking(client, "models", folder)))
                    except Exception:
                        lists.append([])
                return caps, kind, lists[0], lists[1], lists[2]
            finally:
                if client is not in_use:
                    client.close()

        fut = _bg.run_in_pool(_probe)
        _bg.on_done(fut, self._tested, self._test_failed)
        return fut

    def _tested(self, result: tuple[Any, str, list[str], list[str], list[str]]) -> None:
        caps, kind, ckpts, vaes, loras = result
        self.capabilities = caps
        self.tested_kind = kind
        self.test_button.disabled = False
        self.test_status.value = caps_html(caps, kind)
        if self._form_is_client():
            self._show_in_use(caps)
        set_options(self.checkpoint, ckpts, allow_none=True)
        set_options(self.vae, vaes, allow_none=True)
        self.loras.names = loras

    def _test_failed(self, exc: BaseException) -> None:
        self.capabilities = self.tested_kind = None
        self.test_button.disabled = self.use_button.disabled = False
        self.test_status.value = status_html(f"Connection failed: {type(exc).__name__}: {exc}", "error")

    def save(self, path: str | None = None) -> Any:
        """Save the config (to ``path``, the File field, or the default location); returns the path."""
        target = path or self.path.value.strip() or None
        try:
            where = self.config.save(target)
        except Exception as exc:
            self.file_status.value = status_html(f"Could not save: {exc}", "error")
            return None
        self.file_status.value = status_html(f"Saved to {where or target or 'the default location'}", "ok")
        return where

    def load(self, path: str | None = None) -> Any:
        """Load a config (from ``path``, the File field, or the default location) into the form."""
        target = path or self.path.value.strip() or None
        try:
            cfg = _config_class().load(target)
        except Exception as exc:
            self.file_status.value = status_html(f"Could not load: {exc}", "error")
            return None
        self.set_config(cfg)
        self.file_status.value = status_html(f"Loaded {target or 'the default configuration'}", "ok")
        return cfg

    def set_config(self, config: Any) -> None:
        """Show ``config`` in the form (it becomes ``self.config``)."""
        self.config = config
        self.url.value = str(self._get("server_url") or "")
        self.kind.value = str(self._get("kind") or "auto")
        self.username.value = str(self._get("username") or "")
        wf = self._get("workflows") or {}
        for tt, box in self.workflows.items():
            box.value = str(wf.get(tt) or "")
        set_options(self.checkpoint, [v for v in self.checkpoint._options_values if v], keep=self._get("checkpoint"),
                    allow_none=True)
        set_options(self.vae, [v for v in self.vae._options_values if v], keep=self._get("vae"), allow_none=True)
        self.loras.value = lora_triples(self._get("loras"))
        self._show_secret_state()

    def __repr__(self) -> str:
        url = self.url.value.strip()
        kind = "" if self.kind.value == "auto" else f", kind={self.kind.value!r}"
        return f"ConfigPanel(server_url={url!r}{kind})"


def _blocking(client: Any, name: str, *args: Any, **kwargs: Any) -> Any:
    """Call a client method from a worker thread, whether the client is blocking or async."""
    method = getattr(client, name)
    if inspect.iscoroutinefunction(method):
        return client.spawn(method(*args, **kwargs)).result(timeout=_PROBE_TIMEOUT)
    return method(*args, **kwargs)
