// Dossiers (case files): the list of dossiers (owned here), the sidebar section (list,
// create, rename, delete with an inline confirmation) and the banner that tells a
// conversation it is grounded in a dossier. The dossier page is dossier-page.js; a
// dossier's documents are documents.js; search results and sources are sources.js.
import { ApiError, api } from "./api.js";
import { $, clear, h } from "./dom.js";
import { t } from "./i18n.js";
import { icon } from "./icons.js";
import { emit } from "./state.js";
import { toast } from "./toast.js";

const NAME_MAX = 200;

const dossiers = { list: [], loaded: false, error: false };
let navEl;
let bannerEl;
// What the sidebar shows in place of a dossier's row: {mode: "create"} or
// {mode: "rename" | "delete", id}. One at a time, like the conversation list.
let editing = null;
let activeId = null; // the dossier whose page is open, highlighted in the list

// ------------------------------------------------------------------ data
export function findDossier(id) {
  return dossiers.list.find((d) => d.id === id) || null;
}

export function dossiersLoaded() {
  return dossiers.loaded;
}

function count(value) {
  if (Array.isArray(value)) return value.length;
  return Number.isFinite(value) ? value : 0;
}

export function apiError(exc) {
  return exc instanceof ApiError ? exc : new ApiError({ code: "unknown" });
}

function errorToast(exc) {
  const err = apiError(exc);
  toast(err.message || t(`err.${err.code}`), { kind: "error" });
}

let changes = 0; // bumped by each create/rename/delete

export async function loadDossiers() {
  const seen = changes;
  try {
    const body = await api("api/dossiers");
    // A list read before our own change landed would undo it on screen: read again.
    if (seen !== changes) return loadDossiers();
    dossiers.list = Array.isArray(body) ? body : body.dossiers || [];
    dossiers.error = false;
  } catch (exc) {
    dossiers.error = true;
    if (exc instanceof ApiError && exc.code === "unauthorized") emit("unauthorized");
  }
  dossiers.loaded = true;
  renderDossierNav();
  if (bannerEl && !bannerEl.hidden) showDossierBanner(bannerEl.dataset.id || null);
  emit("dossiers-changed");
}

function upsert(dossier) {
  const i = dossiers.list.findIndex((d) => d.id === dossier.id);
  if (i >= 0) dossiers.list[i] = { ...dossiers.list[i], ...dossier };
  else dossiers.list.unshift(dossier);
}

async function create(name) {
  try {
    const dossier = await api("api/dossiers", { method: "POST", body: { name } });
    changes += 1;
    upsert(dossier);
    editing = null;
    renderDossierNav();
    emit("route", { dossierId: dossier.id });
  } catch (exc) {
    errorToast(exc);
  }
}

/** PATCH the name; true when saved (or unchanged). */
export async function renameDossier(dossier, name) {
  if (name !== dossier.name) {
    try {
      const updated = await api(`api/dossiers/${encodeURIComponent(dossier.id)}`, { method: "PATCH", body: { name } });
      changes += 1;
      upsert(updated);
    } catch (exc) {
      errorToast(exc);
      return false;
    }
  }
  editing = null;
  renderDossierNav();
  if (bannerEl && bannerEl.dataset.id === dossier.id) showDossierBanner(dossier.id);
  emit("dossiers-changed");
  emit("dossier-renamed", dossier.id);
  return true;
}

/** DELETE the dossier (its documents and conversations go with it). */
export async function deleteDossier(dossier) {
  try {
    await api(`api/dossiers/${encodeURIComponent(dossier.id)}`, { method: "DELETE" });
    changes += 1;
  } catch (exc) {
    errorToast(exc);
    return;
  }
  dossiers.list = dossiers.list.filter((d) => d.id !== dossier.id);
  editing = null;
  toast(t("dossiers.deleted", { name: dossier.name }));
  renderDossierNav();
  emit("dossier-deleted", dossier.id);
}

