"""JobView, Gallery and QueuePanel against contract-sized fakes (fast; the mock-server tests are in
test_live_mock.py)."""

from __future__ import annotations

from typing import Any

import pytest

from comfy_nb.client import ErrorInfo, JobState, NodeRef, Output, Preview, QueueEntry, QueueState
from comfy_nb.widgets import Gallery, JobView, QueuePanel

from .conftest import FakeClient, FakeJob, front_msg, png_bytes, state_updates, wait_for


def test_jobview_follows_status_and_updates_from_loop_thread(fake_client: FakeClient, loop_thread: Any) -> None:
    job = FakeJob(fake_client)
    view = JobView(job)
    assert view.state == "queued" and view.title == "a red fox"
    loop_thread.call(job.emit, queue_position=2)
    wait_for(lambda: view.queue_position == 2, what="queue position")
    prev = Preview(png_bytes(512, 512), "image/png")
    loop_thread.call(job.emit, state=JobState.RUNNING, queue_position=None, started_at=1000.0, progress=40.0,
                     current_node=NodeRef("3", "KSampler", "My sampler"), step=5, steps=20, total_nodes=5,
                     completed_nodes=2, preview=prev, eta=30.0)
    wait_for(lambda: view.preview_mime and view.state == "running", what="running with preview")
    assert view.node == "My sampler" and view.steps == 20 and view.queue_position is None
    assert view.preview_mime == "image/jpeg" and 0 < len(view.preview) < len(prev.data)
    import io

    from PIL import Image

    assert max(Image.open(io.BytesIO(view.preview)).size) <= 256
    assert view.eta == 30.0 and view.elapsed is not None


def test_jobview_error_and_cancel(fake_client: FakeClient) -> None:
    job = FakeJob(fake_client)
    view = JobView(job)
    front_msg(view, {"type": "cancel"})
    assert job.cancel_calls == 1 and view.cancel_requested
    job.emit(state=JobState.FAILED, finished_at=1001.0,
             error=ErrorInfo(message="<script>alert(1)</script> out of memory", node_id="3",
                             class_type="KSampler", exception_type="RuntimeError"))
    assert view.state == "failed"
    assert view.error == {"node": "3", "class_type": "KSampler", "type": "RuntimeError",
                          "message": "<script>alert(1)</script> out of memory"}
    front_msg(view, {"type": "cancel"})
    assert job.cancel_calls == 1, "no cancel once terminal"


def test_jobview_outputs_get_thumbnails(fake_client: FakeClient) -> None:
    out = fake_client.add_image("fox_0001.png", png_bytes(1024, 768))
    job = FakeJob(fake_client)
    view = JobView(job)
    job.emit(state=JobState.COMPLETED, progress=100.0, outputs=(out,), started_at=1.0, finished_at=2.0)
    assert view.outputs[0]["filename"] == "fox_0001.png"
    wait_for(lambda: view.outputs[0]["thumb"].startswith("data:image/"), what="thumbnail")
    assert fake_client.downloads == [("fox_0001.png", "webp;75")]


def test_jobview_of_finished_job_and_repr(fake_client: FakeClient) -> None:
    job = FakeJob(fake_client)
    job.emit(state=JobState.CANCELLED, finished_at=5.0)
    view = JobView(job)
    assert view.state == "cancelled"
    r = repr(view)
    assert r == "JobView(prompt='a red fox', sampler='euler', steps=20)"
    assert "0x" not in r and "p1" not in r
    with pytest.raises(TypeError):
        JobView(job, colour="red")  # type: ignore[call-arg]


def test_jobview_cheap_and_no_unbounded_messages(fake_client: FakeClient) -> None:
    job = FakeJob(fake_client)
    view = JobView(job)
    assert len(state_updates(view)) <= 1


def _outputs(client: FakeClient, n: int) -> list[Output]:
    data = png_bytes(300, 200)
    return [client.add_image(f"img_{i:04d}.png", data) for i in range(n)]


def test_gallery_thousand_outputs_fetches_only_the_visible_page(fake_client: FakeClient) -> None:
    outs = _outputs(fake_client, 1000)
    g = Gallery(outs, client=fake_client, page_size=24, cache_size=64)
    assert g.total == 1000 and g.page_count == 42 and len(g.items) == 24
    assert g.items[0]["filename"] == "img_0999.png", "newest first"
    wait_for(lambda: all(it["thumb"] for it in g.items), what="page thumbnails")
    assert len(fake_client.downloads) == 24
    front_msg(g, {"type": "page", "page": 41})
    assert g.page == 41 and len(g.items) == 1000 - 41 * 24
    wait_for(lambda: all(it["thumb"] for it in g.items), what="last page thumbnails")
    assert len(fake_client.downloads) == 24 + 16
    for p in range(1, 6):
        g.show_page(p)
        wait_for(lambda: all(it["thumb"] for it in g.items), what=f"page {p}")
    fetched = len(fake_client.downloads)
    g.show_page(5)  # the most recent page is cached: no download
    assert all(it["thumb"] for it in g.items) and len(fake_client.downloads) == fetched
    g.show_page(0)  # 160 thumbnails were made since page 0's; the cache holds 64, so they are gone
    wait_for(lambda: all(it["thumb"] for it in g.items), what="page 0 again")
    assert len(fake_client.downloads) == fetched + 24, "the thumbnail cache is bounded"
    assert repr(g) == "Gallery(1000 outputs)"


