"""Notebook display without upward imports: lower layers ask for a viewer, the widgets layer provides it.

``Job``, ``Workflow`` and ``SweepRun`` live below the widgets, so they must not import them. Instead the
widgets package registers a factory per type (``register_viewer``) when it is imported, and the package
root (the composition root, above every layer) tells this module how to load the widgets on first need
(``set_viewer_loader``). A lower-layer object displays itself with ``viewer_for(self)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["mimebundle", "register_viewer", "set_viewer_loader", "viewer_for"]

ViewerFactory = Callable[[Any], Any]

_factories: dict[type, ViewerFactory] = {}
_loader: Callable[[], None] | None = None


def register_viewer(cls: type, factory: ViewerFactory) -> None:
    """Show instances of ``cls`` (and its subclasses) with ``factory(obj)``."""
    _factories[cls] = factory


def set_viewer_loader(loader: Callable[[], None]) -> None:
    """``loader()`` is called once, the first time a viewer is asked for, to register the viewers."""
    global _loader
    _loader = loader


def _factory_for(obj: object) -> ViewerFactory | None:
    for cls in type(obj).__mro__:
        factory = _factories.get(cls)
        if factory is not None:
            return factory
    return None


def viewer_for(obj: object) -> Any | None:
    """A new view of ``obj`` from the registered factory, or None when no viewer can be loaded."""
    global _loader
    factory = _factory_for(obj)
    if factory is None and _loader is not None:
        loader, _loader = _loader, None
        try:
            loader()
        except ImportError:
            return None
        factory = _factory_for(obj)
    return factory(obj) if factory is not None else None


def mimebundle(obj: object, include: Any = None, exclude: Any = None) -> dict[str, Any]:
    """What ``obj._repr_mimebundle_`` returns: its viewer's bundle, or ``repr(obj)`` as plain text.

    The plain-text fallback keeps ``import comfy_nb`` usable without ipywidgets (and in a terminal).
    """
    view = viewer_for(obj)
    if view is not None:
        bundle = view._repr_mimebundle_(include=include, exclude=exclude)
        if isinstance(bundle, tuple):  # (data, metadata): IPython accepts both forms
            bundle = bundle[0]
        if isinstance(bundle, dict):
            return bundle
    return {"text/plain": repr(obj)}