// ------------------------------------------------------------------ shared widgets
/**
 * An inline name field: Enter saves, Escape cancels; used to create and to rename.
 * `draft` ({ value: null } from the caller, kept while the form is open) holds what the
 * user typed: the lists re-render whenever data arrives (a dossier list read, an
 * ingestion's progress), and a re-rendered form must give the text back, caret at its
 * end, not reset it to `value`.
 */
export function nameForm({ value = "", draft = { value: null }, label, submitLabel, onSubmit, onCancel, testid }) {
  const input = h("input", {
    class: "input input-sm",
    type: "text",
    maxlength: String(NAME_MAX),
    "aria-label": label,
    placeholder: t("dossiers.namePlaceholder"),
    "data-testid": `${testid}-input`,
    required: true,
  });
  const restoring = draft.value !== null;
  input.value = restoring ? draft.value : value;
  input.addEventListener("input", () => {
    draft.value = input.value;
  });
  const form = h(
    "form",
    {
      class: "name-form",
      "data-testid": testid,
      onsubmit: (ev) => {
        ev.preventDefault();
        const name = input.value.trim();
        if (name) onSubmit(name);
        else input.focus();
      },
      onkeydown: (ev) => {
        if (ev.key === "Escape") {
          ev.stopPropagation();
          onCancel();
        }
      },
    },
    input,
    h(
      "div",
      { class: "name-form-actions" },
      h("button", { type: "button", class: "btn btn-sm btn-ghost", onclick: onCancel }, t("sidebar.cancel")),
      h("button", { type: "submit", class: "btn btn-sm btn-primary", "data-testid": `${testid}-save` }, submitLabel),
    ),
  );
  requestAnimationFrame(() => {
    input.focus();
    if (restoring) input.setSelectionRange(input.value.length, input.value.length);
    else input.select();
  });
  return form;
}

export function confirmBox(dossier, onCancel) {
  const confirm = h(
    "button",
    { type: "button", class: "btn btn-sm btn-danger", "data-testid": "confirm-delete-dossier", onclick: () => deleteDossier(dossier) },
    icon("trash", { size: 14 }),
    t("sidebar.confirm"),
  );
  requestAnimationFrame(() => confirm.focus());
  return h(
    "div",
    {
      class: "confirm-box",
      role: "group",
      "aria-label": t("dossiers.deleteTitle", { name: dossier.name }),
      onkeydown: (ev) => {
        if (ev.key === "Escape") onCancel();
      },
    },
    h("p", { class: "confirm-text" }, t("dossiers.deleteWarning", { name: dossier.name })),
    h(
      "div",
      { class: "conv-confirm" },
      h("button", { type: "button", class: "btn btn-sm btn-ghost", onclick: onCancel }, t("sidebar.cancel")),
      confirm,
    ),
  );
}

// ------------------------------------------------------------------ sidebar section
function cancelEditing() {
  editing = null;
  renderDossierNav();
}

