"""Workflows: API graphs, UI→API conversion, role binding, built-in templates and generation tasks.

``Workflow`` holds an API-format graph (load it from a file, a PNG, a UI save plus the server's
``object_info``, or a template) and binds parameters by following the graph. ``GenerationTask``
turns a request by parameters into a prompt using the workflow the ``ComfyConfig`` sets for its type.
"""

from ..protocol import is_ui_workflow
from ._bind import PARAMETER_NAMES, bind_parameters
from ._task import GenerationTask, TaskType
from ._templates import TEMPLATE_FAMILIES, TEMPLATES, load_template
from ._ui import ui_to_api
from ._workflow import Node, Workflow

__all__ = [
    "PARAMETER_NAMES",
    "TEMPLATES",
    "TEMPLATE_FAMILIES",
    "GenerationTask",
    "Node",
    "TaskType",
    "Workflow",
    "bind_parameters",
    "is_ui_workflow",
    "load_template",
    "ui_to_api",
]
