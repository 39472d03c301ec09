// comfy_nb JobView: live progress of one ComfyUI job. Plain ES module, no dependencies.
// All text from the kernel (prompts, node names, errors, filenames) goes through textContent.

function h(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}

function fmtTime(s) {
  if (s === null || s === undefined || !isFinite(s)) return "";
  s = Math.max(0, Math.round(s));
  const m = Math.floor(s / 60);
  const sec = s % 60;
  return m > 0 ? `${m}m ${String(sec).padStart(2, "0")}s` : `${sec}s`;
}

const SAFE = /^(image\/(jpeg|png|webp|gif)|video\/(mp4|webm))$/;

function bytesUrl(value, mime) {
  if (!value || !SAFE.test(mime || "")) return null;
  const buf = value instanceof DataView ? value.buffer.slice(value.byteOffset, value.byteOffset + value.byteLength) : value;
  if (!buf || buf.byteLength === 0) return null;
  return URL.createObjectURL(new Blob([buf], { type: mime }));
}

function render({ model, el }) {
  const root = h("div", "cnb-job");
  const head = h("div", "cnb-job-head");
  const badge = h("span", "cnb-badge");
  const title = h("span", "cnb-job-title");
  const time = h("span", "cnb-job-time");
  const cancel = h("button", "cnb-btn cnb-job-cancel", "Cancel");
  cancel.type = "button";
  cancel.title = "Stop this job on the server";
  head.append(badge, title, time, cancel);

  const body = h("div", "cnb-job-body");
  const previewBox = h("div", "cnb-job-preview");
  const preview = h("img", "cnb-job-preview-img");
  preview.alt = "preview";
  previewBox.append(preview);

  const main = h("div", "cnb-job-main");
  const bar1Label = h("div", "cnb-bar-label");
  const bar1Text = h("span", "cnb-bar-text");
  const bar1Pct = h("span", "cnb-bar-pct cnb-job-pct");
  bar1Label.append(bar1Text, bar1Pct);
  const bar1 = h("div", "cnb-bar cnb-job-bar");
  const fill1 = h("div", "cnb-bar-fill cnb-job-bar-fill");
  bar1.append(fill1);
  bar1.setAttribute("role", "progressbar");

  const bar2Label = h("div", "cnb-bar-label cnb-sub");
  const bar2Text = h("span", "cnb-bar-text cnb-job-node");
  const bar2Pct = h("span", "cnb-bar-pct cnb-job-steps");
  bar2Label.append(bar2Text, bar2Pct);
  const bar2 = h("div", "cnb-bar cnb-bar-thin cnb-job-node-bar");
  const fill2 = h("div", "cnb-bar-fill cnb-job-node-fill");
  bar2.append(fill2);

  const notice = h("div", "cnb-job-notice cnb-muted");
  const error = h("div", "cnb-job-error");
  const outputs = h("div", "cnb-job-outputs");
  main.append(bar1Label, bar1, bar2Label, bar2, notice, error, outputs);
  body.append(previewBox, main);
  root.append(head, body);
  el.append(root);

  let previewUrl = null;
  let receivedAt = performance.now();

  function updateTime() {
    const st = model.get("state");
    let el_ = model.get("elapsed");
    if (el_ === null || el_ === undefined) {
      time.textContent = st === "queued" ? "" : "";
      return;
    }
    if (st === "running") el_ += (performance.now() - receivedAt) / 1000;
    const eta = model.get("eta");
    let txt = fmtTime(el_);
    if (st === "running" && eta !== null && eta !== undefined) {
      const left = Math.max(0, eta - (performance.now() - receivedAt) / 1000);
      txt += ` · ETA ${fmtTime(left)}`;
    }
    time.textContent = txt;
  }

  function update() {
    receivedAt = performance.now();
    const st = model.get("state");
    root.dataset.state = st;
    badge.textContent = st;
    badge.className = `cnb-badge cnb-badge-${st}`;
    title.textContent = model.get("title") || "";
    title.title = model.get("title") || "";
    const terminal = st === "completed" || st === "failed" || st === "cancelled";
    cancel.disabled = terminal || model.get("cancel_requested");
    cancel.textContent = model.get("cancel_requested") && !terminal ? "Cancelling…" : "Cancel";
    cancel.hidden = terminal;

    const p = Math.max(0, Math.min(100, model.get("progress") || 0));
    fill1.style.width = `${p}%`;
    bar1.setAttribute("aria-valuenow", String(Math.round(p)));
    bar1Pct.textContent = `${Math.floor(p)}%`;
    const qp = model.get("queue_position");
    const done = model.get("nodes_done");
    const total = model.get("nodes_total");
    if (st === "queued") {
      bar1Text.textContent = qp === null || qp === undefined ? "Waiting in queue" : `Queued · ${qp} ahead`;
    } else if (total > 0) {
      bar1Text.textContent = `Workflow · ${done}/${total} nodes`;
    } else {
      bar1Text.textContent = "Workflow";
    }

    const steps = model.get("steps");
    const step = model.get("step");
    const node = model.get("node");
    const showNode = st === "running" && (node || steps > 0);
    bar2Label.hidden = !showNode;
    bar2.hidden = !showNode;
    bar2Text.textContent = node || "";
    bar2Pct.textContent = steps > 0 ? `step ${step}/${steps}` : "";
    fill2.style.width = steps > 0 ? `${Math.min(100, (100 * step) / steps)}%` : "0%";

    notice.textContent = model.get("notice") || "";
    notice.hidden = !notice.textContent;

    const err = model.get("error") || {};
    error.replaceChildren();
    if (st === "failed" && (err.message || err.node)) {
      const where = [err.class_type, err.node ? `#${err.node}` : ""].filter(Boolean).join(" ");
      error.append(h("strong", null, where ? `${where}: ` : "Error: "));
      error.append(h("span", "cnb-job-error-msg", `${err.type ? err.type + ": " : ""}${err.message || ""}`));
      error.hidden = false;
    } else {
      error.hidden = true;
    }

    const outs = model.get("outputs") || [];
    outputs.replaceChildren();
    for (const o of outs) {
      const cell = h("figure", "cnb-job-out");
      if (o.thumb && o.thumb.startsWith("data:image/")) {
        const img = h("img", "cnb-job-out-img");
        img.src = o.thumb;
        img.alt = o.filename || "";
        cell.append(img);
      } else if (o.kind === "text") {
        cell.append(h("div", "cnb-job-out-text", o.text || ""));
      } else {
        cell.append(h("div", "cnb-job-out-ph", o.kind === "video" ? "▶" : o.kind === "audio" ? "♪" : "…"));
      }
      if (o.filename) cell.append(h("figcaption", null, o.filename));
      outputs.append(cell);
    }
    outputs.hidden = outs.length === 0;
    // once the outputs are shown the last sampler preview is redundant
    previewBox.style.display = st === "completed" && outs.length > 0 ? "none" : "";
    updateTime();
  }

  function updatePreview() {
    const url = bytesUrl(model.get("preview"), model.get("preview_mime"));
    if (previewUrl) URL.revokeObjectURL(previewUrl);
    previewUrl = url;
    if (url) {
      preview.src = url;
      previewBox.classList.add("cnb-has-preview");
    } else {
      preview.removeAttribute("src");
      previewBox.classList.remove("cnb-has-preview");
    }
  }

  cancel.addEventListener("click", () => {
    model.send({ type: "cancel" });
    cancel.disabled = true;
    cancel.textContent = "Cancelling…";
  });

  model.on("change", update);
  model.on("change:preview", updatePreview);
  update();
  updatePreview();
  const timer = setInterval(updateTime, 1000);

  return () => {
    clearInterval(timer);
    model.off("change", update);
    model.off("change:preview", updatePreview);
    if (previewUrl) URL.revokeObjectURL(previewUrl);
  };
}

export default { render };
