"""GraphView in a real JupyterLab, driven by Debian's Chromium, against the mock server.

Three runs of one five-node workflow (three ``SlowProgressImage`` stages so each node runs long enough to
be seen): the first lights its nodes in order, the second (stage 3 changed) shows the first stages as
cached, the third fails at stage 3 with an injected error. A click shows a node's inputs; the JobView's
Graph toggle opens the same drawing. Titles and the error carry HTML that must stay text. Screenshots
go to a temporary folder, or to docs/images/ with COMFY_NB_SCREENSHOTS=docs/images.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from benchmarks.bench_layout import synthetic_prompt
from comfy_nb.widgets._graph_model import links_of

from ._lab import CHROMIUM, CHROMIUM_ARGS, free_port, open_and_run, running_lab, write_notebook

if TYPE_CHECKING:
    from playwright.sync_api import Locator

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not (os.path.exists(CHROMIUM) and shutil.which("chromium")),
                       reason=f"Debian's chromium is not installed at {CHROMIUM} (apt-get install -y chromium)"),
    pytest.mark.timeout(900),
]

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = os.environ.get("COMFY_NB_SCREENSHOTS")
PAYLOAD = "<script>window.__cnb_pwned = 1</script>"

SETUP = '''
import sys
sys.path.insert(0, {repo!r})
from comfy_nb.mock import MockServer
from comfy_nb.client import ComfyClient
from comfy_nb.widgets import GraphView, JobView
from comfy_nb.workflows import Workflow

PAYLOAD = {payload!r}
server = MockServer(port={port}).start()
client = ComfyClient(server.url)

def stage(title, seed, image=None, steps=8, seconds_per_step=0.12):
    inputs = dict(steps=steps, seconds_per_step=seconds_per_step, width=96, height=64, send_preview=False,
                  send_text=False, seed=seed)
    if image:
        inputs["image"] = [image, 0]
    return dict(class_type="SlowProgressImage", inputs=inputs, _meta=dict(title=title))

def workflow(seed3):
    return Workflow({{
        "1": stage("Stage 1 " + PAYLOAD, 1),
        "2": stage("Stage 2", 2, "1"),
        "3": dict(class_type="ImageInvert", inputs=dict(image=["2", 0]), _meta=dict(title="Invert")),
        "4": stage("Stage 3", seed3, "3"),
        "5": dict(class_type="SaveImage", inputs=dict(images=["4", 0], filename_prefix="graph"),
                  _meta=dict(title="Save")),
    }}, name="three stages " + PAYLOAD)

# a long job ahead in the queue: the test interrupts it once the first view is on screen
blocker = client.submit(dict(b=stage("blocker", 99, steps=1000, seconds_per_step=2.0), s=dict(class_type="SaveImage",
                        inputs=dict(images=["b", 0], filename_prefix="blocker"))))
job1 = client.submit(workflow(3))
GraphView(job1, height=330)
'''

RERUN = '''
job1.wait(3600)   # it starts when the test interrupts the blocker
job2 = client.submit(workflow(4))   # stage 3 changed: stages 1, 2 and Invert come from the cache
GraphView(job2, height=330)
'''

FAIL = '''
job2.wait(60)
server.faults.fail_node("4", message="stage 3 broke " + PAYLOAD, exception_type="ValueError")
job3 = client.submit(workflow(5))
GraphView(job3, height=330)
'''

TOGGLE = '''
job3.wait(60)
from IPython.display import display
display(workflow(3).show())   # a workflow that is not running
JobView(job1)
'''

BIG = '''
from benchmarks.bench_layout import synthetic_prompt
GraphView(synthetic_prompt(300), height=400)   # laid out in Python, drawn as one SVG
'''

# Installed before the page loads: records every node state change with the cell it happened in.
RECORDER = """
window.__cnb_states = [];
new MutationObserver((records) => {
  for (const r of records) {
    const g = r.target;
    if (!g.classList || !g.classList.contains("cnb-gn")) continue;
    const cell = g.closest(".jp-Cell");
    const index = [...document.querySelectorAll(".jp-Cell")].indexOf(cell);
    window.__cnb_states.push([index, g.dataset.id, g.dataset.state]);
  }
}).observe(document, { subtree: true, attributes: true, attributeFilter: ["data-state"] });
"""


def node(graph: Locator, node_id: str) -> Locator:
    """The box of one node in a GraphView."""
    return graph.locator(f'.cnb-gn[data-id="{node_id}"]')


def first_running(log: list[list[Any]], cell: int) -> list[str]:
    order: list[str] = []
    for index, node_id, state in log:
        if index == cell and state == "running" and node_id not in order:
            order.append(node_id)
    return order


def test_graph_view_in_jupyterlab(tmp_path: Path) -> None:
    from playwright.sync_api import TimeoutError as PWTimeout
    from playwright.sync_api import expect, sync_playwright

    port = free_port()
    setup = SETUP.format(repo=str(REPO), payload=PAYLOAD, port=port)
    write_notebook(tmp_path / "graph.ipynb", [setup, RERUN, FAIL, TOGGLE, BIG])
    images = Path(SCREENSHOTS).resolve() if SCREENSHOTS else tmp_path / "images"
    images.mkdir(parents=True, exist_ok=True)
    with running_lab(tmp_path) as lab, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 1000})
            page.add_init_script(RECORDER)
            open_and_run(page, lab, "graph.ipynb")
            with contextlib.suppress(PWTimeout):  # the "Jupyter news?" toast would cover the screenshots
                page.get_by_role("button", name="No", exact=True).click(timeout=5_000)
            cells = page.locator(".jp-Cell")

            # --- run 1: nodes light up in order, the link into the running node is highlighted ---------
            g1 = cells.nth(0).locator(".cnb-graph")
            expect(g1).to_be_visible(timeout=60_000)
            expect(node(g1, "1")).to_have_attribute("data-state", "queued", timeout=30_000)
            # the view is on screen with every node queued: stop the blocker so the job starts
            urllib.request.urlopen(  # the mock, on 127.0.0.1
                urllib.request.Request(f"http://127.0.0.1:{port}/interrupt", data=b"{}", method="POST"), timeout=10)
            expect(node(g1, "2")).to_have_attribute("data-state", "running", timeout=60_000)
            expect(g1.locator('path.cnb-ge-active[data-dst="2"]')).to_have_count(1)
            expect(node(g1, "1")).to_have_attribute("data-state", "done")
            expect(node(g1, "4")).to_have_attribute("data-state", "queued")
            expect(node(g1, "2").locator(".cnb-gn-status")).to_have_text(re.compile(r"^step \d/8$"), timeout=10_000)
            g1.screenshot(path=str(images / "graph_running.png"))
            expect(g1).to_have_attribute("data-state", "completed", timeout=60_000)
            for i in "12345":
                expect(node(g1, i)).to_have_attribute("data-state", "done")
            expect(g1.locator("path.cnb-ge-active")).to_have_count(0)
            thumb = node(g1, "5").locator("image.cnb-gn-thumb")
            expect(thumb).to_have_attribute("href", re.compile(r"^data:image/"), timeout=30_000)
            log = page.evaluate("window.__cnb_states")
            order = first_running(log, 0)
            assert [i for i in order if i in ("1", "2", "4")] == ["1", "2", "4"], order
            # the payload in a title is text: the SVG title shows it, no script element was made
            expect(node(g1, "1").locator("title")).to_contain_text(PAYLOAD)

            # --- run 2: the unchanged stages are cached --------------------------------------------------
            g2 = cells.nth(1).locator(".cnb-graph")
            expect(g2).to_have_attribute("data-state", "completed", timeout=60_000)
            for i in "123":
                expect(node(g2, i)).to_have_attribute("data-state", "cached")
                expect(node(g2, i).locator(".cnb-gn-status")).to_have_text("cached")
            expect(node(g2, "4")).to_have_attribute("data-state", "done")
            g2.screenshot(path=str(images / "graph_cached.png"))

            # --- run 3: stage 3 fails with its message; the save never runs ------------------------------
            g3 = cells.nth(2).locator(".cnb-graph")
            expect(g3).to_have_attribute("data-state", "failed", timeout=60_000)
            expect(node(g3, "4")).to_have_attribute("data-state", "failed")
            expect(node(g3, "4").locator(".cnb-gn-status")).to_contain_text("failed: stage 3 broke")
            expect(node(g3, "5")).to_have_attribute("data-state", "skipped")
            node(g3, "4").click()
            panel = g3.locator(".cnb-graph-panel")
            expect(panel).to_be_visible()
            expect(panel.locator(".cnb-graph-error-msg")).to_have_text("stage 3 broke " + PAYLOAD)
            expect(panel.locator(".cnb-graph-error")).to_contain_text("ValueError")
            g3.screenshot(path=str(images / "graph_failed.png"))

            # --- a click shows the inputs: values and links (a link selects its source) ------------------
            node(g3, "2").click()
            expect(panel.locator(".cnb-graph-panel-title")).to_have_text("Stage 2")
            rows = panel.locator(".cnb-graph-inputs tr")
            expect(rows.filter(has_text="seconds_per_step")).to_contain_text("0.12")
            expect(rows.filter(has_text="seed")).to_contain_text("2")
            link = rows.filter(has_text="image").locator(".cnb-graph-link")
            expect(link).to_have_text("← Stage 1 " + PAYLOAD + " #1")
            expect(panel.locator(".cnb-graph-users")).to_contain_text("→ Invert #3 .image")
            g3.screenshot(path=str(images / "graph_inputs.png"))
            link.click()
            expect(panel.locator(".cnb-graph-panel-title")).to_have_text("Stage 1 " + PAYLOAD)
            expect(node(g3, "1")).to_have_class(re.compile("cnb-gn-selected"))
            panel.locator(".cnb-graph-close").click()
            expect(panel).to_be_hidden()

            # --- pan and zoom: buttons and a drag move the view, Fit brings it back -------------------
            fitted = g3.get_attribute("data-zoom")
            g3.locator(".cnb-graph-zoom-in").click()
            assert float(g3.get_attribute("data-zoom") or 0) > float(fitted or 0)
            vp = g3.locator(".cnb-graph-viewport")
            before = vp.get_attribute("transform")
            box = g3.locator(".cnb-graph-canvas").bounding_box()
            assert box is not None
            page.mouse.move(box["x"] + 20, box["y"] + box["height"] - 20)
            page.mouse.down()
            page.mouse.move(box["x"] + 120, box["y"] + box["height"] - 60, steps=5)
            page.mouse.up()
            assert vp.get_attribute("transform") != before
            g3.locator(".cnb-graph-fit").click()
            assert g3.get_attribute("data-zoom") == fitted

            # --- Workflow.show(): the same drawing, idle, titled by the workflow's name -----------------
            idle = cells.nth(3).locator(".cnb-graph").first
            expect(idle).to_have_attribute("data-state", "idle", timeout=30_000)
            expect(idle.locator(".cnb-graph-title")).to_have_text("three stages " + PAYLOAD)
            expect(idle.locator('.cnb-gn[data-state="idle"]')).to_have_count(5)
            idle.screenshot(path=str(images / "graph_workflow.png"))

            # --- the JobView's Graph toggle opens the same drawing ---------------------------------------
            jv = cells.nth(3).locator(".cnb-job")
            expect(jv).to_have_attribute("data-state", "completed", timeout=60_000)
            jv.locator(".cnb-job-graph-toggle").click()
            inner = jv.locator(".cnb-graph")
            expect(inner).to_be_visible(timeout=30_000)
            expect(inner.locator(".cnb-gn")).to_have_count(5)
            expect(node(inner, "5")).to_have_attribute("data-state", "done")
            jv.screenshot(path=str(images / "graph_job_view.png"))
            jv.locator(".cnb-job-graph-toggle").click()
            expect(inner).to_be_hidden()

            # --- a 300-node graph renders whole, and the page still answers ------------------------------
            big = cells.nth(4).locator(".cnb-graph")
            expect(big.locator(".cnb-gn")).to_have_count(300, timeout=60_000)
            links = links_of(synthetic_prompt(300))
            expect(big.locator("path.cnb-ge")).to_have_count(len(links))
            expect(big.locator(".cnb-graph-info")).to_have_text("300 nodes")
            big.locator(".cnb-graph-zoom-in").click()
            assert float(big.get_attribute("data-zoom") or 0) > 0
            big.screenshot(path=str(images / "graph_300_nodes.png"))

            assert page.evaluate("window.__cnb_pwned") is None
            assert page.locator(".cnb-graph script").count() == 0
        finally:
            browser.close()