def test_gallery_enlarge_save_and_params(fake_client: FakeClient, tmp_path: Any) -> None:
    job = FakeJob(fake_client, meta={"prompt": "<b>bold</b> cat", "seed": 42, "sampler": "dpmpp_2m", "steps": 30,
                                     "cfg": 6.5, "model": "xl.safetensors"})
    g = Gallery([job])
    assert g.total == 0
    out = fake_client.add_image("cat.png", png_bytes(800, 600))
    job.emit(state=JobState.COMPLETED, progress=100.0, outputs=(out,))
    wait_for(lambda: g.total == 1, what="gallery grows when the job completes")
    assert g.items[0]["params"] == {"prompt": "<b>bold</b> cat", "seed": 42, "sampler": "dpmpp_2m", "steps": 30,
                                    "cfg": 6.5, "model": "xl.safetensors"}
    front_msg(g, {"type": "open", "index": 0})
    wait_for(lambda: g.full_mime == "image/png", what="full image")
    assert g.full == fake_client.files["cat.png"] and g.detail["filename"] == "cat.png"
    front_msg(g, {"type": "save", "index": 0, "directory": str(tmp_path)})
    wait_for(lambda: g.message.startswith("Saved"), what="saved")
    assert (tmp_path / "cat.png").read_bytes() == fake_client.files["cat.png"]
    front_msg(g, {"type": "close"})
    assert g.selected == -1 and g.full == b""


def test_gallery_video_has_no_thumbnail_fetch_but_plays_full(fake_client: FakeClient) -> None:
    fake_client.files["clip.mp4"] = b"\x00\x00\x00\x18ftypmp42"
    out = Output(kind="video", filename="clip.mp4")
    g = Gallery([out], client=fake_client)
    assert g.items[0]["kind"] == "video" and g.items[0]["mime"] == "video/mp4"
    g.enlarge(0)
    wait_for(lambda: g.full_mime == "video/mp4", what="video bytes")
    assert fake_client.downloads == [("clip.mp4", None)]


def test_gallery_rejects_junk_and_unknown_kwargs(fake_client: FakeClient) -> None:
    with pytest.raises(TypeError):
        Gallery(42)
    with pytest.raises(TypeError):
        Gallery([], client=fake_client, colums=3)  # type: ignore[call-arg]


def test_queue_panel_live_rows_cancel_and_clear(fake_client: FakeClient, loop_thread: Any) -> None:
    job = FakeJob(fake_client, prompt_id="p2", meta={"prompt": "<img src=x onerror=alert(1)>"})
    fake_client.jobs["p2"] = job
    panel = QueuePanel(fake_client)
    assert fake_client.queue_listeners, "subscribed to pushed queue changes"
    q = QueueState(running=(QueueEntry("p1", 1, "me", True),),
                   pending=(QueueEntry("p2", 2, "me", True), QueueEntry("p3", 3, "other", False)))
    fake_client.push_queue(q)
    wait_for(lambda: len(panel.pending) == 2, what="rows")
    assert panel.running[0]["prompt_id"] == "p1"
    assert panel.pending[0]["label"] == "<img src=x onerror=alert(1)>"
    front_msg(panel, {"type": "cancel", "prompt_id": "p3"})
    wait_for(lambda: fake_client.cancelled == ["p3"], what="cancel")
    front_msg(panel, {"type": "clear"})
    wait_for(lambda: panel.message == "Cleared 2 pending prompts.", what="clear")
    assert repr(panel) == "QueuePanel()"


def test_queue_panel_throttles_bursts(fake_client: FakeClient, loop_thread: Any) -> None:
    panel = QueuePanel(fake_client)
    panel.refresh().result(10)
    panel.flush()  # the first read is shown
    before = len(state_updates(panel))
    for i in range(200):
        fake_client.push_queue(QueueState(pending=tuple(QueueEntry(f"p{j}", j) for j in range(i % 7))))
    panel.flush()  # the last of the burst is shown now, not after the throttle's interval
    assert len(state_updates(panel)) - before < 40
    assert panel.pending_total == 199 % 7
