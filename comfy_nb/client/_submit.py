"""``POST /prompt`` without ever queuing a prompt twice (the client makes the prompt id)."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from ..errors import (
    ClientClosed,
    ComfyConnectionError,
    ComfyError,
    ComfyTimeout,
    ConfigError,
    NodeInputError,
    RequestInfo,
    ResponseInfo,
    ServerError,
    WorkflowError,
)
from ..protocol import PromptResponse, node_errors_to_list, prompt_validation_error
from ._retry import is_retryable_status, retry_delay
from ._transport import Transport, json_body, safe_json, status_error

__all__ = ["dropped_outputs", "new_prompt_id", "post_prompt", "prompt_body"]

log = logging.getLogger("comfy_nb")


def new_prompt_id(prompt_id: str | None, *, taken: bool) -> str:
    """The id of a new job: the caller's (checked; ``taken`` when this client already has it) or a UUID."""
    if prompt_id is not None and (not isinstance(prompt_id, str) or not prompt_id.strip()):
        raise WorkflowError(f"prompt_id must be a non-empty string, not {prompt_id!r}")
    if taken:
        raise WorkflowError(f"prompt {prompt_id} was already submitted by this client: give a new prompt_id")
    return prompt_id or str(uuid.uuid4())


def prompt_body(
    graph: dict[str, Any],
    client_id: str,
    pid: str,
    *,
    extra_data: Mapping[str, Any] | None,
    front: bool,
    number: float | None,
    partial_targets: list[str] | None,
    partner_nodes: bool,
    api_key: str | None,
) -> dict[str, Any]:
    """The body of ``POST /prompt``. With ``partner_nodes`` (the caller opted in, never by default) the
    API key goes as ``extra_data.api_key_comfy_org``: paid partner nodes bill to it."""
    body: dict[str, Any] = {"prompt": graph, "client_id": client_id, "prompt_id": pid}
    extra = dict(extra_data or {})
    if partner_nodes:
        if not api_key:
            raise ConfigError("partner_nodes=True needs an API key: pass api_key='...' to the client "
                              "(or set ComfyConfig.api_key / $COMFY_API_KEY)")
        extra["api_key_comfy_org"] = api_key
    if extra:
        body["extra_data"] = extra
    if number is not None:
        body["number"] = number
    elif front:
        body["front"] = True
    if partial_targets:
        body["partial_execution_targets"] = list(partial_targets)
    return body


def dropped_outputs(node_errors: dict[str, Any], graph: dict[str, Any], pid: str) -> tuple[NodeInputError, ...]:
    """The outputs a 200 dropped as invalid, logged as a warning (never silent)."""
    errors = tuple(node_errors_to_list(node_errors, graph))
    log.warning(
        "comfy_nb: prompt %s was queued without its invalid outputs:\n%s",
        pid, "\n".join(f"  - {e.describe()}" for e in errors),
    )
    return errors


async def post_prompt(
    transport: Transport,
    body: dict[str, Any],
    graph: dict[str, Any],
    pid: str,
    *,
    server_knows: Callable[[str], Awaitable[bool]],
    heard: Callable[[str], bool],
) -> PromptResponse | None:
    """POST /prompt, never queuing the same prompt twice.

    The client makes the prompt id, so the server's queue and history say whether an attempt got
    through. A connection refused or a 5xx is retried after checking that; a request that timed out
    may still be in the server's hands (a slow validation), so it is never sent again: the client
    watches for the id instead (socket events, queue, history) for up to another ``timeout``.
    """
    url = f"{transport.base_url}/prompt"
    request = RequestInfo("POST", url)
    for attempt in range(transport.max_retries + 1):
        last = attempt == transport.max_retries
        failure: ComfyError
        try:
            response = await transport.exchange("POST", "/prompt", json_body=body)
        except ClientClosed:
            raise
        except ComfyTimeout:
            await _await_unanswered(transport, pid, request, server_knows, heard)
            return None
        except ComfyConnectionError as exc:
            failure = exc
        else:
            if response.status_code == 200:
                parsed = json_body(response, "POST", url)
                if not isinstance(parsed, dict):
                    raise ServerError(
                        f"POST {url} answered 200 with an unexpected body (prompt {pid} may be queued)",
                        request=request, response=ResponseInfo.from_parts(200, response.content),
                    )
                return PromptResponse.model_validate(parsed)
            if response.status_code == 400:
                raise prompt_validation_error(
                    safe_json(response), prompt=graph, request=request,
                    response=ResponseInfo.from_parts(400, response.content),
                )
            failure = status_error(response, "POST", url)
            if not is_retryable_status(response.status_code):
                raise failure
        if last:
            raise failure
        await asyncio.sleep(retry_delay(attempt))
        if await server_knows(pid):
            return None  # the first attempt got through; its answer was lost
    raise failure

async def _await_unanswered(
    transport: Transport,
    pid: str,
    request: RequestInfo,
    server_knows: Callable[[str], Awaitable[bool]],
    heard: Callable[[str], bool],
) -> None:
    """A POST /prompt timed out: it may be queued yet. Look for the id, never send it again;
    ``ComfyTimeout`` if it does not appear within another ``timeout``."""
    deadline = time.monotonic() + transport.timeout
    attempt = 0
    while True:
        if heard(pid) or await server_knows(pid):
            log.warning("comfy_nb: POST /prompt for %s timed out, but the server has it; following it", pid)
            return
        if time.monotonic() >= deadline:
            raise ComfyTimeout(
                f"POST {request.url} got no answer within {transport.timeout} s and prompt {pid} has not appeared "
                f"in the server's queue or history since; it was not sent again (that could queue it "
                f"twice). Check later with client.status({pid!r}), or raise `timeout=` for a busy server",
                request=request,
            )
        await asyncio.sleep(min(retry_delay(attempt), max(0.0, deadline - time.monotonic())))
        attempt += 1
