// SweepGrid view: a table of thumbnails laid out by sweep axes. Text goes in with textContent only.
// Cells and thumbnails arrive as custom messages, only what changed ({type: "cells", items: [cell]},
// {type: "thumbs", items: {index: dataURL}}), so the model state stays small; the view asks for all
// of them when it is (re)rendered.

function render({ model, el }) {
  const root = document.createElement("div");
  root.className = "cnb-grid";
  el.appendChild(root);
  const thumbs = new Map();
  const cells = new Map();

  function draw() {
    root.replaceChildren();
    const head = document.createElement("div");
    head.className = "cnb-grid-title";
    head.textContent = model.get("title");
    const summary = document.createElement("div");
    summary.className = "cnb-grid-summary";
    summary.textContent = model.get("summary");
    root.append(head, summary);

    const columns = model.get("columns");
    const rows = model.get("rows");
    const size = model.get("size");
    const table = document.createElement("table");
    const headRow = table.insertRow();
    const corner = document.createElement("th");
    corner.textContent = `${model.get("y_title")} \\ ${model.get("x_title")}`;
    headRow.appendChild(corner);
    for (const label of columns) {
      const th = document.createElement("th");
      th.textContent = label;
      headRow.appendChild(th);
    }
    const slots = [];
    rows.forEach((label, r) => {
      const tr = table.insertRow();
      const th = document.createElement("th");
      th.textContent = label;
      tr.appendChild(th);
      slots.push(columns.map(() => {
        const td = tr.insertCell();
        td.style.width = td.style.height = `${size}px`;
        return td;
      }));
    });
    for (const cell of cells.values()) {
      const td = slots[cell.row] && slots[cell.row][cell.column];
      if (!td) continue;
      td.className = `cnb-grid-cell cnb-${cell.state}`;
      td.title = cell.label;
      const src = thumbs.get(String(cell.index));
      if (cell.state === "completed" && typeof src === "string" && src.startsWith("data:image/")) {
        const img = document.createElement("img");
        img.src = src;
        img.alt = cell.label;
        img.style.maxWidth = img.style.maxHeight = `${size}px`;
        td.appendChild(img);
      } else {
        const text = document.createElement("div");
        text.className = "cnb-grid-text";
        text.textContent = cell.state === "failed" ? `failed: ${cell.error}` : cell.state;
        td.appendChild(text);
      }
    }
    root.appendChild(table);
  }

  let queued = false;
  function redraw() {
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => { queued = false; draw(); });
  }

  model.on("change:summary", redraw);
  model.on("change:columns", redraw);
  model.on("change:rows", redraw);
  model.on("msg:custom", (msg) => {
    if (msg && msg.type === "thumbs") {
      for (const [index, src] of Object.entries(msg.items || {})) thumbs.set(index, src);
      redraw();
    } else if (msg && msg.type === "cells" && Array.isArray(msg.items)) {
      for (const cell of msg.items) cells.set(cell.index, cell);
      redraw();
    }
  });
  model.send({ type: "ready" });
  draw();
}

export default { render };
