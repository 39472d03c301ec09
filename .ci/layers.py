"""The import arrows between comfy_nb's layers; exits 1 when one points up, the mock reaches past the
protocol, or two layers import each other. Every import counts: lazy ones and TYPE_CHECKING ones too.

    python .ci/layers.py [-v]        (-v lists every arrow with the files behind it)
"""

from __future__ import annotations

import ast
import collections
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1] / "comfy_nb"
# Bottom to top; "mock" stands beside client..widgets and may use only what is below "config".
ORDER = ["base", "errors", "protocol", "config", "client", "workflows", "experiments", "widgets", "root"]
BASE = {"_display", "_observers", "_files", "_secrets"}  # helpers that import nothing from comfy_nb
MOCK_MAY_USE = {"base", "errors", "protocol"}


def layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1 or parts[1] in ("__init__", "_connect", "__main__"):
        return "root"
    return "base" if parts[1] in BASE else parts[1]


def arrows() -> dict[tuple[str, str], set[str]]:
    found: dict[tuple[str, str], set[str]] = collections.defaultdict(set)
    for path in sorted(ROOT.rglob("*.py")):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        package = parts[:-1]  # a module's package; for __init__.py the package itself
        source = layer(".".join(parts))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                base = package[: len(package) - node.level + 1] if node.level else []
                targets = [".".join([*base, node.module] if node.module else base)]
                if targets[0] == "comfy_nb":  # from comfy_nb import widgets / from .. import x
                    targets = [f"comfy_nb.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                continue
            for target in targets:
                if target.split(".")[0] == "comfy_nb" and layer(target) != source:
                    found[(source, layer(target))].add(str(path.relative_to(ROOT.parent)))
    return found


def main() -> int:
    found = arrows()
    problems = []
    for (source, target), files in sorted(found.items()):
        if source == "mock" and target not in MOCK_MAY_USE:
            problems.append(f"the mock imports {target}: {sorted(files)}")
        elif target == "mock" and source != "root":
            problems.append(f"{source} imports the mock: {sorted(files)}")
        elif "mock" not in (source, target) and ORDER.index(target) > ORDER.index(source):
            problems.append(f"{source} imports {target}, above it: {sorted(files)}")
    layers = {name for pair in found for name in pair}
    print(f"{len(layers)} layers, {len(found)} arrows, {len(problems)} problems")
    if "-v" in sys.argv:
        for (source, target), files in sorted(found.items()):
            print(f"  {source:>11} -> {target:<11} {', '.join(sorted(files))}")
    for problem in problems:
        print("  " + problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
