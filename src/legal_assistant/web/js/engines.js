// The engine panel: every supervised engine, live from /api/engines/events, with its
// state, model, port, uptime, memory, a start/stop button and a log tail.
import { ApiError, api, eventSourceUrl } from "./api.js";
import { $, h } from "./dom.js";
import * as fmt from "./format.js";
import { getLanguage, t } from "./i18n.js";
import { icon } from "./icons.js";
import { emit, findModel, modelLabel, state } from "./state.js";
import { toast } from "./toast.js";

const ACTIVE = new Set(["starting", "loading", "ready", "stopping"]);

let panel;
let listEl;
let liveEl;
let residencyEl;
let residency = null; // {policy, memory_budget_bytes, memory_estimate_bytes, idle_ttl_s}
let source = null;
let tick = 0;
let poll = 0;
const cards = new Map(); // engine id -> card view
const busy = new Set(); // engine ids with a start/stop request in flight

// ------------------------------------------------------------------ live data
function upsert(status) {
  if (!status || !status.id) return;
  state.engines.set(status.id, { status, receivedAt: performance.now() });
}

export function connectEngines() {
  if (source) source.close();
  source = new EventSource(eventSourceUrl("api/engines/events"));
  source.addEventListener("snapshot", (ev) => {
    const data = JSON.parse(ev.data);
    if (data.policy) residency = data;
    state.engines.clear();
    for (const status of data.engines || []) upsert(status);
    setLive(true);
    changed();
  });
  source.addEventListener("engine", (ev) => {
    const data = JSON.parse(ev.data);
    if (data.status) upsert(data.status);
    else if (state.engines.has(data.engine)) {
      const entry = state.engines.get(data.engine);
      upsert({ ...entry.status, state: data.new, phase: data.phase });
    }
    changed();
    // The memory picture is not in the event: refresh it when an engine settles.
    if (isEnginesOpen() && data.old !== data.new && ["ready", "stopped", "failed"].includes(data.new)) {
      refreshEngines();
    }
  });
  source.addEventListener("open", () => setLive(true));
  source.addEventListener("error", () => setLive(false));
}

export async function refreshEngines() {
  try {
    const data = await api("api/engines");
    if (data.policy) residency = data;
    const seen = new Set();
    for (const status of data.engines || []) {
      upsert(status);
      seen.add(status.id);
    }
    for (const id of [...state.engines.keys()]) if (!seen.has(id)) state.engines.delete(id);
    changed();
  } catch {
    /* the live stream shows the connection state */
  }
}

function setLive(live) {
  state.enginesLive = live;
  if (!liveEl) return;
  liveEl.classList.toggle("is-live", live);
  liveEl.lastChild.textContent = live ? t("engines.live") : t("engines.offline");
}

function changed() {
  emit("engines");
  renderEngines();
}

// ------------------------------------------------------------------ actions
async function stopEngine(id) {
  busy.add(id);
  renderEngines();
  try {
    const status = await api(`api/engines/${encodeURIComponent(id)}/stop`, { method: "POST" });
    upsert(status);
  } catch (exc) {
    const err = exc instanceof ApiError ? exc : new ApiError({ code: "unknown" });
    toast(t("engines.stopFailed"), { kind: "error", detail: err.message || "" });
  } finally {
    busy.delete(id);
    changed();
  }
}

async function startModel(modelId, engineId = null) {
  const key = engineId || `model:${modelId}`;
  busy.add(key);
  renderEngines();
  try {
    const status = await api("api/engines/start", { method: "POST", body: { model_id: modelId } });
    upsert(status);
  } catch (exc) {
    const err = exc instanceof ApiError ? exc : new ApiError({ code: "unknown" });
    const hint = t(`hint.${err.code}`);
    toast(err.message || t("engines.startFailed"), {
      kind: "error",
      timeout: 8000,
      detail: hint.startsWith("hint.") ? "" : hint,
    });
  } finally {
    busy.delete(key);
    changed();
  }
}

async function loadLogs(view) {
  const id = view.id;
  try {
    const data = await api(`api/engines/${encodeURIComponent(id)}/logs?tail=200`);
    const lines = data.lines || [];
    const atBottom = view.logPre.scrollHeight - view.logPre.scrollTop - view.logPre.clientHeight < 24;
    view.logPre.textContent = lines.length ? lines.join("\n") : t("engines.noLogs");
    if (atBottom || !view.logsLoaded) view.logPre.scrollTop = view.logPre.scrollHeight;
    view.logsLoaded = true;
  } catch (exc) {
    view.logPre.textContent = exc instanceof ApiError && exc.message ? exc.message : t("engines.noLogs");
  }
}

