"""``python -m comfy_nb.mock`` / ``comfy-nb-mock``: run the mock ComfyUI server in the foreground."""

from __future__ import annotations

import argparse
import errno
import os
import sys

from ._server import MockServer


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port number (0-65535; 0 picks a free one)")
    return port


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="comfy-nb-mock", description="Mock ComfyUI server (no GPU, no models).")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=_port, default=8188, help="port (default 8188; 0 picks a free one)")
    parser.add_argument("--step-delay", type=float, default=0.05, help="seconds per sampler step (default 0.05)")
    parser.add_argument("--output-dir", default=None, help="where SaveImage writes (default: a temporary dir)")
    parser.add_argument("--root-dir", default=None, help="holds output/, input/ and temp/ (default: temporary)")
    parser.add_argument("--cloud", action="store_true", help="emulate Comfy Cloud (API key, signed redirects, ...)")
    parser.add_argument(
        "--api-key", default=None, help="the cloud mode's key (default: $COMFY_CLOUD_API_KEY, else a random one)"
    )
    parser.add_argument("--parallel", type=int, default=None, help="jobs run at once (default 1; 4 with --cloud)")
    args = parser.parse_args(argv)
    api_key = args.api_key or os.environ.get("COMFY_CLOUD_API_KEY") or None
    server = MockServer(
        args.host,
        args.port,
        step_delay=args.step_delay,
        output_dir=args.output_dir,
        root_dir=args.root_dir,
        cloud=args.cloud,
        api_key=api_key,
        parallel=args.parallel,
    )
    if args.cloud and api_key is None:
        # a throwaway key of this mock process, shown once so the user can connect to it
        print(f"comfy_nb mock cloud mode: generated API key {server.api_key}", flush=True)
    try:
        server.serve_forever()
    except OSError as exc:
        reasons = {
            errno.EADDRINUSE: "the port is already in use (is ComfyUI or another mock running?)",
            errno.EACCES: "permission denied (ports below 1024 need privileges)",
            errno.EADDRNOTAVAIL: "this machine has no such address",
        }
        if exc.errno not in reasons:
            raise
        sys.exit(
            f"comfy-nb-mock: cannot listen on {args.host}:{args.port}: {reasons[exc.errno]}. "
            "Choose another port with --port N, or --port 0 for a free one."
        )


if __name__ == "__main__":
    main()
