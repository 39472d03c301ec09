"""Cancelling prompts: by the jobs API where the server has it, else by deleting a pending prompt from
the queue or interrupting the running one (targeted where the server supports it), then waiting for
the job to say so."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ..errors import ComfyTimeout
from ..protocol import HistoryEntry
from ._follower import Follower
from ._job import Job
from ._models import JobState, QueueState
from ._server_info import ServerInfo
from ._transport import Transport

__all__ = ["Canceller"]


class Canceller:
    """Cancels prompts on one server and ends the jobs this client follows accordingly."""

    def __init__(
        self,
        transport: Transport,
        follower: Follower,
        server: ServerInfo,
        *,
        read_queue: Callable[[], Awaitable[QueueState]],
        read_history: Callable[[str], Awaitable[HistoryEntry | None]],
    ) -> None:
        self._transport = transport
        self._follower = follower
        self._server = server
        self._read_queue = read_queue
        self._read_history = read_history

    async def cancel(self, prompt_id: str) -> bool:
        """True when this call cancelled the prompt (see ``AsyncComfyClient.cancel``)."""
        job = self._follower.get(prompt_id)
        if job is not None and job.done:
            return False
        caps = await self._server.capabilities()
        if caps.jobs_api:
            response = await self._transport.request("POST", f"/api/jobs/{prompt_id}/cancel", ok=(200, 404, 409))
            if response.status_code == 200:
                return await self._confirm_cancelled(prompt_id, job)
            return False
        queue = await self._read_queue()
        if prompt_id in {e.prompt_id for e in queue.pending}:
            await self._transport.request("POST", "/queue", json={"delete": [prompt_id]})
            queue = await self._read_queue()
            if prompt_id not in queue:
                if job is not None and await self._read_history(prompt_id) is None and self._follower.cancelled(prompt_id):
                    return True
                return job is None
        if any(e.prompt_id == prompt_id for e in queue.running):
            # The targeted form only hits this prompt; on older servers a bare interrupt is sent only
            # after seeing that this prompt is the one running (a small window remains; see README).
            body = {"prompt_id": prompt_id} if caps.targeted_interrupt else {}
            await self._transport.request("POST", "/interrupt", json=body)
            return await self._confirm_cancelled(prompt_id, job)
        return False

    async def _confirm_cancelled(self, prompt_id: str, job: Job | None) -> bool:
        if job is None:
            return True
        try:
            status = await job.wait(timeout=max(10.0, self._transport.timeout))
        except ComfyTimeout:
            return False
        return status.state is JobState.CANCELLED

    async def clear_queue(self, *, mine_only: bool = False) -> int:
        """Remove pending prompts (all, or only this client's); the number removed."""
        queue = await self._read_queue()
        ids = [e.prompt_id for e in queue.pending if e.mine or not mine_only]
        if not ids:
            return 0
        await self._transport.request("POST", "/queue", json={"delete": ids})
        after = await self._read_queue()
        removed = [pid for pid in ids if pid not in after]
        for pid in removed:
            self._follower.cancelled(pid)
        return len(removed)
