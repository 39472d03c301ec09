"""``ComfyConfig``: where the server is, how to authenticate, which workflow runs each task type.

Stored as JSON in ``platformdirs.user_config_dir("comfy_nb")/config.json`` (or a path you give),
written with mode 0600. ``COMFY_URL``, ``COMFY_TOKEN`` and ``COMFY_API_KEY`` override the file when
loading. Secrets (token, password, API key, extra headers) never appear in ``repr``/``str``/``model_dump``; they are written
to disk only by ``save(reveal_secrets=True)``. It imports only ``errors`` and the protocol's URL rule.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Literal, get_args

import platformdirs
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from ._files import write_atomic
from .errors import ConfigError
from .protocol import redact_url, server_url_problem, split_userinfo

__all__ = [
    "DEFAULT_WORKFLOWS",
    "SERVER_KINDS",
    "TASK_TYPES",
    "ComfyConfig",
    "LoraSpec",
    "ModelChoice",
    "check_kind",
    "check_max_retries",
    "check_secret_header",
    "check_timeout",
    "default_config_path",
    "redact_url",
    "split_userinfo",
]

TASK_TYPES = ("image", "video", "upscale", "inpaint", "grid")
DEFAULT_WORKFLOWS: dict[str, str] = {
    "image": "txt2img",
    "img2img": "img2img",
    "video": "video",
    "upscale": "upscale",
    "inpaint": "inpaint",
    "grid": "grid",
}
"""Task type → built-in template. ``img2img`` is used for an ``image`` task that has an init image."""
_WORKFLOW_KEYS = frozenset(DEFAULT_WORKFLOWS)
_SECRET_FIELDS = ("token", "password", "api_key", "headers")
KindSetting = Literal["auto", "comfyui", "cloud", "v2"]
SERVER_KINDS: tuple[str, ...] = get_args(KindSetting)
"""What ``kind=`` accepts: ``auto`` (detect it), a native ``comfyui``, Comfy ``cloud``, a Comfy API ``v2`` endpoint."""
_RETIRED_KEYS = frozenset({"connect_timeout", "retry_backoff"})


def default_config_path() -> Path:
    return Path(platformdirs.user_config_dir("comfy_nb")) / "config.json"


# -- checks shared by ComfyConfig and the client (one rule in one place) ----------------------------


def header_value_problem(value: str) -> str | None:
    """Why ``value`` cannot be sent as an HTTP header value, without quoting it (it may be a secret)."""
    for index, char in enumerate(value):
        if char in "\r\n":
            where = "at its end (a trailing newline, e.g. from a file)" if not value[index:].strip() else (
                f"at position {index}"
            )
            return f"contains a line break {where}: strip it, e.g. token.strip()"
        if ord(char) > 126 or (ord(char) < 32 and char != "\t"):
            kind = "a curly quote (pasted from a document?)" if char in "\u2018\u2019\u201c\u201d" else (
                f"the character U+{ord(char):04X}"
            )
            return f"contains {kind} at position {index}: HTTP headers carry only printable ASCII"
    if value != value.strip():
        return "starts or ends with spaces: strip it"
    return None


def check_secret_header(value: str, what: str) -> str:
    """``value`` if it can be sent as a header, else ``ConfigError`` naming ``what`` (never the value)."""
    if not isinstance(value, str):
        raise ConfigError(f"{what} must be a string, not {type(value).__name__}")
    problem = header_value_problem(value)
    if problem is not None:
        raise ConfigError(f"{what} {problem}")
    return value


def check_timeout(value: Any, what: str = "timeout") -> float:
    """A positive, finite number of seconds, else ``ConfigError``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{what} must be a number of seconds, not {type(value).__name__}")
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{what} must be a positive number of seconds (got {value}); e.g. {what}=30")
    return float(value)


def check_kind(value: Any) -> KindSetting:
    """One of ``SERVER_KINDS``, else ``ConfigError`` listing them."""
    if value not in SERVER_KINDS:
        raise ConfigError(f"kind must be one of {', '.join(SERVER_KINDS)} (got {value!r}); 'auto' detects it")
    return value  # type: ignore[no-any-return]


