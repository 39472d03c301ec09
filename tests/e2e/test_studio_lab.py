"""Studio in a real JupyterLab, driven by Debian's Chromium (ecosystem.md B.3), against the mock server.

Asserts in the DOM: the progress bar moves and reaches 100 %, the preview and then the output image
appear, Cancel on a second job ends it as cancelled, the queue panel lists and clears pending jobs, a
``<script>`` payload in a prompt is shown as text and never runs. Saves screenshots of each widget (to docs/images/ with COMFY_NB_SCREENSHOTS=docs/images).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from ._lab import CHROMIUM, CHROMIUM_ARGS, open_and_run, running_lab, write_notebook

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not (os.path.exists(CHROMIUM) and shutil.which("chromium")),
                       reason=f"Debian's chromium is not installed at {CHROMIUM} (apt-get install -y chromium)"),
    pytest.mark.timeout(240),
]

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = os.environ.get("COMFY_NB_SCREENSHOTS")
"""Where the widget screenshots go: a temporary folder, unless set (``docs/images`` refreshes the README's)."""
PAYLOAD = "<script>window.__cnb_pwned = 1</script>"

SETUP = f'''
import sys
sys.path.insert(0, {str(REPO)!r})
from comfy_nb.mock import MockServer
from comfy_nb.client import ComfyClient
from comfy_nb.config import ComfyConfig
from comfy_nb.widgets import Studio
server = MockServer(step_delay=0.08).start()
client = ComfyClient(server.url, config=ComfyConfig(server_url=server.url))
studio = Studio(client)
b = studio.builder
b.prompt.value = "a lighthouse on a cliff at dusk {PAYLOAD}"
b.width.value = b.height.value = 256
b.steps.value = 24
b.seed_mode.value = "increment"
studio
'''


def test_studio_in_jupyterlab(tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    write_notebook(tmp_path / "studio.ipynb", [SETUP])
    images = Path(SCREENSHOTS).resolve() if SCREENSHOTS else tmp_path / "images"
    images.mkdir(parents=True, exist_ok=True)
    with running_lab(tmp_path) as lab, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 1000})
            open_and_run(page, lab, "studio.ipynb")
            studio = page.locator(".cnb-studio")
            news = page.get_by_role("button", name="No", exact=True)
            try:  # the "Jupyter news?" toast would cover the screenshots
                news.click(timeout=5_000)
            except Exception:
                pass
            builder = studio.locator(".cnb-task-builder")
            expect(builder).to_be_visible(timeout=60_000)
            # the server's lists arrived (sampler dropdown filled from object_info)
            expect(builder.locator("select").nth(2).locator("option", has_text=re.compile(r"^euler_ancestral$"))).to_have_count(
                1, timeout=30_000)

            # --- job 1: progress moves, preview, reaches 100 %, output image -------------------
            builder.locator(".cnb-queue-button").click()
            job = builder.locator(".cnb-job").first
            pct = job.locator(".cnb-job-pct")
            expect(job).to_have_attribute("data-state", "running", timeout=30_000)
            expect(pct).to_have_text(re.compile(r"^([1-9]|[1-9]\d)%$"), timeout=30_000)
            first = int(pct.inner_text().rstrip("%"))
            expect(job.locator(".cnb-job-preview-img")).to_be_visible(timeout=30_000)
            expect(job.locator(".cnb-job-steps")).to_have_text(re.compile(r"step \d+/24"))
            expect(pct).not_to_have_text(f"{first}%", timeout=30_000)  # it moves
            job.screenshot(path=str(images / "job_view.png"))
            expect(pct).to_have_text("100%", timeout=60_000)
            expect(job).to_have_attribute("data-state", "completed")
            expect(job.locator(".cnb-job-out-img")).to_be_visible(timeout=30_000)
            assert (job.locator(".cnb-job-out-img").get_attribute("src") or "").startswith("data:image/")
            # the payload is text, not markup, and never ran
            expect(job.locator(".cnb-job-title")).to_contain_text(PAYLOAD)
            assert page.evaluate("window.__cnb_pwned") is None
            assert page.locator(".cnb-studio script").count() == 0
            studio.screenshot(path=str(images / "studio.png"))
            builder.screenshot(path=str(images / "task_builder.png"))

            # --- job 2: Cancel while it runs ---------------------------------------------------
            steps = builder.locator(".widget-inline-hbox", has_text="Steps").locator("input")
            steps.fill("400")
            steps.press("Tab")
            builder.locator(".cnb-queue-button").click()
            job2 = builder.locator(".cnb-job").first
            expect(job2).to_have_attribute("data-state", "running", timeout=30_000)
            expect(job2.locator(".cnb-job-steps")).to_have_text(re.compile(r"step [1-9]\d*/400"), timeout=30_000)
            job2.locator(".cnb-job-cancel").click()
            expect(job2).to_have_attribute("data-state", "cancelled", timeout=30_000)
            expect(builder.locator(".cnb-job").nth(1)).to_have_attribute("data-state", "completed")

            # --- queue panel: lists and clears pending ------------------------------------------
            batch = builder.locator(".widget-inline-hbox", has_text="Batch count").locator("input")
            batch.fill("3")
            batch.press("Tab")
            builder.locator(".cnb-queue-button").click()
            studio.locator(".lm-TabBar-tab", has_text="Queue").click()
            queue = studio.locator(".cnb-queue")
            expect(queue.locator(".cnb-q-row[data-state=running]")).to_have_count(1, timeout=30_000)
            expect(queue.locator(".cnb-q-row[data-state=pending]")).to_have_count(2, timeout=30_000)
            expect(queue.locator(".cnb-q-label").first).to_contain_text(PAYLOAD)
            queue.screenshot(path=str(images / "queue_panel.png"))
            queue.locator(".cnb-q-clear").click()
            expect(queue.locator(".cnb-q-row[data-state=pending]")).to_have_count(0, timeout=30_000)
            queue.locator(".cnb-q-row[data-state=running] .cnb-q-cancel").click()
            expect(queue.locator(".cnb-q-row")).to_have_count(0, timeout=30_000)
            expect(queue.locator(".cnb-empty")).to_have_text("The queue is empty.")

            # --- gallery: the finished output with its parameters, enlarge ---------------------
            studio.locator(".lm-TabBar-tab", has_text="Gallery").click()
            gallery = studio.locator(".cnb-gallery")
            expect(gallery.locator(".cnb-gal-img")).to_have_count(1, timeout=30_000)
            expect(gallery.locator(".cnb-gal-prompt")).to_contain_text(PAYLOAD)
            expect(gallery.locator(".cnb-chip", has_text="steps")).to_contain_text("24")
            gallery.screenshot(path=str(images / "gallery.png"))
            gallery.locator(".cnb-gal-thumb").first.click()
            expect(gallery.locator("img.cnb-gal-full")).to_be_visible(timeout=30_000)
            assert (gallery.locator("img.cnb-gal-full").get_attribute("src") or "").startswith("blob:")
            gallery.locator(".cnb-gal-close").click()
            expect(gallery.locator(".cnb-gal-grid")).to_be_visible()

            # --- settings ----------------------------------------------------------------------
            studio.locator(".lm-TabBar-tab", has_text="Settings").click()
            config = studio.locator(".cnb-config-panel")
            expect(config).to_be_visible()
            config.locator(".cnb-test-button").click()
            expect(config.locator(".cnb-test-status")).to_contain_text("Connected", timeout=30_000)
            expect(config.locator(".cnb-test-status")).to_contain_text("targeted interrupt")
            config.screenshot(path=str(images / "config_panel.png"))
            assert page.evaluate("window.__cnb_pwned") is None
        finally:
            browser.close()
