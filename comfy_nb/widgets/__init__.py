"""Notebook widgets over the comfy_nb client.

::

    from comfy_nb.widgets import ConfigPanel, TaskBuilder, JobView, Gallery, QueuePanel, Studio

Forms (``ConfigPanel``, ``TaskBuilder``, ``Studio``) are ipywidgets; the live views (``JobView``,
``Gallery``, ``QueuePanel``) are anywidgets whose plain ES modules live in ``widgets/static``. Widgets
use only the client contract (docs/DESIGN.md), update from the client's loop thread by setting traits
(at most ~20 updates per second each, terminal states at once) and never block the kernel.
"""

from .._display import register_viewer
from ..client import BlockingJob, Job
from ..experiments import PoolJob, SweepRun
from ._config_panel import ConfigPanel
from ._gallery import Gallery
from ._job_view import JobView
from ._queue_panel import QueuePanel
from ._studio import Studio
from ._sweep_grid import SweepGrid
from ._task_builder import TaskBuilder
from ._throttle import Throttle

# Notebook display of lower-layer objects (they ask ``comfy_nb._display.viewer_for``; nothing imports upward).
register_viewer(Job, JobView)
register_viewer(BlockingJob, JobView)
register_viewer(PoolJob, JobView)
register_viewer(SweepRun, SweepGrid)

__all__ = ["ConfigPanel", "Gallery", "JobView", "QueuePanel", "Studio", "SweepGrid", "TaskBuilder", "Throttle"]
