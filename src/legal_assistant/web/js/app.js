// Entry point: wires the views together, the header, the language switch and routing
// (#/c/<conversation id> keeps the open conversation across reloads; #/d/<dossier id> is a
// dossier's page, #/d/<dossier id>/c/<conversation id> and #/d/<dossier id>/new its chats).
import { chatDossierId, focusComposer, initChat, openConversation, relabelModels, renderThread } from "./chat.js";
import { relabelAccount, startAuth } from "./auth.js";
import { $ } from "./dom.js";
import { hideDossierPage, openDossierId, relabelDossierPage, showDossierPage } from "./dossier-page.js";
import { findDossier, initDossiers, loadDossiers, relabelDossiers, showDossierBanner } from "./dossiers.js";
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

// A route: {dossierId, conversationId, chat}. A dossier without a conversation and
// without chat: true is the dossier's own page; with chat: true, a new conversation in it.
function parseRoute() {
  const hash = window.location.hash;
  const dec = (v) => (v ? decodeURIComponent(v) : null);
  const d = hash.match(/^#\/d\/([^/?#]+)(?:\/(?:c\/([^/?#]+)|(new)))?/);
  if (d) return { dossierId: dec(d[1]), conversationId: dec(d[2]), chat: Boolean(d[2] || d[3]) };
  const c = hash.match(/^#\/c\/([^/?#]+)/);
  return { dossierId: null, conversationId: c ? dec(c[1]) : null, chat: true };
}

function isDossierPage({ dossierId = null, conversationId = null, chat = false }) {
  return Boolean(dossierId && !conversationId && !chat);
}

function routeHash({ dossierId = null, conversationId = null, chat = false }) {
  const enc = encodeURIComponent;
  if (isDossierPage({ dossierId, conversationId, chat })) return `#/d/${enc(dossierId)}`;
  if (dossierId) return conversationId ? `#/d/${enc(dossierId)}/c/${enc(conversationId)}` : `#/d/${enc(dossierId)}/new`;
  return conversationId ? `#/c/${enc(conversationId)}` : "#/";
}

/** Show what a route names: a dossier's page, or the thread (in a dossier or not). */
function show(route) {
  const page = isDossierPage(route);
  $("#thread").hidden = page;
  $(".composer-wrap").hidden = page;
  if (page) {
    showDossierBanner(null);
    showDossierPage(route.dossierId);
    renderSidebar();
    return Promise.resolve();
  }
  hideDossierPage();
  return openConversation(route.conversationId, { dossier: route.dossierId });
}

function go(route) {
  const hash = routeHash(route);
  const page = isDossierPage(route);
  if (window.location.hash !== hash) history.pushState(null, "", hash);
  closeSidebar();
  show(route).then(() => {
    if (page) $("#dossier-view").focus();
    else focusComposer();
  });
  renderSidebar();
  updateTitle();
}

function navigate(id) {
  go({ conversationId: id });
}

function updateTitle() {
  const dossier = findDossier(openDossierId());
  const conv = state.conversations.find((c) => c.id === state.currentId);
  if (dossier) document.title = `${dossier.name} — ${t("app.name")}`;
  else document.title = conv ? `${conv.title} — ${t("app.name")}` : t("app.name");
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
  relabelDossiers();
  relabelDossierPage();
  relabelAccount();
  updateTitle();
  if (!state.streaming && !openDossierId()) {
    if (state.currentId) openConversation(state.currentId, { dossier: chatDossierId() });
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
  initDossiers();
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
  on("route", go);
  on("chat-dossier", (dossierId) => {
    showDossierBanner(dossierId);
    // A saved conversation of a dossier opened from #/c/<id>: name its dossier in the URL.
    if (dossierId && state.currentId) history.replaceState(null, "", routeHash({ dossierId, conversationId: state.currentId }));
  });
  on("dossier-deleted", (id) => {
    const route = parseRoute();
    if (route.dossierId === id || chatDossierId() === id) go({});
    loadConversations().then(updateTitle);
  });
  on("dossier-renamed", () => {
    updateTitle();
    renderSidebar(); // conversation rows name their dossier
  });
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
    history.replaceState(null, "", routeHash({ dossierId: chatDossierId(), conversationId: id }));
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
    loadDossiers();
  });
  window.addEventListener("popstate", () => {
    const route = parseRoute();
    const same = route.chat && !openDossierId() && route.conversationId === state.currentId && route.conversationId;
    if (!same) {
      show(route);
      renderSidebar();
      updateTitle();
    }
  });

  renderModelButton();
  renderEnginesIndicator();
  show(parseRoute());
  loadCatalog();
  loadConversations().then(updateTitle);
  loadDossiers().then(() => {
    updateTitle();
    renderSidebar();
  });
  connectEngines();
  if (prefs.enginesOpen() && window.matchMedia("(min-width: 1100px)").matches) setEnginesOpen(true);
  focusComposer();
  document.body.classList.add("is-ready");
}

// Accounts mode: the login page first when not signed in (AUTH_MODE=none: at once).
startAuth(init);