function navItem(dossier) {
  const active = activeId === dossier.id;
  if (editing && editing.id === dossier.id && editing.mode === "rename") {
    return h(
      "li",
      { class: "conv-item is-editing", "data-testid": "dossier-item", "data-id": dossier.id },
      nameForm({
        value: dossier.name,
        draft: editing.draft,
        label: t("dossiers.rename", { name: dossier.name }),
        submitLabel: t("dossiers.save"),
        onSubmit: (name) => renameDossier(dossier, name),
        onCancel: cancelEditing,
        testid: "rename-dossier",
      }),
    );
  }
  if (editing && editing.id === dossier.id && editing.mode === "delete") {
    return h(
      "li",
      { class: "conv-item is-confirming", "data-testid": "dossier-item", "data-id": dossier.id },
      h("span", { class: "conv-title" }, dossier.name),
      confirmBox(dossier, cancelEditing),
    );
  }
  const n = count(dossier.documents);
  return h(
    "li",
    { class: `conv-item dossier-item${active ? " is-active" : ""}`, "data-testid": "dossier-item", "data-id": dossier.id },
    h(
      "a",
      {
        class: "conv-open",
        href: `#/d/${encodeURIComponent(dossier.id)}`,
        "aria-current": active ? "page" : null,
        onclick: (ev) => {
          ev.preventDefault();
          emit("route", { dossierId: dossier.id });
        },
      },
      h("span", { class: "conv-title" }, icon("folder", { size: 15 }), h("span", {}, dossier.name)),
      h("span", { class: "conv-sub" }, n === 1 ? t("dossiers.oneDocument") : t("dossiers.documents", { n })),
    ),
    h(
      "div",
      { class: "item-actions" },
      h(
        "button",
        {
          type: "button",
          class: "icon-btn icon-btn-sm",
          "aria-label": t("dossiers.rename", { name: dossier.name }),
          title: t("dossiers.rename", { name: dossier.name }),
          "data-testid": "rename-dossier-button",
          onclick: () => {
            editing = { mode: "rename", id: dossier.id, draft: { value: null } };
            renderDossierNav();
          },
        },
        icon("pencil", { size: 14 }),
      ),
      h(
        "button",
        {
          type: "button",
          class: "icon-btn icon-btn-sm item-delete",
          "aria-label": t("dossiers.delete", { name: dossier.name }),
          title: t("dossiers.delete", { name: dossier.name }),
          "data-testid": "delete-dossier-button",
          onclick: () => {
            editing = { mode: "delete", id: dossier.id };
            renderDossierNav();
          },
        },
        icon("trash", { size: 14 }),
      ),
    ),
  );
}

export function startCreateDossier() {
  // Already open (a second click): keep what is typed, just focus it again.
  if (!editing || editing.mode !== "create") editing = { mode: "create", draft: { value: null } };
  renderDossierNav();
}

export function renderDossierNav() {
  if (!navEl) return;
  clear(navEl);
  if (editing && editing.mode === "create") {
    navEl.append(
      nameForm({
        draft: editing.draft,
        label: t("dossiers.new"),
        submitLabel: t("dossiers.create"),
        onSubmit: create,
        onCancel: cancelEditing,
        testid: "create-dossier",
      }),
    );
  }
  if (dossiers.error && dossiers.list.length === 0) {
    navEl.append(h("p", { class: "conv-empty" }, t("dossiers.loadError")));
    return;
  }
  if (dossiers.loaded && dossiers.list.length === 0 && !editing) {
    navEl.append(h("p", { class: "conv-empty", "data-testid": "dossiers-empty" }, t("dossiers.empty")));
    return;
  }
  navEl.append(h("ul", { class: "conv-list", "aria-labelledby": "dossier-heading" }, dossiers.list.map(navItem)));
}

/** The line above a dossier's conversation: which dossier grounds the answers. */
export function showDossierBanner(dossierId) {
  if (!bannerEl) return;
  clear(bannerEl);
  bannerEl.hidden = !dossierId;
  bannerEl.dataset.id = dossierId || "";
  if (!dossierId) return;
  const dossier = findDossier(dossierId);
  bannerEl.append(
    icon("folder", { size: 15 }),
    h("span", { class: "banner-text" }, t("dossiers.grounded")),
    h(
      "a",
      {
        class: "banner-link",
        href: `#/d/${encodeURIComponent(dossierId)}`,
        "data-testid": "dossier-banner-link",
        onclick: (ev) => {
          ev.preventDefault();
          emit("route", { dossierId });
        },
      },
      dossier ? dossier.name : "…",
    ),
  );
}

/** Mark the dossier whose page is open (null: none). */
export function setActiveDossier(id) {
  activeId = id || null;
  renderDossierNav();
}

/** Re-render after a language switch. */
export function relabelDossiers() {
  renderDossierNav();
  if (bannerEl && !bannerEl.hidden) showDossierBanner(bannerEl.dataset.id || null);
}

export function initDossiers() {
  navEl = $("#dossier-list");
  bannerEl = $("#dossier-banner");
  const newBtn = $("#new-dossier");
  newBtn.append(icon("plus", { size: 16 }));
  newBtn.addEventListener("click", startCreateDossier);
  renderDossierNav();
}
