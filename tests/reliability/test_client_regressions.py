"""Client bugs found by the reliability suite, each pinned by a focused test on the mock server."""

from __future__ import annotations

from typing import Any

from comfy_nb import AsyncComfyClient, JobState
from comfy_nb.mock import MockServer


def tiny(i: int) -> dict[str, Any]:
    return {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 4, "height": 4, "batch_size": 1, "color": i}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": f"reg/r{i}"}},
    }


async def test_a_submit_being_retried_is_not_declared_vanished(fresh_mock: MockServer) -> None:
    """POST /prompt retried after 5xx takes ~2 s; the reconciler must not fail the job meanwhile."""
    async with AsyncComfyClient(fresh_mock.url, poll_interval=0.02, quiet_poll=0.05) as client:
        fresh_mock.faults.http_errors(3, status=503, paths=["/prompt"])
        job = await client.submit(tiny(1))
        status = await job.wait(timeout=20)
        assert status.state is JobState.COMPLETED, status.error
        assert fresh_mock.stats.prompts_submitted == 1


async def test_submit_retried_while_socket_is_down_is_not_declared_vanished(fresh_mock: MockServer) -> None:
    """With no socket the reconciler polls every ``poll_interval``; an in-flight submit is not 'gone'."""
    async with AsyncComfyClient(fresh_mock.url, poll_interval=0.02, quiet_poll=0.05, websocket=False) as client:
        fresh_mock.faults.http_errors(3, status=502, paths=["/prompt"])
        job = await client.submit(tiny(2))
        status = await job.wait(timeout=20)
        assert status.state is JobState.COMPLETED, status.error


async def test_job_submitted_while_the_socket_is_down_keeps_outputs_it_missed(fresh_mock: MockServer) -> None:
    """A job POSTed while the socket reconnects misses its early ``executed`` messages; its end must
    then come from history, not from the events the new socket happens to see."""
    from .conftest import wait_until

    slow = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 4, "height": 4, "batch_size": 1, "color": 7}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "reg/early"}},
        "3": {"class_type": "SlowProgressImage", "inputs": {
            "steps": 40, "seconds_per_step": 0.025, "width": 4, "height": 4, "send_preview": False,
            "send_text": False, "seed": 1, "image": ["1", 0]}},
        "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "reg/late"}},
    }
    async with AsyncComfyClient(fresh_mock.url, poll_interval=5, quiet_poll=30) as client:
        fresh_mock.faults.http_errors(1, status=503, paths=["/ws"])  # the immediate reconnect fails
        fresh_mock.faults.drop_sockets(0, client_id=client.client_id)
        await wait_until(lambda: fresh_mock.stats.http_faults == 1, what="first reconnect refused")
        assert not client.connected
        job = await client.submit(slow)  # lands in the back-off before the next (good) attempt
        outputs = await job.result(timeout=20)
        assert sorted(o.subfolder + "/" + o.filename.split("_")[0] for o in outputs) == ["reg/early", "reg/late"]
