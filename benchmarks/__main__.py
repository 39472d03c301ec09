"""Run every benchmark (or those named) and print one JSON line per result."""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import pathlib
import signal
import sys
from typing import Any


def _modules() -> list[str]:
    here = pathlib.Path(__file__).parent
    return sorted(p.stem for p in here.glob("bench_*.py"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default: all of {', '.join(_modules())})")
    parser.add_argument("--quick", action="store_true", help="fewer iterations (a smoke run, not a figure)")
    parser.add_argument("--url", help="a real ComfyUI server for the benchmarks that can use one")
    parser.add_argument("--setup-peers", action="store_true",
                        help="create benchmarks/.peers-venv with the peer clients (not project dependencies) and exit")
    args = parser.parse_args(argv)
    # a terminated run still stops its mock servers and proxy (their context managers run)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.setup_peers:
        from . import _peers

        return _peers.setup()
    names = args.names or _modules()
    failed = 0
    for name in names:
        module = importlib.import_module(f"benchmarks.{name if name.startswith('bench_') else 'bench_' + name}")
        kwargs: dict[str, Any] = {"quick": args.quick}
        if "url" in inspect.signature(module.run).parameters:
            kwargs["url"] = args.url
        try:
            records = module.run(**kwargs)
        except Exception as exc:
            print(json.dumps({"name": name, "error": f"{type(exc).__name__}: {exc}"}), flush=True)
            failed += 1
            continue
        for record in records:
            print(json.dumps(record), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
