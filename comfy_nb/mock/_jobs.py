"""The jobs API of newer ComfyUI servers and of Comfy Cloud (``/api/jobs``), off by default.

ComfyUI 0.3.64 (what the mock emulates) has no jobs API; later servers add ``GET /api/jobs``,
``GET /api/jobs/{job_id}`` (shapes from ``comfy_execution/jobs.py``: ``pending`` / ``in_progress`` /
``completed`` / ``failed``) and ``POST /api/jobs/{job_id}/cancel`` (interrupt if running, dequeue if
pending), which ``comfy-api-proxy`` calls to cancel. ``MockServer(jobs_api=True)`` (and the cloud
mode) turn these routes on.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ._executor import SENSITIVE_EXTRA, Executor

__all__ = ["add_jobs_routes"]

_STATUSES = ("pending", "in_progress", "completed", "failed")


def _queue_job(item: list[Any], status: str) -> dict[str, Any]:
    extra = item[3] if isinstance(item[3], dict) else {}
    job: dict[str, Any] = {"id": item[1], "status": status, "priority": item[0], "outputs_count": 0}
    if extra.get("create_time") is not None:
        job["create_time"] = extra["create_time"]
    return job


def _history_job(prompt_id: str, entry: dict[str, Any], full: bool) -> dict[str, Any]:
    status_info = entry.get("status") or {}
    failed = status_info.get("status_str") == "error"
    job: dict[str, Any] = {"id": prompt_id, "status": "failed" if failed else "completed"}
    prompt = entry.get("prompt") or [0, prompt_id, {}, {}, []]
    job["priority"] = prompt[0]
    extra = prompt[3] if isinstance(prompt[3], dict) else {}
    if extra.get("create_time") is not None:
        job["create_time"] = extra["create_time"]
    count = 0
    for node_out in (entry.get("outputs") or {}).values():
        for kind, items in (node_out or {}).items():
            if kind != "animated" and isinstance(items, list):
                count += sum(1 for it in items if isinstance(it, dict))
    job["outputs_count"] = count
    for event, data in status_info.get("messages") or []:
        if not isinstance(data, dict):
            continue
        if event == "execution_start":
            job["execution_start_time"] = data.get("timestamp")
        elif event in ("execution_success", "execution_error", "execution_interrupted"):
            job["execution_end_time"] = data.get("timestamp")
            if event == "execution_error":
                job["execution_error"] = data
    if full:
        job["outputs"] = entry.get("outputs") or {}
        job["execution_status"] = status_info
        job["workflow"] = {"prompt": prompt[2], "extra_data": {k: v for k, v in extra.items() if k not in SENSITIVE_EXTRA}}
    return job


def add_jobs_routes(executor: Executor, router: web.UrlDispatcher) -> None:
    """Register ``/api/jobs``, ``/api/jobs/{job_id}`` and ``/api/jobs/{job_id}/cancel`` on ``router``."""

    async def list_jobs(request: web.Request) -> web.StreamResponse:
        q = request.rel_url.query
        wanted = [s for s in q.get("status", "").split(",") if s] or list(_STATUSES)
        if any(s not in _STATUSES for s in wanted):
            return web.json_response({"error": f"Invalid status filter; use {', '.join(_STATUSES)}"}, status=400)
        try:
            limit = int(q["limit"]) if "limit" in q else None
            offset = int(q.get("offset", 0))
        except ValueError:
            return web.json_response({"error": "limit and offset must be integers"}, status=400)
        ex = executor
        jobs: list[dict[str, Any]] = []
        if "in_progress" in wanted:
            jobs += [_queue_job(i, "in_progress") for i in ex.running_items()]
        if "pending" in wanted:
            jobs += [_queue_job(i, "pending") for i in ex.pending_items()]
        for pid, entry in reversed(list(ex.history.items())):
            job = _history_job(pid, entry, full=False)
            if job["status"] in wanted:
                jobs.append(job)
        total = len(jobs)
        jobs = jobs[offset:] if offset > 0 else jobs
        jobs = jobs[:limit] if limit is not None else jobs
        pagination = {"offset": offset, "limit": limit, "total": total, "has_more": offset + len(jobs) < total}
        return web.json_response({"jobs": jobs, "pagination": pagination})

    def find(job_id: str) -> dict[str, Any] | None:
        ex = executor
        if job_id in ex.history:
            return _history_job(job_id, ex.history[job_id], full=True)
        for item in ex.running_items():
            if item[1] == job_id:
                return _queue_job(item, "in_progress")
        for item in ex.pending_items():
            if item[1] == job_id:
                return _queue_job(item, "pending")
        return None

    async def get_job(request: web.Request) -> web.StreamResponse:
        job = find(request.match_info["job_id"])
        if job is None:
            return web.json_response({"error": "Job not found"}, status=404)
        return web.json_response(job)

    async def cancel_job(request: web.Request) -> web.StreamResponse:
        job_id = request.match_info["job_id"]
        job = find(job_id)
        if job is None:
            return web.json_response({"error": "Job not found"}, status=404)
        if job["status"] == "in_progress":
            executor.interrupt(job_id)
        elif job["status"] == "pending":
            executor.delete(job_id)
        else:
            return web.json_response({"error": f"Job already {job['status']}"}, status=409)
        return web.json_response({"id": job_id, "cancelled": True})

    router.add_route("GET", "/api/jobs", list_jobs)
    router.add_route("GET", "/api/jobs/{job_id}", get_job)
    router.add_route("POST", "/api/jobs/{job_id}/cancel", cancel_job)
