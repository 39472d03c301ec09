// comfy_nb GraphView: a workflow's node graph as SVG, lit by its job. Plain ES module, no dependencies.
// Every title, value, filename and error is user or server text: it goes through textContent or
// setAttribute, never parsed as markup. The graph comes once (the `graph` trait) with every node's state
// (`base`); then numbered "patch" messages carry only the nodes that changed. The model keeps the
// merged state (initialize), so a view opened later, or while the kernel is busy, starts right.

const SVG = "http://www.w3.org/2000/svg";
const HEAD = 26;
const STATUS_TEXT = {
  idle: "", queued: "queued", running: "running", cached: "cached", done: "done",
  failed: "failed", skipped: "not run", interrupted: "interrupted",
};

function h(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}

function s(tag, attrs, cls) {
  const e = document.createElementNS(SVG, tag);
  if (cls) e.setAttribute("class", cls);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  return e;
}

function fit(text, px) {
  const max = Math.max(4, Math.floor(px / 6.9));
  text = String(text || "");
  return text.length > max ? text.slice(0, max - 1) + "…" : text;
}

function pathOf(points) {
  let d = `M${points[0][0]},${points[0][1]}`;
  for (let i = 1; i < points.length; i++) {
    const [x0, y0] = points[i - 1];
    const [x1, y1] = points[i];
    if (y0 === y1) {
      d += ` L${x1},${y1}`;
      continue;
    }
    const dx = Math.max(24, Math.abs(x1 - x0) / 2);
    d += ` C${x0 + dx},${y0} ${x1 - dx},${y1} ${x1},${y1}`;
  }
  return d;
}

// One state store per widget model, shared by its views. Keyed by the model's `graph` object, which
// every proxy of the same model returns.
const STORES = new WeakMap();

function storeFor(model) {
  const key = model.get("graph");
  let store = STORES.get(key);
  if (store) return store;
  store = { seq: -1, nodes: new Map(), job: { state: "idle" }, listeners: new Set(), asked: false };
  const emit = (ids) => { for (const fn of store.listeners) fn(ids); };
  const onBase = () => {
    const b = model.get("base") || {};
    if (typeof b.seq !== "number" || b.seq < store.seq) return;
    store.seq = b.seq;
    store.nodes = new Map(Object.entries(b.nodes || {}));
    store.job = b.job || { state: "idle" };
    store.asked = false;
    emit(null);
  };
  const onMsg = (msg) => {
    if (!msg || msg.type !== "patch" || msg.seq <= store.seq) return;
    if (msg.seq !== store.seq + 1 && !store.asked) {
      store.asked = true; // a patch went by before this model listened: ask for the whole state
      model.send({ type: "resync" });
    }
    store.seq = msg.seq;
    for (const [id, st] of Object.entries(msg.nodes || {})) store.nodes.set(id, st);
    if (msg.job) store.job = msg.job;
    emit(Object.keys(msg.nodes || {}));
  };
  model.on("change:base", onBase);
  model.on("msg:custom", onMsg);
  onBase();
  STORES.set(key, store);
  return store;
}

function initialize({ model }) {
  storeFor(model);
}