// llama.cpp's slots (continuous batching, kept prompt caches): busy / idle + cached tokens.
const SLOT_WORDS = {
  fr: { title: "Emplacements", busy: "occupé", idle: "libre", tokens: "jetons en cache" },
  en: { title: "Slots", busy: "busy", idle: "idle", tokens: "cached tokens" },
};

async function loadSlots(view) {
  const words = SLOT_WORDS[getLanguage()] || SLOT_WORDS.en;
  try {
    const data = await api(`api/engines/${encodeURIComponent(view.id)}/slots`);
    const slots = data.slots || [];
    view.slots.hidden = slots.length === 0;
    view.slots.replaceChildren(
      h("div", { class: "engine-slots-title" }, words.title),
      ...slots.map((slot) =>
        h(
          "span",
          {
            class: `chip ${slot.busy ? "chip-loading" : "chip-stopped"}`,
            "data-testid": "engine-slot",
            "data-busy": String(slot.busy),
            title: `${slot.cached_tokens} ${words.tokens} / ${slot.n_ctx ?? "?"}`,
          },
          `#${slot.id} ${slot.busy ? words.busy : words.idle} · ${slot.cached_tokens}`,
        ),
      ),
    );
  } catch {
    view.slots.hidden = true;
  }
}

// ------------------------------------------------------------------ rendering
function stat(label, valueEl) {
  return h("div", { class: "stat" }, h("dt", {}, label), h("dd", {}, valueEl));
}

function createCard(id) {
  const view = { id, logsOpen: false, logsLoaded: false };
  view.chip = h("span", { class: "chip", "data-testid": "engine-state" });
  view.model = h("div", { class: "engine-model" });
  view.port = h("span");
  view.pid = h("span");
  view.uptime = h("span", { "data-testid": "engine-uptime" });
  view.memory = h("span");
  view.inflight = h("span");
  view.starts = h("span");
  view.startTime = h("span");
  view.error = h("div", { class: "engine-error", hidden: true });
  view.idle = h("div", { class: "engine-idle", hidden: true });
  view.slots = h("div", { class: "engine-slots", hidden: true, "data-testid": "engine-slots" });
  view.action = h("button", { type: "button", class: "btn btn-sm", "data-testid": "engine-toggle" });
  view.action.addEventListener("click", () => {
    const entry = state.engines.get(id);
    if (!entry) return;
    if (ACTIVE.has(entry.status.state) && entry.status.state !== "stopping") stopEngine(id);
    else startModel(entry.status.model, id);
  });
  view.logPre = h("pre", { class: "log-view", tabindex: "0", "data-testid": "engine-logs" });
  view.logTitle = h("span", { class: "logs-title" });
  const refresh = h(
    "button",
    { type: "button", class: "icon-btn icon-btn-sm", onclick: () => loadLogs(view) },
    icon("refresh", { size: 14 }),
  );
  view.refresh = refresh;
  view.logs = h("div", { class: "engine-logs", hidden: true }, h("div", { class: "logs-head" }, view.logTitle, refresh), view.logPre);
  view.logsBtn = h("button", {
    type: "button",
    class: "btn btn-sm btn-ghost",
    "aria-expanded": "false",
    "data-testid": "engine-logs-toggle",
  });
  view.logsBtn.addEventListener("click", () => toggleLogs(view));
  view.name = h("span", { class: "engine-id" });
  view.kind = h("span", { class: "engine-kind" });
  view.el = h(
    "article",
    { class: "engine-card", "data-testid": "engine-card", "data-engine-id": id },
    h(
      "header",
      { class: "engine-head" },
      h("div", { class: "engine-title" }, h("span", { class: "engine-icon", "aria-hidden": "true" }, icon("server", { size: 16 })), view.name, view.kind),
      view.chip,
    ),
    view.model,
    h(
      "dl",
      { class: "engine-stats" },
      (view.lPort = stat("", view.port)),
      (view.lPid = stat("", view.pid)),
      (view.lUptime = stat("", view.uptime)),
      (view.lMemory = stat("", view.memory)),
      (view.lInflight = stat("", view.inflight)),
      (view.lStarts = stat("", view.starts)),
    ),
    view.error,
    view.idle,
    view.slots,
    h("div", { class: "engine-actions" }, view.action, view.logsBtn),
    view.logs,
  );
  return view;
}

