"""A protocol-faithful mock ComfyUI server (aiohttp, real sockets), for notebooks, demos and tests.

```python
from comfy_nb.mock import MockServer
with MockServer(step_delay=0.05) as server:
    server.url                      # "http://127.0.0.1:PORT"
    server.faults.fail_node("KSampler", message="boom")
    server.stats.history_fetches
```

It imports only ``comfy_nb.protocol`` and ``comfy_nb.errors`` from the project. See ``MockServer``,
``Faults`` and ``ServerStats`` for the knobs; ``python -m comfy_nb.mock`` runs it in the foreground.
"""

from ._faults import Faults, ServerStats
from ._server import MockServer

__all__ = ["Faults", "MockServer", "ServerStats"]
