// comfy_nb Gallery: paginated thumbnails + parameters, lightbox with full image / video, Save.
// Plain ES module; all kernel text goes through textContent.

function h(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}

// short names on the cards, full names in the enlarged view; "CFG" in both
const LABELS = { seed: "seed", sampler: "sampler", scheduler: "scheduler", steps: "steps", cfg: "CFG", model: "model", width: "w", height: "h" };
const DETAIL_LABELS = {
  prompt: "Prompt", negative_prompt: "Negative prompt", seed: "Seed", sampler: "Sampler", scheduler: "Scheduler",
  steps: "Steps", cfg: "CFG", model: "Model", width: "Width", height: "Height",
};
const FULL_SAFE = /^(image\/(jpeg|png|webp|gif)|video\/(mp4|webm)|audio\/(wav|mpeg|flac|ogg))$/;

function paramChips(params) {
  const box = h("div", "cnb-gal-params");
  if (params.prompt) {
    const p = h("div", "cnb-gal-prompt", params.prompt);
    p.title = params.prompt;
    box.append(p);
  }
  const chips = h("div", "cnb-gal-chips");
  for (const key of ["seed", "sampler", "steps", "cfg", "model"]) {
    if (params[key] === undefined || params[key] === null || params[key] === "") continue;
    const c = h("span", "cnb-chip");
    c.append(h("span", "cnb-chip-k", LABELS[key]), h("span", "cnb-chip-v", params[key]));
    c.title = `${key}: ${params[key]}`;
    chips.append(c);
  }
  box.append(chips);
  return box;
}

