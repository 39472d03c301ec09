"""What a user sees, checked in a real JupyterLab with Debian's Chromium (ecosystem.md B.3) on the mock.

- A 1,000-step job: the workflow bar follows time and the ETA stays close to the truth. Every change
  of the view is recorded in the page (a MutationObserver stamps it with ``performance.now()``), and
  the errors are computed afterwards from those samples against the moment the job completed.
- Layout that is hidden is hidden, by computed style: the gallery pager with one page, the thumbnail
  grid under the enlarged image, the "step k/n" label of a cancelled job.
- Settings of a Studio on ``ComfyClient(url, token=...)`` (no config) show the server in use, its
  kind, that auth is set (never the token), RAM for the CPU device and that previews are off.
- The enlarged view says "CFG" and shows no negative prompt the user did not give; the seed-mode
  buttons show their whole text.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from ._lab import CHROMIUM, CHROMIUM_ARGS, open_and_run, running_lab, write_notebook

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not (os.path.exists(CHROMIUM) and shutil.which("chromium")),
                       reason=f"Debian's chromium is not installed at {CHROMIUM} (apt-get install -y chromium)"),
    pytest.mark.timeout(300),
]

REPO = Path(__file__).resolve().parents[2]
TOKEN = "tok-e2e-never-shown"
STEPS = 1000

SETUP = f'''
import sys
sys.path.insert(0, {str(REPO)!r})
from comfy_nb.mock import MockServer
from comfy_nb.client import ComfyClient
from comfy_nb.widgets import Gallery, Studio
server = MockServer(step_delay=0.02, sampler_previews=False).start()
client = ComfyClient(server.url, token={TOKEN!r})
studio = Studio(client)
b = studio.builder
b.prompt.value = "a quiet harbour at dawn"
b.width.value = b.height.value = 64
b.steps.value = {STEPS}
b.seed_mode.value = "increment"
studio
'''
GALLERIES = '''
def tiny(color):
    return {"1": {"class_type": "EmptyImage", "inputs": {"width": 32, "height": 32, "batch_size": 1, "color": color}},
            "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "pager"}}}
outs = [o for c in (10, 20000, 4000000) for o in client.submit(tiny(c)).result(timeout=60)]
from ipywidgets import VBox
VBox([Gallery(outs[:1], client=client, page_size=2), Gallery(outs, client=client, page_size=2)])
'''

RECORDER = """(job) => {
  window.__cnb_samples = [];
  const read = () => window.__cnb_samples.push({
    t: performance.now(), state: job.dataset.state,
    pct: job.querySelector('.cnb-job-pct').textContent,
    time: job.querySelector('.cnb-job-time').textContent,
    steps: job.querySelector('.cnb-job-steps').textContent,
  });
  read();
  new MutationObserver(read).observe(job, {subtree: true, childList: true, characterData: true, attributes: true});
}"""


def display(page: Any, selector: str) -> str:
    return str(page.locator(selector).evaluate("e => getComputedStyle(e).display"))


def seconds(text: str) -> float | None:
    """The ETA in a time label: ``12s · ETA 1m 05s`` -> 65."""
    m = re.search(r"ETA (?:(\d+)m )?(\d+)s", text)
    return None if m is None else int(m.group(1) or 0) * 60 + int(m.group(2))


def check_bar_and_eta(samples: list[dict[str, Any]]) -> dict[str, float]:
    running = [s for s in samples if s["state"] == "running"]
    done = [s for s in samples if s["state"] == "completed"]
    assert running and done, "the job ran and completed"
    start, end = running[0]["t"], done[0]["t"]
    total = (end - start) / 1000
    pcts = [int(s["pct"].rstrip("%")) for s in samples if s["pct"]]
    assert pcts == sorted(pcts), "the bar never goes back"
    bar_errors, eta_errors = [], []
    for s in running:
        way = (s["t"] - start) / (end - start)
        if not 0.1 <= way <= 0.95:
            continue
        bar_errors.append(abs(int(s["pct"].rstrip("%")) - 100 * way))
        eta = seconds(s["time"])
        assert eta is not None, f"no ETA at {way:.0%} of the way: {s['time']!r}"
        truth = (end - s["t"]) / 1000
        # 25% of the truth; 1 s covers the label's whole-second rounding and kernel-to-browser latency
        assert abs(eta - truth) <= max(0.25 * truth, 1.0), f"ETA {eta}s vs {truth:.1f}s left at {way:.0%}"
        if truth >= 4:
            eta_errors.append(abs(eta - truth) / truth)
    assert len(bar_errors) > 20 and max(bar_errors) <= 10, f"bar off time by up to {max(bar_errors):.1f} points"
    return {"seconds": total, "bar_max_error_points": max(bar_errors), "eta_max_rel_error": max(eta_errors)}


def test_layout_progress_and_settings_in_jupyterlab(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from playwright.sync_api import expect, sync_playwright

    write_notebook(tmp_path / "layout.ipynb", [SETUP, GALLERIES])
    with running_lab(tmp_path) as lab, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 1000})
            open_and_run(page, lab, "layout.ipynb")
            studio = page.locator(".cnb-studio")
            builder = studio.locator(".cnb-task-builder")
            expect(builder).to_be_visible(timeout=60_000)
            expect(builder.locator("select").nth(2).locator("option", has_text=re.compile(r"^euler_ancestral$"))
                   ).to_have_count(1, timeout=30_000)

            # --- seed-mode buttons show their whole text ------------------------------------------
            for button in builder.locator(".cnb-seed-mode button").all():
                assert button.evaluate("e => e.scrollWidth <= e.clientWidth"), f"{button.inner_text()!r} is cut"

            # --- a 1,000-step job: bar and ETA follow time -------------------------------------
            builder.locator(".cnb-queue-button").click()
            job = builder.locator(".cnb-job").first
            expect(job).to_have_attribute("data-state", re.compile("queued|running"), timeout=30_000)
            job.evaluate(RECORDER)
            expect(job.locator(".cnb-job-steps")).to_have_text(re.compile(rf"step \d+/{STEPS}"), timeout=30_000)
            expect(job.locator(".cnb-job-notice")).to_contain_text("--preview-method auto", timeout=30_000)
            expect(job).to_have_attribute("data-state", "completed", timeout=120_000)
            figures = check_bar_and_eta(page.evaluate("window.__cnb_samples"))
            with capsys.disabled():
                print(f"\n[1000-step job in the browser] {figures}")
            assert display(page, ".cnb-job >> nth=0 >> .cnb-job-notice") == "none"

            # --- a cancelled job keeps no step label --------------------------------------------
            builder.locator(".cnb-queue-button").click()
            job2 = builder.locator(".cnb-job").first
            expect(job2.locator(".cnb-job-steps")).to_have_text(re.compile(rf"step [1-9]\d*/{STEPS}"), timeout=30_000)
            job2.locator(".cnb-job-cancel").click()
            expect(job2).to_have_attribute("data-state", "cancelled", timeout=30_000)
            for part in (".cnb-job-steps", ".cnb-job-node-bar", ".cnb-job-cancel"):
                assert job2.locator(part).evaluate("e => getComputedStyle(e.closest('[hidden]') || e).display"
                                                   ) == "none", f"{part} still shown on a cancelled job"
            assert job2.locator(".cnb-bar-label.cnb-sub").evaluate("e => getComputedStyle(e).display") == "none"

            # --- the enlarged view: grid hidden, CFG, no negative prompt nobody gave -----------
            studio.locator(".lm-TabBar-tab", has_text="Gallery").click()
            gallery = studio.locator(".cnb-gallery")
            expect(gallery.locator(".cnb-gal-img")).to_have_count(1, timeout=30_000)
            assert gallery.locator(".cnb-gal-pager").evaluate("e => getComputedStyle(e).display") == "none"
            gallery.locator(".cnb-gal-thumb").first.click()
            expect(gallery.locator("img.cnb-gal-full")).to_be_visible(timeout=30_000)
            assert gallery.locator(".cnb-gal-grid").evaluate("e => getComputedStyle(e).display") == "none"
            labels = gallery.locator(".cnb-gal-table th").all_inner_texts()
            assert "CFG" in labels and "Negative prompt" not in labels, labels
            gallery.locator(".cnb-gal-close").click()
            expect(gallery.locator(".cnb-gal-lightbox")).to_be_hidden(timeout=30_000)
            assert gallery.locator(".cnb-gal-grid").evaluate("e => getComputedStyle(e).display") == "grid"
            assert gallery.locator(".cnb-gal-lightbox").evaluate("e => getComputedStyle(e).display") == "none"

            # --- the pager: hidden with one page, shown and working with two -------------------
            second = page.locator(".jp-Cell").nth(1)
            one, two = second.locator(".cnb-gallery").nth(0), second.locator(".cnb-gallery").nth(1)
            expect(two.locator(".cnb-gal-img")).to_have_count(2, timeout=30_000)
            assert one.locator(".cnb-gal-pager").evaluate("e => getComputedStyle(e).display") == "none"
            assert two.locator(".cnb-gal-pager").evaluate("e => getComputedStyle(e).display") != "none"
            expect(two.locator(".cnb-gal-page")).to_have_text("1 / 2")
            two.locator(".cnb-gal-next").click()
            expect(two.locator(".cnb-gal-page")).to_have_text("2 / 2", timeout=30_000)
            expect(two.locator(".cnb-gal-img")).to_have_count(1, timeout=30_000)

            # --- Settings: the server in use, tested -------------------------------------------
            studio.locator(".lm-TabBar-tab", has_text="Settings").click()
            config = studio.locator(".cnb-config-panel")
            in_use = config.locator(".cnb-in-use-line")
            expect(in_use).to_contain_text("comfy_nb built-in mock", timeout=30_000)
            text = in_use.inner_text()
            assert "127.0.0.1" in text and "local" in text and "auth: bearer" in text
            url_box = config.locator(".widget-inline-hbox", has_text="Server URL").locator("input")
            assert url_box.input_value().startswith("http://127.0.0.1:")
            expect(config.locator(".cnb-url-status")).to_have_text("✓")
            config.locator(".cnb-test-button").click()
            status = config.locator(".cnb-test-status")
            expect(status).to_contain_text("Connected", timeout=30_000)
            expect(status).to_contain_text("previews off (--preview-method none)")
            expect(status).to_contain_text("RAM")
            assert "VRAM" not in status.inner_text()
            outputs = page.locator(".jp-OutputArea").evaluate_all("els => els.map(e => e.innerHTML).join('')")
            assert "In use" in outputs and TOKEN not in outputs  # (the cell's source has it, the widgets never)
        finally:
            browser.close()
