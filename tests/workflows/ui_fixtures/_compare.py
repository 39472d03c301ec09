"""Compare comfy_nb's conversion with the frontend's outputs that ``_frontend_harness.py`` wrote.

    PYTHONPATH=. python tests/workflows/ui_fixtures/_compare.py FRONTEND_OUT_DIR SAVE.json ...

``EXTRA_OBJECT_INFO`` (a JSON file of more classes) is read as the harness reads it. Prints per save ``OK``, ``DIFF`` (with the differing nodes), ``REFUSED`` (the converter's error) or
``NO FRONTEND OUTPUT`` (the frontend threw). Uses each save's ``_harness`` entry like the harness does.
"""

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from comfy_nb.errors import WorkflowError
from comfy_nb.protocol import parse_node_defs
from comfy_nb.workflows import ui_to_api

FIXTURES = Path(__file__).parents[4] / "shared/fixtures/comfyui"


class Draws:
    def __init__(self, values: list[float]) -> None:
        self.values = list(values)
        self.taken = 0

    def random(self) -> float:
        self.taken += 1
        return self.values[self.taken - 1]


def main(out_dir: Path, saves: list[Path]) -> None:
    import os

    fixtures = Path(os.environ.get("COMFY_NB_FIXTURES", FIXTURES))
    info = json.loads((fixtures / "object_info.json").read_text())
    if os.environ.get("EXTRA_OBJECT_INFO"):  # as given to the harness
        info.update(json.loads(Path(os.environ["EXTRA_OBJECT_INFO"]).read_text()))
    defs = parse_node_defs(info)
    for save in saves:
        ui: dict[str, Any] = json.loads(save.read_text())
        harness = ui.pop("_harness", {})
        frontend = out_dir / f"{save.stem}.frontend_api.json"
        if not frontend.exists():
            print(save.stem, "NO FRONTEND OUTPUT")
            continue
        expected = json.loads(frontend.read_text())
        draws = Draws(harness.get("random", []))
        now = datetime(*harness["now"]) if "now" in harness else None
        try:
            got = ui_to_api(ui, defs, rng=draws, now=now)
        except WorkflowError as exc:
            print(save.stem, "REFUSED", exc)
            continue
        if json.dumps(got) == json.dumps(expected):
            print(save.stem, "OK", "draws", draws.taken)
            continue
        print(save.stem, "DIFF")
        for key in sorted(set(got) | set(expected)):
            if json.dumps(got.get(key)) != json.dumps(expected.get(key)):
                print("   ", key, "\n      comfy_nb", got.get(key), "\n      frontend", expected.get(key))


if __name__ == "__main__":
    main(Path(sys.argv[1]), [Path(a) for a in sys.argv[2:]])
