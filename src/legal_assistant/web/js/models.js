// "Paramètres LLM": the model catalog grouped by provider, and the API key.
import { ApiError, api } from "./api.js";
import { $, clear, h } from "./dom.js";
import * as fmt from "./format.js";
import { getLanguage, t } from "./i18n.js";
import { icon } from "./icons.js";
import { prefs } from "./prefs.js";
import { emit, engineFor, modelLabel, on, state } from "./state.js";
import { toast } from "./toast.js";

let dialog;
let bodyEl;

export async function loadCatalog() {
  try {
    const catalog = await api("api/models");
    state.catalog = { ...catalog, loaded: true, error: null };
  } catch (exc) {
    state.catalog = { ...state.catalog, loaded: true, error: exc };
    if (exc instanceof ApiError && exc.code === "unauthorized") emit("unauthorized");
  }
  const stored = prefs.model();
  const known = state.catalog.models.some((m) => m.id === stored);
  state.modelId = known ? stored : state.catalog.default || stored || null;
  emit("model");
  emit("catalog");
  renderModels();
}

// Supervised engines (the rest are used directly: nothing to warm).
const WARMABLE = new Set(["mlx", "llamacpp", "vllm"]);
// Engine states shown next to a model while its engine comes up (docs/first-answer.md).
const PHASES = new Set(["starting", "loading", "stopping"]);

/** Start the picked model's engine and prefill its system prompt in the background, so
 * the first answer does not wait for a cold start. A message sent before it is ready
 * joins the start; a failure is reported by that message, not here. */
function warm(id) {
  if (!WARMABLE.has(id.split(":", 1)[0])) return;
  api("api/engines/start", {
    method: "POST",
    body: { model_id: id, warm: true, language: getLanguage() },
  }).catch(() => {});
}

function choose(id) {
  // Only a change of model warms: re-clicking the current one starts nothing.
  if (id !== state.modelId) warm(id);
  state.modelId = id;
  prefs.setModel(id);
  emit("model");
  for (const el of bodyEl.querySelectorAll(".model-option")) {
    el.classList.toggle("is-selected", el.dataset.id === id);
  }
}

function badge(text, kind) {
  return h("span", { class: `badge badge-${kind}` }, text);
}

function phaseText(engine) {
  const phase = engine.phase ? t(`models.phase.${engine.phase}`) : "";
  return phase && !phase.startsWith("models.") ? phase : t(`models.phase.${engine.state}`);
}

/** The model's engine, live: its phase while it warms ("Démarrage…", "Chargement…"),
 * then "Chargé". Always there (empty when idle) so it updates in place, as a live region. */
function engineBadge(model, engine) {
  let kind = "";
  let text = "";
  if (engine && PHASES.has(engine.state)) {
    kind = "info";
    text = phaseText(engine);
  } else if ((engine && engine.state === "ready") || (!engine && model.loaded)) {
    kind = "ok";
    text = t("models.loaded");
  }
  const cls = kind ? `badge badge-${kind} model-phase` : "model-phase";
  return h("span", { class: cls, "data-testid": "model-phase", role: "status" }, text);
}

function updatePhases() {
  if (!bodyEl) return;
  for (const el of bodyEl.querySelectorAll(".model-option")) {
    const model = state.catalog.models.find((m) => m.id === el.dataset.id);
    const old = $(".model-phase", el);
    if (model && old) old.replaceWith(engineBadge(model, engineFor(model.id)));
  }
}

function option(model) {
  const selected = model.id === state.modelId;
  const engine = engineFor(model.id);
  const inputId = `model-${model.id.replace(/[^A-Za-z0-9_-]/g, "_")}`;
  const badges = h("span", { class: "model-badges" });
  if (model.default) badges.append(badge(t("models.default"), "accent"));
  if (model.recommended) badges.append(badge(t("models.recommended"), "info"));
  badges.append(engineBadge(model, engine));
  badges.append(
    model.available_offline
      ? h(
          "span",
          { class: "badge badge-offline", "data-testid": "offline-badge" },
          icon("check", { size: 12 }),
          t("models.offline"),
        )
      : badge(t("models.download"), "muted"),
  );
  const specs = [];
  if (model.size_bytes) specs.push(t("models.size", { v: fmt.bytes(model.size_bytes) }));
  if (model.ram_estimate_bytes) specs.push(t("models.ram", { v: fmt.bytes(model.ram_estimate_bytes) }));
  const input = h("input", {
    type: "radio",
    name: "model",
    id: inputId,
    value: model.id,
    class: "model-radio",
    checked: selected,
    onclick: () => choose(model.id),
    onchange: () => choose(model.id),
  });
  return h(
    "label",
    {
      class: `model-option${selected ? " is-selected" : ""}`,
      for: inputId,
      "data-id": model.id,
      "data-testid": "model-option",
    },
    input,
    h("span", { class: "model-check", "aria-hidden": "true" }, icon("check", { size: 14 })),
    h(
      "span",
      { class: "model-text" },
      h("span", { class: "model-label" }, modelLabel(model.id)),
      model.description ? h("span", { class: "model-desc" }, model.description) : null,
      specs.length ? h("span", { class: "model-specs" }, specs.join(" · ")) : null,
      badges,
    ),
  );
}

