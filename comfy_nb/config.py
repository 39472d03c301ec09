"""``ComfyConfig``: where the server is, how to authenticate, which workflow runs each task type.

Stored as JSON in ``platformdirs.user_config_dir("comfy_nb")/config.json`` (or a path you give),
written with mode 0600. ``COMFY_URL`` and ``COMFY_TOKEN`` override the file when loading. Secrets
(token, password, extra headers) never appear in ``repr``/``str``/``model_dump``; they are written
to disk only by ``save(reveal_secrets=True)``. It imports only ``errors`` and the protocol's URL rule.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

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
from .protocol import server_url_problem

__all__ = ["DEFAULT_WORKFLOWS", "TASK_TYPES", "ComfyConfig", "LoraSpec", "default_config_path"]

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
_SECRET_FIELDS = ("token", "password", "headers")
_RETIRED_KEYS = frozenset({"connect_timeout", "retry_backoff"})


def default_config_path() -> Path:
    return Path(platformdirs.user_config_dir("comfy_nb")) / "config.json"


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


class ComfyConfig(BaseModel):
    """Server, auth, timeouts and preferred models; ``is_configured`` once a server URL is set."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    server_url: str | None = None
    token: SecretStr | None = Field(default=None, repr=False, exclude=True)
    username: str | None = None
    password: SecretStr | None = Field(default=None, repr=False, exclude=True)
    headers: dict[str, SecretStr] = Field(default_factory=dict, repr=False, exclude=True)
    """Extra HTTP headers (e.g. a proxy's API key); treated as secrets."""
    timeout: float = Field(default=30.0, gt=0)
    max_retries: int = Field(default=3, ge=0)
    workflows: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_WORKFLOWS))
    """Task type (image, img2img, video, upscale, inpaint, grid) → template name or workflow file path."""
    checkpoint: str | None = None
    vae: str | None = None
    loras: list[LoraSpec] = Field(default_factory=list)
    upscale_model: str | None = None

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise _config_error(exc) from None

    def __setattr__(self, name: str, value: Any) -> None:
        try:
            super().__setattr__(name, value)
        except ValidationError as exc:
            raise _config_error(exc) from None

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
        """Read the file (defaults if it does not exist), then apply ``COMFY_URL``/``COMFY_TOKEN``."""
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
        for env, key in (("COMFY_URL", "server_url"), ("COMFY_TOKEN", "token")):
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
        if error["loc"] and error["loc"][0] in _SECRET_FIELDS:
            message = error["type"]
        problems.append(f"{field}: {message}")
    return ConfigError("invalid configuration: " + "; ".join(problems))
