"""Studio: builder, live jobs, gallery, queue and settings in one tabbed app."""

from __future__ import annotations

from typing import Any

import ipywidgets as W

from ..client import ClientLike
from ._config_panel import ConfigPanel
from ._gallery import Gallery
from ._queue_panel import QueuePanel
from ._task_builder import TaskBuilder

__all__ = ["Studio"]

_TABS = ("Generate", "Gallery", "Queue", "Settings")


class Studio(W.VBox):  # type: ignore[misc]
    """Everything in one app: queueing from the builder feeds its JobViews, the Gallery and the queue.

    Parameters
    ----------
    client:
        An ``AsyncComfyClient`` or ``ComfyClient``.
    """

    def __init__(self, client: ClientLike) -> None:
        self._client = client
        self.gallery = Gallery(client=client)
        self.builder = TaskBuilder(client, gallery=self.gallery)
        self.queue_panel = QueuePanel(client)
        self.config_panel = ConfigPanel(client=client)
        self.config_panel.on_use(self.use_client)
        self.tabs = W.Tab(children=[self.builder, self.gallery, self.queue_panel, self.config_panel])
        self.tabs.titles = _TABS
        super().__init__([self.tabs], layout=W.Layout(max_width="900px"))
        self.add_class("cnb-studio")

    def use_client(self, client: Any) -> None:
        """Work against ``client`` from now on (what Settings' "Use this server" does); the gallery keeps its outputs."""
        self.queue_panel.close()
        self.gallery._client = client
        self.builder = TaskBuilder(client, gallery=self.gallery)
        self.queue_panel = QueuePanel(client)
        children = list(self.tabs.children)
        children[0], children[2] = self.builder, self.queue_panel
        self.tabs.children = children
        self.tabs.titles = _TABS
        self._client = client

    @property
    def client(self) -> Any:
        """The client this Studio works against."""
        return self._client

    @property
    def jobs(self) -> list[Any]:
        """Jobs queued from this Studio, oldest first."""
        return list(self.builder.jobs)

    def __repr__(self) -> str:
        return f"Studio(tabs={list(_TABS)!r})"