function toggleLogs(view, open = !view.logsOpen) {
  view.logsOpen = open;
  view.logs.hidden = !open;
  view.logsBtn.setAttribute("aria-expanded", String(open));
  updateCard(view);
  if (open) loadLogs(view);
}

function uptimeOf(entry) {
  const { status, receivedAt } = entry;
  if (status.uptime_s === null || status.uptime_s === undefined) return null;
  return status.uptime_s + (status.state === "ready" ? (performance.now() - receivedAt) / 1000 : 0);
}

function updateCard(view) {
  const entry = state.engines.get(view.id);
  if (!entry) return;
  const s = entry.status;
  view.el.dataset.state = s.state;
  view.name.textContent = s.id;
  view.kind.textContent = (s.kind || "").toUpperCase();
  view.chip.className = `chip chip-${s.state}`;
  view.chip.textContent = t(`engines.state.${s.state}`);
  view.model.textContent = modelLabel(s.model);
  view.model.title = s.model;
  view.lPort.firstChild.textContent = t("engines.port");
  view.lPid.firstChild.textContent = t("engines.pid");
  view.lUptime.firstChild.textContent = t("engines.uptime");
  view.lMemory.firstChild.textContent = t("engines.memory");
  view.lInflight.firstChild.textContent = t("engines.inflight");
  view.lStarts.firstChild.textContent = t("engines.startTime");
  view.port.textContent = s.port ?? "—";
  view.pid.textContent = s.pid ?? "—";
  const up = uptimeOf(entry);
  view.uptime.textContent = up === null ? "—" : fmt.seconds(up, 0);
  view.memory.textContent = fmt.bytes(s.rss_bytes);
  view.inflight.textContent = String(s.inflight ?? 0);
  view.starts.textContent = s.start_duration_s ? fmt.seconds(s.start_duration_s) : "—";
  if (s.last_error && s.state === "failed") {
    view.error.hidden = false;
    const code = s.last_error.code;
    const message = t(`err.${code}`);
    view.error.textContent = message.startsWith("err.") ? s.last_error.message : message;
  } else {
    view.error.hidden = true;
  }
  const idleIn = s.state === "ready" && !s.inflight ? s.idle_expires_in_s : null;
  view.idle.hidden = idleIn === null || idleIn === undefined;
  if (!view.idle.hidden) view.idle.textContent = t("engines.idleIn", { v: fmt.seconds(idleIn, 0) });
  const hasSlots = s.kind === "llamacpp" && s.state === "ready";
  if (!hasSlots) {
    view.slots.hidden = true;
    view.slotsLoaded = false;
  } else if (!view.slotsLoaded) {
    view.slotsLoaded = true;
    loadSlots(view);
  }
  const active = ACTIVE.has(s.state) && s.state !== "stopping";
  const isBusy = busy.has(view.id) || s.state === "stopping";
  view.action.replaceChildren(
    isBusy ? h("span", { class: "spinner spinner-sm" }) : icon(active ? "power" : "play", { size: 14 }),
    active ? t("engines.stop") : t("engines.start"),
  );
  view.action.className = `btn btn-sm ${active ? "btn-danger-soft" : "btn-secondary"}`;
  view.action.disabled = isBusy;
  view.logsBtn.replaceChildren(icon("terminal", { size: 14 }), view.logsOpen ? t("engines.hideLogs") : t("engines.logs"));
  view.logTitle.textContent = t("engines.logsTitle", { id: s.id });
  view.refresh.setAttribute("aria-label", t("engines.refresh"));
  view.refresh.title = t("engines.refresh");
}