def check_max_retries(value: Any) -> int:
    """A count of retries >= 0, else ``ConfigError``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"max_retries must be a whole number >= 0 (got {value!r}); 0 turns retries off")
    return value


class LoraSpec(BaseModel):
    """A LoRA to apply, with its strengths on the model and on CLIP."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    strength_model: float = 1.0
    strength_clip: float = 1.0

    @model_validator(mode="before")
    @classmethod
    def _from_sequence(cls, data: Any) -> Any:
        """Accept ``"name"``, ``("name", strength)`` and ``("name", strength_model, strength_clip)``."""
        if isinstance(data, str):
            return {"name": data}
        if isinstance(data, (list, tuple)) and 1 <= len(data) <= 3:
            strengths = list(data[1:]) + [data[1]] * (len(data) == 2)
            return dict(zip(("name", "strength_model", "strength_clip"), [data[0], *strengths], strict=True))
        return data


class ModelChoice(BaseModel):
    """Preferred models for one task type or model family; ``None`` keeps the workflow's own.

    ``checkpoint`` fills ``CheckpointLoaderSimple``; ``diffusion_model``, ``text_encoder`` and ``vae``
    fill ``UNETLoader``, ``CLIPLoader`` and ``VAELoader`` of families that ship in parts.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    checkpoint: str | None = None
    diffusion_model: str | None = None
    text_encoder: str | None = None
    vae: str | None = None
    loras: list[LoraSpec] = Field(default_factory=list)


class ComfyConfig(BaseModel):
    """Server, auth, timeouts and preferred models; ``is_configured`` once a server URL is set."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    server_url: str | None = None
    kind: KindSetting = "auto"
    """The server's kind (``SERVER_KINDS``); ``auto`` detects it at connect."""
    token: SecretStr | None = Field(default=None, repr=False, exclude=True)
    username: str | None = None
    password: SecretStr | None = Field(default=None, repr=False, exclude=True)
    api_key: SecretStr | None = Field(default=None, repr=False, exclude=True)
    """A Comfy API key (Comfy Cloud's ``X-API-Key``, a v2 endpoint's bearer key); sent only to ``server_url``."""
    headers: dict[str, SecretStr] = Field(default_factory=dict, repr=False, exclude=True)
    """Extra HTTP headers (e.g. a proxy's API key); treated as secrets."""
    timeout: float = Field(default=30.0, gt=0, allow_inf_nan=False)
    max_retries: int = Field(default=3, ge=0)
    workflows: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_WORKFLOWS))
    """Task type (image, img2img, video, upscale, inpaint, grid) → template name or workflow file path."""
    checkpoint: str | None = None
    vae: str | None = None
    loras: list[LoraSpec] = Field(default_factory=list)
    """``checkpoint``, ``vae`` and ``loras``: preferences for image tasks whose graph loads a checkpoint."""
    upscale_model: str | None = None
    models: dict[str, ModelChoice] = Field(default_factory=dict)
    """Task type (``"video"``, ``"inpaint"``...) or model family (``"sdxl"``, ``"wan21"``...) → preferred
    models; a task type's choice wins over its family's, and both over the simple fields above."""

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise _config_error(exc) from None

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "server_url" and isinstance(value, str):
            value, user, password = split_userinfo(value.strip())
            if user is not None:  # credentials given with the new URL replace the old ones
                self.username = user
            if password is not None:
                self.password = SecretStr(password)
        try:
            super().__setattr__(name, value)
        except ValidationError as exc:
            raise _config_error(exc) from None

    @model_validator(mode="before")
    @classmethod
    def _userinfo_to_secrets(cls, data: Any) -> Any:
        """``http://user:pw@host`` is accepted, but the password is kept as a secret, not in the URL."""
        if isinstance(data, dict) and isinstance(data.get("server_url"), str):
            url, user, password = split_userinfo(data["server_url"].strip())
            if user is not None or password is not None:
                data = {**data, "server_url": url}
                if user is not None and data.get("username") is None:
                    data["username"] = user
                if password is not None and data.get("password") is None:
                    data["password"] = password
        return data

    @field_validator("token", "api_key")
    @classmethod
    def _check_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            problem = header_value_problem(value.get_secret_value())
            if problem is not None:
                raise ValueError(problem)
        return value

    @field_validator("headers")
    @classmethod
    def _check_headers(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for name, secret in value.items():
            problem = header_value_problem(secret.get_secret_value())
            if problem is not None:
                raise ValueError(f"header {name!r} {problem}")
        return value

    def __repr__(self) -> str:
        """The fields that differ from the defaults; a secret shows only as ``***`` (that it is set)."""
        parts = []
        for name, info in type(self).model_fields.items():
            value = getattr(self, name)
            if value == info.get_default(call_default_factory=True):
                continue
            parts.append(f"{name}=***" if name in _SECRET_FIELDS else f"{name}={value!r}")
        return f"ComfyConfig({', '.join(parts)})"

    def __str__(self) -> str:
        return repr(self)

    @field_validator("server_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        problem = server_url_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value.strip().rstrip("/")

    @field_validator("workflows")
    @classmethod
    def _check_workflow_keys(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - _WORKFLOW_KEYS)
        if unknown:
            raise ValueError(
                f"unknown task type(s) {', '.join(unknown)}; use {', '.join(sorted(_WORKFLOW_KEYS))}"
            )
        return value

    @property
    def is_configured(self) -> bool:
        """True once a server URL is set."""
        return self.server_url is not None

    # -- persistence ---------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None) -> ComfyConfig:
        """Read the file (defaults if it does not exist), then apply ``COMFY_URL``/``COMFY_TOKEN``/``COMFY_API_KEY``."""
        file = Path(path) if path is not None else default_config_path()
        data: dict[str, Any] = {}
        if file.exists():
            try:
                data = json.loads(file.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(f"cannot read config file {file}: {exc}") from None
            except ValueError as exc:
                raise ConfigError(f"config file {file} is not valid JSON: {exc}") from None
            if not isinstance(data, dict):
                raise ConfigError(f"config file {file} must hold a JSON object")
        for key in _RETIRED_KEYS & data.keys():  # saved by earlier versions, never used by the client
            del data[key]
        for env, key in (("COMFY_URL", "server_url"), ("COMFY_TOKEN", "token"), ("COMFY_API_KEY", "api_key")):
            if os.environ.get(env):
                data[key] = os.environ[env]
        try:
            return cls.model_validate(data)
        except ConfigError as exc:
            raise ConfigError(f"config file {file}: {exc}") from None

    def save(self, path: str | os.PathLike[str] | None = None, *, reveal_secrets: bool = False) -> Path:
        """Write JSON with mode 0600; secrets are written only with ``reveal_secrets=True``."""
        file = Path(path) if path is not None else default_config_path()
        data = self.model_dump(mode="json")
        if reveal_secrets:
            if self.token is not None:
                data["token"] = self.token.get_secret_value()
            if self.password is not None:
                data["password"] = self.password.get_secret_value()
            if self.api_key is not None:
                data["api_key"] = self.api_key.get_secret_value()
            if self.headers:
                data["headers"] = {k: v.get_secret_value() for k, v in self.headers.items()}
        write_atomic(file, json.dumps(data, indent=2) + "\n")  # created 0600: it may hold secrets
        return file

    @classmethod
    def model_validate(cls, obj: Any, **kwargs: Any) -> ComfyConfig:
        try:
            return super().model_validate(obj, **kwargs)
        except ValidationError as exc:
            raise _config_error(exc) from None


def _config_error(exc: ValidationError) -> ConfigError:
    """Name every bad field and why, without echoing values (they may be secrets)."""
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        field = ".".join(str(part) for part in error["loc"]) or "config"
        message = error["msg"].removeprefix("Value error, ")
        if error["loc"] and error["loc"][0] in _SECRET_FIELDS and error["type"] != "value_error":
            message = error["type"]  # our own checks never quote the value; pydantic's might
        problems.append(f"{field}: {message}")
    return ConfigError("invalid configuration: " + "; ".join(problems))