function render({ model, el }) {
  const root = h("div", "cnb-graph");
  const head = h("div", "cnb-graph-head");
  const badge = h("span", "cnb-badge");
  const title = h("span", "cnb-graph-title");
  const info = h("span", "cnb-graph-info");
  const btn = (label, tip, cls) => {
    const b = h("button", `cnb-btn cnb-btn-small ${cls}`, label);
    b.type = "button";
    b.title = tip;
    return b;
  };
  const zoomOut = btn("−", "Zoom out (or Ctrl + wheel)", "cnb-graph-zoom-out");
  const zoomIn = btn("+", "Zoom in (or Ctrl + wheel)", "cnb-graph-zoom-in");
  const fitBtn = btn("Fit", "Fit the whole graph in view", "cnb-graph-fit");
  head.append(badge, title, info, zoomOut, zoomIn, fitBtn);

  const body = h("div", "cnb-graph-body");
  const canvas = h("div", "cnb-graph-canvas");
  const svg = s("svg", { width: "100%", height: "100%" }, "cnb-graph-svg");
  const view = s("g", {}, "cnb-graph-viewport");
  const edgeLayer = s("g", {}, "cnb-graph-edges");
  const nodeLayer = s("g", {}, "cnb-graph-nodes");
  view.append(edgeLayer, nodeLayer);
  svg.append(view);
  canvas.append(svg);
  const panel = h("div", "cnb-graph-panel");
  panel.hidden = true;
  body.append(canvas, panel);
  root.append(head, body);
  el.append(root);

  let graph = { nodes: [], edges: [], bounds: [0, 0, 0, 0] };
  let byId = new Map(); // id -> {node, g, status, bar, fill, thumb, out}
  let edgesByDst = new Map();
  let store = storeFor(model);
  let selected = null;
  let active = [];
  let zoom = { k: 1, tx: 0, ty: 0 };
  let userMoved = false;

  function applyZoom() {
    view.setAttribute("transform", `translate(${zoom.tx},${zoom.ty}) scale(${zoom.k})`);
    root.dataset.zoom = zoom.k.toFixed(3);
  }

  function fitView() {
    const w = canvas.clientWidth;
    const hgt = canvas.clientHeight;
    if (!w || !hgt) return false;
    const [x0, y0, x1, y1] = graph.bounds || [0, 0, 0, 0];
    const bw = Math.max(1, x1 - x0) + 40;
    const bh = Math.max(1, y1 - y0) + 40;
    const k = Math.min(w / bw, hgt / bh, 1.25);
    zoom = { k, tx: (w - (x1 - x0) * k) / 2 - x0 * k, ty: (hgt - (y1 - y0) * k) / 2 - y0 * k };
    applyZoom();
    return true;
  }

  function zoomAt(factor, cx, cy) {
    const k = Math.min(4, Math.max(0.05, zoom.k * factor));
    const f = k / zoom.k;
    zoom = { k, tx: cx - (cx - zoom.tx) * f, ty: cy - (cy - zoom.ty) * f };
    userMoved = true;
    applyZoom();
  }

  function build() {
    graph = model.get("graph") || { nodes: [], edges: [], bounds: [0, 0, 0, 0] };
    edgeLayer.replaceChildren();
    nodeLayer.replaceChildren();
    byId = new Map();
    edgesByDst = new Map();
    active = [];
    const edgeFrag = document.createDocumentFragment();
    for (const e of graph.edges) {
      const p = s("path", { d: pathOf(e.points) }, "cnb-ge");
      p.dataset.src = e.src;
      p.dataset.dst = e.dst;
      edgeFrag.append(p);
      if (!edgesByDst.has(e.dst)) edgesByDst.set(e.dst, []);
      edgesByDst.get(e.dst).push(p);
    }
    edgeLayer.append(edgeFrag);
    const nodeFrag = document.createDocumentFragment();
    for (const n of graph.nodes) {
      const g = s("g", { transform: `translate(${n.x},${n.y})` }, "cnb-gn");
      g.dataset.id = n.id;
      g.dataset.state = "idle";
      const tip = s("title");
      tip.textContent = `${n.title} (${n.class_type} #${n.id})`;
      const box = s("rect", { width: n.w, height: n.h, rx: 6 }, "cnb-gn-box");
      const band = s("rect", { width: n.w, height: HEAD - 4, rx: 6 }, "cnb-gn-band");
      const t = s("text", { x: 8, y: 16 }, "cnb-gn-title");
      t.textContent = fit(n.title, n.w - 16);
      const c = s("text", { x: 8, y: HEAD + 14 }, "cnb-gn-class");
      c.textContent = fit(n.class_type === n.title ? `#${n.id}` : `${n.class_type} #${n.id}`, n.w - 16);
      const status = s("text", { x: 8, y: HEAD + 30 }, "cnb-gn-status");
      const bar = s("rect", { x: 8, y: HEAD + 34, width: n.w - 16, height: 4, rx: 2 }, "cnb-gn-bar");
      const fill = s("rect", { x: 8, y: HEAD + 34, width: 0, height: 4, rx: 2 }, "cnb-gn-fill");
      g.append(tip, box, band, t, c, status, bar, fill);
      const item = { node: n, g, status, bar, fill, thumb: null, out: null };
      if (n.h >= 120) {
        item.thumb = s("image", { x: 8, y: 68, width: n.w - 16, height: n.h - 74 }, "cnb-gn-thumb");
        item.thumb.setAttribute("preserveAspectRatio", "xMidYMid meet");
        item.out = s("text", { x: 8, y: 84 }, "cnb-gn-out");
        g.append(item.thumb, item.out);
      }
      nodeFrag.append(g);
      byId.set(n.id, item);
    }
    nodeLayer.append(nodeFrag);
    for (const id of byId.keys()) paintNode(id);
    paintJob();
    if (!userMoved) fitView();
    if (selected !== null && !byId.has(selected)) select(null);
  }

  function paintNode(id) {
    const item = byId.get(id);
    if (!item) return;
    const st = store.nodes.get(id) || { state: "idle" };
    item.g.dataset.state = st.state;
    let text = STATUS_TEXT[st.state] || st.state;
    if (st.state === "running" && st.steps > 0) text = `step ${st.step}/${st.steps}`;
    if (st.state === "failed" && st.error) text = `failed: ${st.error}`;
    item.status.textContent = fit(text, item.node.w - 16);
    const running = st.state === "running" && st.steps > 0;
    item.bar.style.display = running ? "" : "none";
    item.fill.style.display = running ? "" : "none";
    item.fill.setAttribute("width", running ? String(((item.node.w - 16) * Math.min(st.step, st.steps)) / st.steps) : "0");
    if (item.thumb) {
      const url = typeof st.thumb === "string" && st.thumb.startsWith("data:image/") ? st.thumb : null;
      if (url) item.thumb.setAttribute("href", url);
      else item.thumb.removeAttribute("href");
      item.thumb.style.display = url ? "" : "none";
      const txt = (st.outputs || []).find((o) => o.kind === "text");
      item.out.textContent = !url && txt ? fit(txt.text, item.node.w - 16) : "";
    }
    if (id === selected) showPanel(id);
  }

  function paintJob() {
    const job = store.job;
    const st = job.state || "idle";
    root.dataset.state = st;
    badge.textContent = st === "idle" ? "workflow" : st;
    badge.className = `cnb-badge cnb-badge-${st}`;
    title.textContent = model.get("title") || "";
    title.title = model.get("title") || "";
    const parts = [];
    if (job.total) parts.push(`${job.done}/${job.total} nodes`);
    if (job.label) parts.push(`running ${job.label}`);
    if (st === "running" || st === "completed") parts.push(`${Math.floor(job.progress || 0)}%`);
    info.textContent = parts.join(" · ") || `${graph.nodes.length} nodes`;
    for (const p of active) p.classList.remove("cnb-ge-active");
    active = job.running ? edgesByDst.get(job.running) || [] : [];
    for (const p of active) p.classList.add("cnb-ge-active");
  }

  function row(name, content) {
    const tr = h("tr");
    tr.append(h("th", null, name));
    const td = h("td");
    td.append(content);
    tr.append(td);
    return tr;
  }

  function linkButton(id, text) {
    const b = h("button", "cnb-graph-link", text);
    b.type = "button";
    b.addEventListener("click", () => select(id));
    return b;
  }

  function showPanel(id) {
    const item = byId.get(id);
    if (!item) return;
    const n = item.node;
    const st = store.nodes.get(id) || { state: "idle" };
    panel.replaceChildren();
    const top = h("div", "cnb-graph-panel-head");
    const close = h("button", "cnb-btn cnb-btn-small cnb-graph-close", "×");
    close.type = "button";
    close.title = "Close";
    close.addEventListener("click", () => select(null));
    top.append(h("strong", "cnb-graph-panel-title", n.title), close);
    panel.append(top, h("div", "cnb-graph-panel-class", `${n.class_type} · #${n.id}`));
    const state = h("span", `cnb-graph-state cnb-gs-${st.state}`, STATUS_TEXT[st.state] || st.state || "idle");
    if (st.state !== "idle") panel.append(state);
    if (st.state === "running" && st.steps > 0) panel.append(h("span", "cnb-graph-steps", ` step ${st.step}/${st.steps}`));
    if (st.state === "failed") {
      const err = h("div", "cnb-graph-error");
      err.append(h("strong", null, st.error_type ? `${st.error_type}: ` : "Error: "), h("span", "cnb-graph-error-msg", st.error || ""));
      panel.append(err);
    }
    panel.append(h("div", "cnb-graph-section", "Inputs"));
    const table = h("table", "cnb-graph-inputs");
    for (const inp of n.inputs) {
      if (inp.link !== undefined) {
        const src = byId.get(inp.link);
        const label = `← ${src ? src.node.title : "?"} #${inp.link}` + (inp.slot ? ` [${inp.slot}]` : "");
        table.append(row(inp.name, linkButton(inp.link, label)));
      } else {
        table.append(row(inp.name, h("span", "cnb-graph-value", inp.value)));
      }
    }
    if (!n.inputs.length) table.append(row("", h("span", "cnb-graph-none", "no inputs")));
    panel.append(table);
    const users = graph.edges.filter((e) => e.src === id);
    if (users.length) {
      panel.append(h("div", "cnb-graph-section", "Used by"));
      const list = h("div", "cnb-graph-users");
      for (const e of users) {
        const dst = byId.get(e.dst);
        list.append(linkButton(e.dst, `→ ${dst ? dst.node.title : "?"} #${e.dst} .${e.input}`));
      }
      panel.append(list);
    }
    const outs = st.outputs || [];
    const thumb = typeof st.thumb === "string" && st.thumb.startsWith("data:image/") ? st.thumb : null;
    if (outs.length || thumb) {
      panel.append(h("div", "cnb-graph-section", "Outputs"));
      if (thumb) {
        const img = h("img", "cnb-graph-panel-thumb");
        img.src = thumb;
        img.alt = "output";
        panel.append(img);
      }
      for (const o of outs) {
        panel.append(h("div", o.kind === "text" ? "cnb-graph-out-text" : "cnb-graph-out-file", o.kind === "text" ? o.text : `${o.kind}: ${o.filename}`));
      }
    }
    panel.hidden = false;
  }

  function select(id) {
    if (selected !== null && byId.has(selected)) byId.get(selected).g.classList.remove("cnb-gn-selected");
    selected = id;
    if (id === null || !byId.has(id)) {
      selected = null;
      panel.hidden = true;
      panel.replaceChildren();
      return;
    }
    byId.get(id).g.classList.add("cnb-gn-selected");
    showPanel(id);
  }

  // -- pan, zoom, click ----------------------------------------------------------------------
  let drag = null;
  svg.addEventListener("pointerdown", (e) => {
    if (e.button !== 0) return;
    const g = e.target.closest ? e.target.closest(".cnb-gn") : null;
    drag = { x: e.clientX, y: e.clientY, tx: zoom.tx, ty: zoom.ty, id: g ? g.dataset.id : null, moved: false };
    svg.setPointerCapture(e.pointerId);
  });
  svg.addEventListener("pointermove", (e) => {
    if (!drag) return;
    const dx = e.clientX - drag.x;
    const dy = e.clientY - drag.y;
    if (!drag.moved && Math.hypot(dx, dy) < 4) return;
    drag.moved = true;
    userMoved = true;
    zoom = { k: zoom.k, tx: drag.tx + dx, ty: drag.ty + dy };
    applyZoom();
  });
  const endDrag = (e) => {
    if (!drag) return;
    if (!drag.moved) select(drag.id);
    drag = null;
    if (svg.hasPointerCapture(e.pointerId)) svg.releasePointerCapture(e.pointerId);
  };
  svg.addEventListener("pointerup", endDrag);
  svg.addEventListener("pointercancel", (e) => { drag = null; if (svg.hasPointerCapture(e.pointerId)) svg.releasePointerCapture(e.pointerId); });
  svg.addEventListener("wheel", (e) => {
    if (!(e.ctrlKey || e.metaKey)) return; // a plain wheel keeps scrolling the notebook
    e.preventDefault();
    const r = svg.getBoundingClientRect();
    zoomAt(Math.exp(-e.deltaY * 0.002), e.clientX - r.left, e.clientY - r.top);
  }, { passive: false });
  zoomIn.addEventListener("click", () => zoomAt(1.25, canvas.clientWidth / 2, canvas.clientHeight / 2));
  zoomOut.addEventListener("click", () => zoomAt(0.8, canvas.clientWidth / 2, canvas.clientHeight / 2));
  fitBtn.addEventListener("click", () => { userMoved = false; fitView(); });

  // -- state from the kernel -----------------------------------------------------------------
  function onStore(ids) {
    for (const id of ids === null ? byId.keys() : ids) paintNode(id);
    paintJob();
  }
  function onGraph() {
    store.listeners.delete(onStore);
    store = storeFor(model);
    store.listeners.add(onStore);
    build();
  }
  function setHeight() { canvas.style.height = `${model.get("height") || 460}px`; }
  setHeight();
  store.listeners.add(onStore);
  model.on("change:graph", onGraph);
  model.on("change:title", paintJob);
  model.on("change:height", setHeight);
  build();
  const resize = new ResizeObserver(() => { if (!userMoved) fitView(); });
  resize.observe(canvas);

  return () => {
    resize.disconnect();
    store.listeners.delete(onStore);
    model.off("change:graph", onGraph);
    model.off("change:title", paintJob);
    model.off("change:height", setHeight);
  };
}

export default { initialize, render };