function renderResidency() {
  if (!residencyEl) return;
  if (!residency) {
    residencyEl.hidden = true;
    return;
  }
  residencyEl.hidden = false;
  const budget = residency.memory_budget_bytes;
  const used = residency.memory_estimate_bytes || 0;
  const policy = t(`engines.policy.${residency.policy}`);
  const rows = [h("div", { class: "residency-policy" }, policy.startsWith("engines.") ? residency.policy : policy)];
  if (budget) {
    const pct = Math.max(0, Math.min(100, (used / budget) * 100));
    const bar = h("div", { class: "meter-bar" });
    bar.style.setProperty("width", `${pct}%`);
    rows.push(
      h(
        "div",
        {
          class: "meter",
          role: "meter",
          "aria-valuemin": "0",
          "aria-valuemax": String(budget),
          "aria-valuenow": String(used),
          "aria-label": t("engines.memory"),
        },
        bar,
      ),
      h("div", { class: "residency-mem" }, t("engines.memoryUse", { used: fmt.bytes(used), budget: fmt.bytes(budget) })),
    );
  }
  if (residency.idle_ttl_s) rows.push(h("div", { class: "residency-ttl" }, t("engines.idleTtl", { v: fmt.seconds(residency.idle_ttl_s, 0) })));
  residencyEl.replaceChildren(...rows);
}

export function renderEngines() {
  if (!listEl) return;
  renderResidency();
  for (const [id, view] of cards) {
    if (!state.engines.has(id)) {
      view.el.remove();
      cards.delete(id);
    }
  }
  const empty = $(".engines-empty", listEl);
  if (state.engines.size === 0) {
    if (!empty) listEl.append(emptyView());
    else listEl.replaceChild(emptyView(), empty);
    return;
  }
  if (empty) empty.remove();
  for (const id of [...state.engines.keys()].sort()) {
    let view = cards.get(id);
    if (!view) {
      view = createCard(id);
      cards.set(id, view);
    }
    listEl.append(view.el); // keeps order; moving an element keeps its state
    updateCard(view);
  }
}

function emptyView() {
  const model = findModel(state.modelId);
  const key = `model:${state.modelId}`;
  const canStart = model && model.provider === "mlx";
  return h(
    "div",
    { class: "engines-empty", "data-testid": "engines-empty" },
    h("div", { class: "empty-icon", "aria-hidden": "true" }, icon("server", { size: 22 })),
    h("p", {}, t("engines.empty")),
    canStart
      ? h(
          "button",
          {
            type: "button",
            class: "btn btn-sm btn-secondary",
            disabled: busy.has(key),
            onclick: () => startModel(state.modelId),
          },
          busy.has(key) ? h("span", { class: "spinner spinner-sm" }) : icon("play", { size: 14 }),
          t("engines.startSelected"),
        )
      : null,
  );
}

// ------------------------------------------------------------------ panel
export function isEnginesOpen() {
  return panel && !panel.hidden;
}

export function setEnginesOpen(open, { logs = false } = {}) {
  panel.hidden = !open;
  document.body.classList.toggle("engines-open", open);
  $("#engines-btn").setAttribute("aria-expanded", String(open));
  clearInterval(tick);
  clearInterval(poll);
  if (open) {
    renderEngines();
    refreshEngines();
    tick = setInterval(() => {
      for (const view of cards.values()) {
        const entry = state.engines.get(view.id);
        if (entry) view.uptime.textContent = uptimeOf(entry) === null ? "—" : fmt.seconds(uptimeOf(entry), 0);
        if (view.logsOpen) loadLogs(view);
        if (entry && entry.status.kind === "llamacpp" && entry.status.state === "ready") loadSlots(view);
      }
    }, 2000);
    poll = setInterval(refreshEngines, 5000); // memory and uptime are not events
    if (logs) {
      const first = cards.values().next().value;
      if (first) toggleLogs(first, true);
    }
    $("#engines-close").focus();
  }
  emit("engines-toggled", open);
}

export function initEngines() {
  panel = $("#engines-panel");
  listEl = $("#engines-list");
  liveEl = $("#engines-live");
  residencyEl = $("#engines-residency");
  $("#engines-close").append(icon("x", { size: 18 }));
  $("#engines-close").addEventListener("click", () => {
    setEnginesOpen(false);
    $("#engines-btn").focus();
  });
  panel.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape") {
      setEnginesOpen(false);
      $("#engines-btn").focus();
    }
  });
  setLive(false);
}

export function relabelEngines() {
  setLive(state.enginesLive);
  renderResidency();
  if (state.engines.size === 0) {
    const empty = $(".engines-empty", listEl);
    if (empty) empty.replaceWith(emptyView());
  }
  for (const view of cards.values()) updateCard(view);
}