function group(provider, models) {
  const legendId = `group-${provider}`;
  const fieldset = h(
    "fieldset",
    { class: "model-group", "aria-labelledby": legendId },
    h("legend", { id: legendId, class: "group-title" }, t(`models.group.${provider}`)),
  );
  if (models.length) fieldset.append(h("div", { class: "model-options" }, models.map(option)));
  if (provider === "ollama" && state.catalog.ollama_error && !models.length) {
    fieldset.append(
      h(
        "p",
        { class: "group-note", title: state.catalog.ollama_error },
        t("models.ollamaError", { v: state.catalog.ollama_error.replace(/^❌\s*/, "") }),
      ),
    );
  }
  return fieldset;
}

function apiKeySection() {
  const input = h("input", {
    type: "password",
    id: "api-key",
    class: "input",
    autocomplete: "off",
    spellcheck: "false",
    placeholder: t("settings.apiKeyPlaceholder"),
    "aria-describedby": "api-key-help",
  });
  input.value = prefs.apiKey();
  const save = () => {
    prefs.setApiKey(input.value.trim());
    toast(input.value.trim() ? t("settings.saved") : t("settings.cleared"));
    emit("api-key");
  };
  input.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter") {
      ev.preventDefault();
      save();
    }
  });
  return h(
    "section",
    { class: "settings-section", "aria-labelledby": "access-title" },
    h("h3", { class: "group-title", id: "access-title" }, icon("key", { size: 14 }), t("settings.access")),
    h("label", { class: "field-label", for: "api-key" }, t("settings.apiKey")),
    h(
      "div",
      { class: "field-row" },
      input,
      h("button", { type: "button", class: "btn btn-secondary", onclick: save }, t("settings.save")),
      h(
        "button",
        {
          type: "button",
          class: "btn btn-ghost",
          onclick: () => {
            input.value = "";
            save();
          },
        },
        t("settings.clear"),
      ),
    ),
    h("p", { class: "field-help", id: "api-key-help" }, t("settings.apiKeyHelp")),
  );
}

export function renderModels() {
  if (!bodyEl) return;
  const scroll = bodyEl.scrollTop;
  const focused = bodyEl.contains(document.activeElement) ? document.activeElement.id : null;
  const typedKey = $("#api-key", bodyEl)?.value;
  clear(bodyEl);
  const { catalog } = state;
  if (!catalog.loaded) {
    bodyEl.append(h("p", { class: "muted" }, t("models.loading")));
  } else if (catalog.error) {
    const err = catalog.error;
    const hint = t(`hint.${err.code}`);
    bodyEl.append(
      h(
        "div",
        { class: "group-note is-error", role: "alert" },
        h("p", {}, err.message && err.code !== "network" ? err.message : t("models.loadError")),
        hint.startsWith("hint.") ? null : h("p", { class: "note-hint" }, hint),
      ),
    );
  } else {
    const byProvider = { mlx: [], ollama: [], openai: [] };
    for (const m of catalog.models) (byProvider[m.provider] ||= []).push(m);
    bodyEl.append(group("mlx", byProvider.mlx));
    if (byProvider.ollama.length || catalog.ollama_error) bodyEl.append(group("ollama", byProvider.ollama));
    if (byProvider.openai.length) bodyEl.append(group("openai", byProvider.openai));
  }
  bodyEl.append(apiKeySection());
  if (typedKey !== undefined) $("#api-key", bodyEl).value = typedKey;
  bodyEl.scrollTop = scroll;
  if (focused) document.getElementById(focused)?.focus();
}

export function isModelsOpen() {
  return Boolean(dialog && dialog.open);
}

export function openModels({ focusKey = false } = {}) {
  renderModels();
  if (!dialog.open) dialog.showModal();
  loadCatalog(); // refresh loaded/offline marks
  const target = focusKey
    ? $("#api-key", dialog)
    : $(".model-option.is-selected input", dialog) || $(".model-radio", dialog);
  if (target) target.focus();
}

export function initModels() {
  dialog = $("#models-dialog");
  bodyEl = $("#models-body");
  $("#models-close").append(icon("x", { size: 18 }));
  dialog.addEventListener("click", (ev) => {
    if (ev.target === dialog) dialog.close(); // click on the backdrop
  });
  dialog.addEventListener("close", () => emit("models-closed"));
  on("engines", updatePhases);
}
