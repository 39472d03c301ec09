// comfy_nb QueuePanel: running / pending prompts with per-row cancel and "clear pending".
// Plain ES module; all kernel text goes through textContent.

function h(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}

function render({ model, el }) {
  const root = h("div", "cnb-queue");
  const bar = h("div", "cnb-q-bar");
  const summary = h("span", "cnb-q-summary");
  const message = h("span", "cnb-q-message cnb-muted");
  const refresh = h("button", "cnb-btn cnb-btn-small cnb-q-refresh", "Refresh");
  const clear = h("button", "cnb-btn cnb-btn-small cnb-btn-danger cnb-q-clear", "Clear pending");
  refresh.type = clear.type = "button";
  clear.title = "Remove every pending prompt (running ones keep running)";
  bar.append(summary, message, refresh, clear);
  const list = h("div", "cnb-q-list");
  root.append(bar, list);
  el.append(root);

  function row(entry, state, cancelling) {
    const r = h("div", `cnb-q-row cnb-q-${state}`);
    r.dataset.state = state;
    r.append(h("span", `cnb-badge cnb-badge-${state === "running" ? "running" : "queued"}`, state));
    r.append(h("span", "cnb-q-num", `#${Math.round(entry.number)}`));
    const label = h("span", "cnb-q-label", entry.label || (entry.mine ? "(no prompt text)" : "another client"));
    label.title = entry.label || "";
    r.append(label);
    if (entry.mine) r.append(h("span", "cnb-q-mine", "mine"));
    const btn = h("button", "cnb-btn cnb-btn-small cnb-q-cancel", cancelling ? "Cancelling…" : "Cancel");
    btn.type = "button";
    btn.disabled = cancelling;
    btn.addEventListener("click", () => {
      btn.disabled = true;
      btn.textContent = "Cancelling…";
      model.send({ type: "cancel", prompt_id: entry.prompt_id });
    });
    r.append(btn);
    return r;
  }

  function update() {
    const running = model.get("running") || [];
    const pending = model.get("pending") || [];
    const total = model.get("pending_total");
    const cancelling = new Set(model.get("cancelling") || []);
    summary.textContent = `${running.length} running · ${total} pending`;
    clear.disabled = total === 0;
    list.replaceChildren();
    for (const e of running) list.append(row(e, "running", cancelling.has(e.prompt_id)));
    for (const e of pending) list.append(row(e, "pending", cancelling.has(e.prompt_id)));
    if (total > pending.length) list.append(h("div", "cnb-muted cnb-q-more", `… and ${total - pending.length} more`));
    if (running.length === 0 && total === 0) list.append(h("div", "cnb-empty", "The queue is empty."));
  }

  function updateMessage() {
    message.textContent = model.get("message") || "";
  }

  refresh.addEventListener("click", () => model.send({ type: "refresh" }));
  clear.addEventListener("click", () => {
    clear.disabled = true;
    model.send({ type: "clear" });
  });
  const keys = ["change:running", "change:pending", "change:pending_total", "change:cancelling"];
  for (const k of keys) model.on(k, update);
  model.on("change:message", updateMessage);
  update();
  updateMessage();
  return () => {
    for (const k of keys) model.off(k, update);
    model.off("change:message", updateMessage);
  };
}

export default { render };
