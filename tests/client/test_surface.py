"""The blocking twins keep the async surface: same public names, same parameters; every job kind is a JobLike."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from comfy_nb import _display
from comfy_nb.client import AsyncComfyClient, BlockingJob, ClientLike, ComfyClient, Job, JobLike
from comfy_nb.experiments import PoolJob
from comfy_nb.mock import MockServer

# The only intended differences: how a client is opened and closed.
ASYNC_ONLY = {"connect", "aclose"}
BLOCKING_ONLY = {"close", "aclient"}  # ``aclient``: the async client it drives, for ``await`` code

# The client's follow-state, kept on Job for now; it moves into the follower when the client is split.
FOLLOW_STATE = {"foreign", "heard", "vanished"}

TINY = {
    "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
    "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "surface/img"}},
}

# mypy checks these: each job kind fits where the widgets take a JobLike, each client where they take a ClientLike.
_job_kinds: tuple[Callable[[Job], JobLike], Callable[[BlockingJob], JobLike], Callable[[PoolJob], JobLike]] = (
    lambda job: job, lambda job: job, lambda job: job,
)
_client_kinds: tuple[Callable[[AsyncComfyClient], ClientLike], Callable[[ComfyClient], ClientLike]] = (
    lambda client: client, lambda client: client,
)


def public(obj: object) -> set[str]:
    return {name for name in dir(obj) if not name.startswith("_")}


def parameters(method: Callable[..., Any]) -> list[tuple[str, Any, Any]]:
    """Name, kind and default of each parameter after ``self``."""
    params = list(inspect.signature(method).parameters.values())[1:]
    return [(p.name, p.kind, p.default) for p in params]


def mismatched(a: object, b: object) -> list[str]:
    out = []
    for name in sorted(public(a) & public(b)):
        left, right = inspect.getattr_static(type(a), name, None), inspect.getattr_static(type(b), name, None)
        if callable(left) and callable(right) and parameters(left) != parameters(right):
            out.append(f"{name}: {inspect.signature(left)} vs {inspect.signature(right)}")
    return out


def test_blocking_and_async_clients_have_the_same_surface(mock_server: MockServer) -> None:
    aclient = AsyncComfyClient(mock_server.url)
    with ComfyClient(mock_server.url) as client:
        assert public(aclient) - public(client) == ASYNC_ONLY
        assert public(client) - public(aclient) == BLOCKING_ONLY
        assert mismatched(aclient, client) == []


def test_blocking_and_async_jobs_have_the_same_surface(mock_server: MockServer) -> None:
    with ComfyClient(mock_server.url) as client:
        job = client.submit(TINY)
        statuses = list(job.updates())
        assert statuses[-1].terminal and statuses[-1] == job.status
        assert public(job.async_job) - FOLLOW_STATE == public(job) - {"async_job"}
        assert mismatched(job.async_job, job) == []


def test_jobs_show_through_the_display_registry(mock_server: MockServer) -> None:
    """A job asks the registry for its view (no import of widgets from the client layer)."""
    with ComfyClient(mock_server.url) as client:
        job = client.submit(TINY)
        job.wait(60)
        for shown in (job, job.async_job):
            bundle = shown._repr_mimebundle_()
            assert "application/vnd.jupyter.widget-view+json" in bundle
            assert bundle["text/plain"].startswith("JobView(")


def test_display_falls_back_to_plain_text_without_a_viewer() -> None:
    class Unviewed:
        def __repr__(self) -> str:
            return "Unviewed()"

    assert _display.mimebundle(Unviewed()) == {"text/plain": "Unviewed()"}
