"""The async ComfyUI client, its job model and the blocking facade."""

from ._async_client import AsyncComfyClient, PromptBuilder
from ._contracts import ClientLike, ErrorCallback, JobLike, UpdateCallback
from ._job import Job
from ._kinds import ServerKind
from ._models import (
    DeviceInfo,
    ErrorInfo,
    JobState,
    JobStatus,
    NodeRef,
    Output,
    Preview,
    QueueEntry,
    QueueState,
    ServerCapabilities,
)
from ._retry import retry_delay
from ._sync import BlockingJob, ComfyClient
from ._tracker import JobTracker

__all__ = [
    "AsyncComfyClient",
    "BlockingJob",
    "ClientLike",
    "ComfyClient",
    "DeviceInfo",
    "ErrorCallback",
    "ErrorInfo",
    "Job",
    "JobLike",
    "JobState",
    "JobStatus",
    "JobTracker",
    "NodeRef",
    "Output",
    "Preview",
    "PromptBuilder",
    "QueueEntry",
    "QueueState",
    "ServerCapabilities",
    "ServerKind",
    "UpdateCallback",
    "retry_delay",
]
