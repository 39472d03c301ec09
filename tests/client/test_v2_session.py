"""V2Session against a small scripted v2 server of the test's own (real sockets on 127.0.0.1).

The script reproduces comfy-api-proxy 0.1.6's ``expired`` race deterministically: the job reads
``running``, then ``expired`` once (the proxy's /history-then-/queue gap), then ``succeeded``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from comfy_nb.client._v2 import V2Session, blake3_hash
from comfy_nb.errors import JobLost, PromptValidationError, ServerError
from comfy_nb.protocol import V2Event, V2ProgressEvent

KEY = "sk-test-SECRET-0123456789"


@dataclass
class Script:
    """What the fake endpoint answers, and what it saw."""

    statuses: list[str] = field(default_factory=list)  # GET /jobs/{id} answers, last one repeats
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    fail_first_submit: bool = False
    refuse_labels: bool = False
    busy: int = 0  # answer GET /jobs/{id} with 429 queue_full this many times first
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)  # Idempotency-Key -> job id
    gets: int = 0
    submits: int = 0
    blobs: dict[str, bytes] = field(default_factory=dict)
    uploads: int = 0
    storage_headers: list[dict[str, str]] = field(default_factory=list)
    auth_seen: list[str | None] = field(default_factory=list)


def _job(base: str, job_id: str, status: str, metadata: str | None) -> dict[str, Any]:
    outputs = []
    if status == "succeeded":
        outputs = [
            {"node_id": "9", "name": "out.png", "type": "image", "content_type": "image/png", "size_bytes": 3,
             "id": "asset-1", "hash": None, "url": f"{base}/api/v2/assets/asset-1/content"}
        ]
    error = {"code": "node_execution_error", "message": "boom", "node_id": "1"} if status == "failed" else None
    return {"id": job_id, "status": status, "outputs": outputs, "metadata": metadata, "error": error,
            "progress": None, "queue_position": None}


async def _start(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}"


@pytest.fixture
async def storage(script: Script) -> AsyncIterator[str]:
    """A second origin that serves bytes and records the headers it got."""

    async def blob(request: web.Request) -> web.Response:
        script.storage_headers.append(dict(request.headers))
        return web.Response(body=b"PNG", content_type="image/png")

    app = web.Application()
    app.router.add_get("/blob", blob)
    runner, url = await _start(app)
    yield url
    await runner.cleanup()


@pytest.fixture
def script() -> Script:
    return Script()


@pytest.fixture
async def endpoint(script: Script, storage: str) -> AsyncIterator[str]:
    base_box: list[str] = []

    @web.middleware
    async def auth(request: web.Request, handler: Any) -> web.StreamResponse:
        script.auth_seen.append(request.headers.get("Authorization"))
        if request.headers.get("Authorization") != f"Bearer {KEY}":
            return web.json_response({"error": {"code": "unauthorized", "message": "Invalid token."}}, status=401)
        response: web.StreamResponse = await handler(request)
        return response

    async def submit(request: web.Request) -> web.Response:
        script.submits += 1
        key = request.headers["Idempotency-Key"]
        body = await request.json()
        if body["workflow"].get("bad"):
            return web.json_response(
                {"error": {"code": "invalid_workflow", "message": "Prompt outputs failed validation",
                           "details": {"node_errors": {"3": {"class_type": "KSampler", "errors": [
                               {"type": "value_not_in_list", "message": "Value not in list",
                                "details": "sampler_name: 'x' not in [...]", "extra_info": {"input_name": "sampler_name"}}
                           ], "dependent_outputs": ["9"]}}}}},
                status=422,
            )
        if script.refuse_labels and "metadata" in body:
            return web.json_response({"error": {"code": "metadata_not_supported", "message": "no"}}, status=422)
        if key in script.keys:
            return web.json_response({"error": {"code": "idempotency_key_reuse", "message": "used"}}, status=422)
        job_id = str(uuid.uuid4())
        script.keys[key] = job_id
        script.jobs[job_id] = {"metadata": body.get("metadata")}
        if script.fail_first_submit and script.submits == 1:
            return web.json_response({"error": {"code": "upstream_unreachable", "message": "?"}}, status=503)
        return web.json_response(_job(base_box[0], job_id, "queued", body.get("metadata")), status=201)

    async def list_jobs(request: web.Request) -> web.Response:
        jobs = [_job(base_box[0], j, "queued", m["metadata"]) for j, m in script.jobs.items()]
        return web.json_response({"jobs": jobs, "truncated": False})

    async def get_job(request: web.Request) -> web.Response:
        job_id = request.match_info["id"]
        if job_id not in script.jobs:
            return web.json_response({"error": {"code": "not_found", "message": f"No job {job_id}."}}, status=404)
        if script.busy:
            script.busy -= 1
            body = {"error": {"code": "queue_full", "message": "later"}}
            return web.json_response(body, status=429, headers={"Retry-After": "0"})
        status = script.statuses[min(script.gets, len(script.statuses) - 1)]
        script.gets += 1
        return web.json_response(_job(base_box[0], job_id, status, script.jobs[job_id]["metadata"]))

    async def events(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b": hello\r\n\r\n")
        for name, data in script.events:
            frame = f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()
            await response.write(frame[:7])  # split frames across writes
            await response.write(frame[7:])
        await response.write_eof()
        return response

    async def from_hash(request: web.Request) -> web.Response:
        digest = (await request.json())["hash"]
        if digest not in script.blobs:
            return web.json_response({"error": {"code": "blob_not_found", "message": "miss"}}, status=404)
        return web.json_response({"id": "a-" + digest[-6:], "hash": digest, "url": f"{base_box[0]}/x"})

    async def upload(request: web.Request) -> web.Response:
        script.uploads += 1
        post = await request.post()
        field_ = post["file"]
        assert isinstance(field_, web.FileField)
        data = field_.file.read()
        digest = blake3_hash(data)
        assert post["expected_hash"] == digest
        script.blobs[digest] = data
        return web.json_response(
            {"id": "a-" + digest[-6:], "hash": digest, "file_path": post["file_path"], "url": f"{base_box[0]}/x",
             "created_new": True},
            status=201,
        )

    async def content(request: web.Request) -> web.Response:
        raise web.HTTPFound(f"{storage}/blob?sig=abc")

    app = web.Application(middlewares=[auth])
    app.router.add_post("/api/v2/jobs", submit)
    app.router.add_get("/api/v2/jobs", list_jobs)
    app.router.add_get("/api/v2/jobs/{id}", get_job)
    app.router.add_get("/api/v2/jobs/{id}/events", events)
    app.router.add_post("/api/v2/assets/from-hash", from_hash)
    app.router.add_post("/api/v2/assets", upload)
    app.router.add_get("/api/v2/assets/{id}/content", content)
    runner, url = await _start(app)
    base_box.append(url)
    yield url
    await runner.cleanup()


async def test_expired_once_is_read_again_and_the_job_is_not_lost(endpoint: str, script: Script) -> None:
    script.statuses = ["running", "expired", "succeeded"]
    async with V2Session(endpoint, api_key=KEY, poll_interval=0.01, settle_time=5) as session:
        job = await session.submit({"1": {"class_type": "X", "inputs": {}}})
        outputs = await session.result(job.id, timeout=10)
    assert [o.name for o in outputs] == ["out.png"]
    assert script.gets == 3  # running, the expired answer, and the re-read that said succeeded


async def test_without_settling_the_same_race_loses_the_job(endpoint: str, script: Script) -> None:
    """The control: believing the first terminal answer (what comfy-sdk does) reports the job lost."""
    script.statuses = ["running", "expired", "succeeded"]
    async with V2Session(endpoint, api_key=KEY, poll_interval=0.01, settle_time=0) as session:
        job = await session.submit({"1": {"class_type": "X", "inputs": {}}})
        with pytest.raises(JobLost, match="expired"):
            await session.result(job.id, timeout=10)


@pytest.mark.parametrize("progress", [True, False])
async def test_a_failure_right_after_progress_is_read_again(endpoint: str, script: Script, progress: bool) -> None:
    """A non-success terminal state right after the last progress gets one more read before it is
    believed; without a recent progress the same well-formed failure is believed at once."""
    script.statuses = ["running", "running", "failed", "succeeded"]
    script.events = [("status", {"status": "running"})]
    if progress:
        script.events.append(("progress", {"value": 1.0, "nodes_done": 2, "nodes_total": 2, "step": 20, "steps": 20}))
    seen: list[V2Event] = []
    async with V2Session(endpoint, api_key=KEY, poll_interval=0.01, settle_time=5) as session:
        job = await session.submit({"1": {"class_type": "X", "inputs": {}}})
        async for event in session.events(job.id):  # the stream first, so the progress is known
            seen.append(event)
        done = await session.wait(job.id, timeout=10)
    assert any(isinstance(e, V2ProgressEvent) and e.progress.step == 20 for e in seen) == progress
    assert done.status == ("succeeded" if progress else "failed")
    assert script.gets == (4 if progress else 3)


async def test_a_lost_submit_answer_is_found_by_its_key_not_run_twice(endpoint: str, script: Script) -> None:
    script.fail_first_submit = True
    script.statuses = ["succeeded"]
    async with V2Session(endpoint, api_key=KEY, poll_interval=0.01, max_retries=2) as session:
        job = await session.submit({"1": {"class_type": "X", "inputs": {}}}, client_id="mine-1")
    assert len(script.jobs) == 1 and job.id == script.keys["mine-1"]
    assert job.metadata == "comfy_nb:mine-1"


async def test_refused_workflow_names_node_and_input(endpoint: str) -> None:
    async with V2Session(endpoint, api_key=KEY) as session:
        with pytest.raises(PromptValidationError) as info:
            await session.submit({"bad": True})
    assert info.value.error_type == "invalid_workflow"
    assert "sampler_name" in str(info.value) and "KSampler" in str(info.value)


async def test_upload_by_hash_sends_bytes_once(endpoint: str, script: Script) -> None:
    async with V2Session(endpoint, api_key=KEY) as session:
        first = await session.upload(b"\x89PNG-bytes", "cat.png")
        second = await session.upload(b"\x89PNG-bytes", "cat-again.png")
    assert first.id == second.id and first.hash == blake3_hash(b"\x89PNG-bytes")
    assert script.uploads == 1
    assert first.reference() == {"__type": "core/ASSET", "info": {"id": first.id, "hash": first.hash, "file_path": "cat.png"}}


async def test_the_key_never_reaches_the_redirect_host_nor_reprs_nor_errors(
    endpoint: str, script: Script, storage: str
) -> None:
    async with V2Session(endpoint, api_key=KEY) as session:
        assert KEY not in repr(session) and "auth=***" in repr(session)
        data = await session.download(f"{endpoint}/api/v2/assets/asset-1/content")
        with pytest.raises(ServerError) as info:
            await session.get(str(uuid.uuid4()))
    assert data == b"PNG"
    [headers] = script.storage_headers
    assert "Authorization" not in headers and KEY not in json.dumps(headers)
    assert all(a == f"Bearer {KEY}" for a in script.auth_seen)
    assert KEY not in str(info.value) and KEY not in repr(info.value.request) and "not_found" in str(info.value)
    async with V2Session(endpoint, api_key="wrong") as bad:
        with pytest.raises(ServerError, match="check the API key") as refused:
            await bad.get("x")
    assert "wrong" not in str(refused.value)


async def test_x_api_key_form_goes_only_to_the_own_origin() -> None:
    async with V2Session("https://api.example.test", api_key=KEY, key_header="x-api-key") as session:
        assert session._headers("https://api.example.test/api/v2/jobs") == {"X-API-Key": KEY}
        assert session._headers("https://api.example.test:443/x") == {"X-API-Key": KEY}
        assert session._headers("https://storage.example.test/blob") == {}
        assert session._headers("http://api.example.test/api/v2/jobs") == {}  # another scheme is another origin


async def test_an_endpoint_that_refuses_labels_gets_unlabelled_submits(endpoint: str, script: Script) -> None:
    script.refuse_labels = True
    script.statuses = ["succeeded"]
    async with V2Session(endpoint, api_key=KEY, poll_interval=0.01) as session:
        first = await session.submit({"1": {"class_type": "X", "inputs": {}}}, client_id="a")
        second = await session.submit({"1": {"class_type": "X", "inputs": {}}}, client_id="b")
    assert first.metadata is None and second.metadata is None
    assert script.submits == 3  # one refused, then two unlabelled
    assert script.keys == {"a": first.id, "b": second.id}


async def test_a_busy_answer_is_retried_after_its_retry_after(endpoint: str, script: Script) -> None:
    script.statuses = ["succeeded"]
    async with V2Session(endpoint, api_key=KEY, max_retries=2) as session:
        job = await session.submit({"1": {"class_type": "X", "inputs": {}}})
        script.busy = 2
        assert (await session.get(job.id)).status == "succeeded"
        script.busy = 3
        with pytest.raises(ServerError, match="429 \\(queue_full"):
            await session.get(job.id)
