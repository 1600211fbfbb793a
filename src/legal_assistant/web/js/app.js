// Entry point: wires the views together, the header, the language switch and routing
// (#/c/<conversation id> keeps the open conversation across reloads).
import { focusComposer, initChat, openConversation, relabelModels, renderThread } from "./chat.js";
import { $ } from "./dom.js";
import {
  connectEngines,
  initEngines,
  isEnginesOpen,
  refreshEngines,
  relabelEngines,
  setEnginesOpen,
} from "./engines.js";
import { LANGUAGES, getLanguage, setLanguage, t, translateDom } from "./i18n.js";
import { icon } from "./icons.js";
import { initModels, isModelsOpen, loadCatalog, openModels, renderModels } from "./models.js";
import { prefs } from "./prefs.js";
import { initSidebar, loadConversations, renderSidebar } from "./sidebar.js";
import { engineFor, modelLabel, on, shortModelLabel, state } from "./state.js";

const STATE_CLASS = {
  ready: "ok",
  starting: "busy",
  loading: "busy",
  stopping: "busy",
  failed: "error",
  stopped: "idle",
};

function routeId() {
  const m = window.location.hash.match(/^#\/c\/([^/?#]+)/);
  return m ? decodeURIComponent(m[1]) : null;
}

function navigate(id) {
  const hash = id ? `#/c/${encodeURIComponent(id)}` : "#/";
  if (window.location.hash !== hash) history.pushState(null, "", hash);
  closeSidebar();
  openConversation(id).then(() => focusComposer());
  renderSidebar();
  updateTitle();
}

function updateTitle() {
  const conv = state.conversations.find((c) => c.id === state.currentId);
  document.title = conv ? `${conv.title} — ${t("app.name")}` : t("app.name");
}

// ------------------------------------------------------------------ header
function renderModelButton() {
  const btn = $("#model-btn");
  let label = t("models.loading");
  if (state.modelId) label = modelLabel(state.modelId);
  else if (state.catalog.loaded) label = t("header.noModel");
  const engine = engineFor(state.modelId);
  const dotState = engine ? STATE_CLASS[engine.state] || "idle" : "idle";
  $("#model-btn-label").textContent = state.modelId ? shortModelLabel(state.modelId) : label;
  $("#model-btn-dot").className = `dot dot-${dotState}`;
  btn.setAttribute("aria-label", `${t("header.settings")} — ${t("header.model", { model: label })}`);
  btn.title = t("header.model", { model: label });
}

function renderEnginesIndicator() {
  const states = [...state.engines.values()].map((e) => e.status.state);
  let s = "idle";
  if (states.includes("failed")) s = "error";
  else if (states.some((x) => ["starting", "loading", "stopping"].includes(x))) s = "busy";
  else if (states.includes("ready")) s = "ok";
  $("#engines-dot").className = `dot dot-${s}`;
}

function renderLanguageSwitch() {
  for (const btn of document.querySelectorAll("#lang-switch button")) {
    btn.setAttribute("aria-pressed", String(btn.dataset.lang === getLanguage()));
  }
}

function applyLanguage(lang) {
  setLanguage(lang);
  prefs.setLang(lang);
  translateDom();
  renderLanguageSwitch();
  renderModelButton();
  renderSidebar();
  renderModels();
  relabelEngines();
  updateTitle();
  if (!state.streaming) {
    if (state.currentId) openConversation(state.currentId);
    else renderThread();
  }
}

// ------------------------------------------------------------------ sidebar (mobile)
function openSidebar() {
  document.body.classList.add("sidebar-open");
  $("#menu-btn").setAttribute("aria-expanded", "true");
  $("#scrim").hidden = false;
  $("#new-chat").focus();
}

function closeSidebar() {
  if (!document.body.classList.contains("sidebar-open")) return;
  document.body.classList.remove("sidebar-open");
  $("#menu-btn").setAttribute("aria-expanded", "false");
  $("#scrim").hidden = true;
}

// ------------------------------------------------------------------ boot
function init() {
  const stored = prefs.lang();
  setLanguage(stored && LANGUAGES.includes(stored) ? stored : "fr");
  translateDom();

  $("#brand-mark").append(icon("scale", { size: 20 }));
  $("#menu-btn").append(icon("menu", { size: 20 }));
  $("#model-btn-icon").append(icon("sliders", { size: 16 }));
  $("#model-btn-chevron").append(icon("chevron", { size: 16 }));
  $("#engines-btn-icon").append(icon("server", { size: 16 }));
  $("#privacy-icon").append(icon("lock", { size: 14 }));

  initSidebar();
  initChat();
  initModels();
  initEngines();

  $("#menu-btn").addEventListener("click", () =>
    document.body.classList.contains("sidebar-open") ? closeSidebar() : openSidebar(),
  );
  $("#scrim").addEventListener("click", closeSidebar);
  document.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape" && document.body.classList.contains("sidebar-open")) closeSidebar();
  });
  $("#model-btn").addEventListener("click", () => openModels());
  $("#engines-btn").addEventListener("click", () => {
    const open = !isEnginesOpen();
    setEnginesOpen(open);
    prefs.setEnginesOpen(open);
  });
  for (const btn of document.querySelectorAll("#lang-switch button")) {
    btn.addEventListener("click", () => applyLanguage(btn.dataset.lang));
  }
  renderLanguageSwitch();

  on("navigate", navigate);
  on("model", renderModelButton);
  on("catalog", () => {
    relabelModels();
    relabelEngines();
  });
  on("engines", () => {
    renderModelButton();
    renderEnginesIndicator();
  });
  on("open-settings", (opts) => openModels(opts || {}));
  on("open-engines", (opts) => setEnginesOpen(true, opts || {}));
  on("models-closed", () => $("#model-btn").focus());
  on("conversation-created", (id) => {
    history.replaceState(null, "", `#/c/${encodeURIComponent(id)}`);
    loadConversations().then(updateTitle);
  });
  on("turn-finished", () => {
    loadConversations().then(updateTitle);
    if (isEnginesOpen()) refreshEngines(); // in-flight counts are not events
  });
  on("unauthorized", () => {
    if (!isModelsOpen()) openModels({ focusKey: true });
  });
  on("api-key", () => {
    connectEngines();
    loadCatalog();
    loadConversations();
  });
  window.addEventListener("popstate", () => {
    const id = routeId();
    if (id !== state.currentId) {
      openConversation(id);
      renderSidebar();
    }
  });

  renderModelButton();
  renderEnginesIndicator();
  const id = routeId();
  openConversation(id);
  loadCatalog();
  loadConversations().then(updateTitle);
  connectEngines();
  if (prefs.enginesOpen() && window.matchMedia("(min-width: 1100px)").matches) setEnginesOpen(true);
  focusComposer();
  document.body.classList.add("is-ready");
}

init();