function render({ model, el }) {
  const root = h("div", "cnb-gallery");
  const bar = h("div", "cnb-gal-bar");
  const count = h("span", "cnb-gal-count");
  const pager = h("span", "cnb-gal-pager");
  const prev = h("button", "cnb-btn cnb-btn-small cnb-gal-prev", "‹");
  const pageLabel = h("span", "cnb-gal-page");
  const next = h("button", "cnb-btn cnb-btn-small cnb-gal-next", "›");
  prev.type = next.type = "button";
  prev.title = "Previous page";
  next.title = "Next page";
  pager.append(prev, pageLabel, next);
  const message = h("span", "cnb-gal-message cnb-muted");
  bar.append(count, message, pager);

  const grid = h("div", "cnb-gal-grid");
  const empty = h("div", "cnb-empty", "No outputs yet — they appear here as jobs finish.");

  // lightbox
  const box = h("div", "cnb-gal-lightbox");
  box.hidden = true;
  const boxMedia = h("div", "cnb-gal-media");
  const boxSide = h("div", "cnb-gal-side");
  const boxName = h("div", "cnb-gal-name");
  const boxTable = h("table", "cnb-gal-table");
  const saveRow = h("div", "cnb-gal-save");
  const saveDir = h("input", "cnb-input cnb-gal-dir");
  saveDir.type = "text";
  saveDir.placeholder = "folder";
  const saveBtn = h("button", "cnb-btn cnb-gal-save-btn", "Save");
  saveBtn.type = "button";
  saveRow.append(saveDir, saveBtn);
  const closeBtn = h("button", "cnb-btn cnb-gal-close", "Close");
  closeBtn.type = "button";
  boxSide.append(boxName, boxTable, saveRow, closeBtn);
  box.append(boxMedia, boxSide);

  root.append(bar, empty, grid, box);
  el.append(root);

  let fullUrl = null;

  function renderGrid() {
    const items = model.get("items") || [];
    const total = model.get("total");
    count.textContent = `${total} output${total === 1 ? "" : "s"}`;
    const page = model.get("page");
    const pages = model.get("page_count");
    pageLabel.textContent = `${page + 1} / ${pages}`;
    prev.disabled = page <= 0;
    next.disabled = page >= pages - 1;
    pager.hidden = pages <= 1;
    empty.hidden = total > 0;
    grid.replaceChildren();
    for (const it of items) {
      const card = h("div", "cnb-gal-card");
      card.dataset.index = String(it.index);
      card.dataset.kind = it.kind;
      const thumbBox = h("button", "cnb-gal-thumb");
      thumbBox.type = "button";
      thumbBox.title = `Enlarge ${it.filename}`;
      if (it.thumb && it.thumb.startsWith("data:image/")) {
        const img = h("img", "cnb-gal-img");
        img.src = it.thumb;
        img.alt = it.filename;
        img.loading = "lazy";
        thumbBox.append(img);
      } else {
        const icon = it.kind === "video" ? "▶" : it.kind === "audio" ? "♪" : it.kind === "file" ? "🗎" : "…";
        thumbBox.append(h("span", "cnb-gal-ph", icon));
      }
      if (it.kind === "animated" || it.kind === "video") thumbBox.append(h("span", "cnb-gal-kind", it.kind));
      thumbBox.addEventListener("click", () => model.send({ type: "open", index: it.index }));
      const name = h("div", "cnb-gal-file", it.filename);
      name.title = it.filename;
      card.append(thumbBox, name, paramChips(it.params || {}));
      grid.append(card);
    }
  }

  function renderDetail() {
    const sel = model.get("selected");
    const d = model.get("detail") || {};
    box.hidden = sel < 0;
    grid.hidden = sel >= 0;
    if (sel < 0) {
      boxMedia.replaceChildren();
      if (fullUrl) URL.revokeObjectURL(fullUrl);
      fullUrl = null;
      return;
    }
    boxName.textContent = d.filename || "";
    boxTable.replaceChildren();
    const params = d.params || {};
    for (const [k, v] of Object.entries(params)) {
      const tr = h("tr");
      tr.append(h("th", null, DETAIL_LABELS[k] || k.replace(/_/g, " ")), h("td", null, v));
      boxTable.append(tr);
    }
    if (!saveDir.value) saveDir.value = model.get("save_dir") || "";
    renderMedia();
  }

  function renderMedia() {
    const d = model.get("detail") || {};
    const mime = model.get("full_mime");
    const data = model.get("full");
    if (fullUrl) URL.revokeObjectURL(fullUrl);
    fullUrl = null;
    boxMedia.replaceChildren();
    if (!data || data.byteLength === 0 || !FULL_SAFE.test(mime || "")) {
      boxMedia.append(h("div", "cnb-empty", model.get("selected") >= 0 ? "Loading…" : ""));
      return;
    }
    const buf = data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength);
    fullUrl = URL.createObjectURL(new Blob([buf], { type: mime }));
    let media;
    if (mime.startsWith("video/")) {
      media = h("video", "cnb-gal-full");
      media.controls = true;
      media.autoplay = true;
      media.loop = true;
      media.muted = true;
    } else if (mime.startsWith("audio/")) {
      media = h("audio", "cnb-gal-full");
      media.controls = true;
    } else {
      media = h("img", "cnb-gal-full");
      media.alt = d.filename || "";
    }
    media.src = fullUrl;
    boxMedia.append(media);
  }

  function renderMessage() {
    message.textContent = model.get("message") || "";
  }

  prev.addEventListener("click", () => model.send({ type: "page", page: model.get("page") - 1 }));
  next.addEventListener("click", () => model.send({ type: "page", page: model.get("page") + 1 }));
  closeBtn.addEventListener("click", () => model.send({ type: "close" }));
  saveBtn.addEventListener("click", () => model.send({ type: "save", index: model.get("selected"), directory: saveDir.value }));

  const gridKeys = ["change:items", "change:page", "change:page_count", "change:total"];
  for (const k of gridKeys) model.on(k, renderGrid);
  model.on("change:selected", renderDetail);
  model.on("change:detail", renderDetail);
  model.on("change:full", renderMedia);
  model.on("change:message", renderMessage);
  renderGrid();
  renderDetail();
  renderMessage();

  return () => {
    for (const k of gridKeys) model.off(k, renderGrid);
    model.off("change:selected", renderDetail);
    model.off("change:detail", renderDetail);
    model.off("change:full", renderMedia);
    model.off("change:message", renderMessage);
    if (fullUrl) URL.revokeObjectURL(fullUrl);
  };
}

export default { render };
