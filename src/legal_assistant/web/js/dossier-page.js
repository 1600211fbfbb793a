// A dossier's page, shown in place of the thread: its name (rename, delete), a button for
// a new conversation in it, its search box, its documents and its conversations.
import { api } from "./api.js";
import { $, append, clear, h } from "./dom.js";
import { mountDocuments } from "./documents.js";
import { apiError, confirmBox, dossiersLoaded, findDossier, loadDossiers, nameForm, renameDossier, setActiveDossier } from "./dossiers.js";
import * as fmt from "./format.js";
import { t } from "./i18n.js";
import { icon } from "./icons.js";
import { canManageDossier, sharingPanel } from "./sharing.js";
import { searchPanel } from "./sources.js";
import { emit, on } from "./state.js";

let page = null; // {id, documents, el} while a dossier page is open
let editing = null; // "rename" | "delete" | null: what the page head shows
let renameDraft = { value: null }; // the rename field's text, across re-renders

function cancelEditing() {
  editing = null;
  renderHead();
}

function renderHead() {
  if (!page) return;
  const dossier = findDossier(page.id);
  const head = page.el.querySelector(".dossier-head");
  clear(head);
  if (!dossier) {
    head.append(h("h1", { class: "dossier-title" }, dossiersLoaded() ? t("dossiers.notFound") : "…"));
    return;
  }
  document.title = `${dossier.name} — ${t("app.name")}`;
  const titleRow =
    editing === "rename"
      ? nameForm({
          value: dossier.name,
          draft: renameDraft,
          label: t("dossiers.rename", { name: dossier.name }),
          submitLabel: t("dossiers.save"),
          onSubmit: async (name) => {
            if (await renameDossier(dossier, name)) cancelEditing();
          },
          onCancel: cancelEditing,
          testid: "rename-dossier-page",
        })
      : h(
          "div",
          { class: "dossier-title-row" },
          h("span", { class: "dossier-mark", "aria-hidden": "true" }, icon("folder", { size: 20 })),
          h("h1", { class: "dossier-title", id: "dossier-title", "data-testid": "dossier-title" }, dossier.name),
          // Rename and delete are the owner's (accounts mode): hidden from members.
          canManageDossier(dossier.id) === false ? null : h(
            "button",
            {
              type: "button",
              class: "icon-btn icon-btn-sm",
              "aria-label": t("dossiers.rename", { name: dossier.name }),
              title: t("dossiers.rename", { name: dossier.name }),
              onclick: () => {
                editing = "rename";
                renameDraft = { value: null };
                renderHead();
              },
            },
            icon("pencil", { size: 15 }),
          ),
          canManageDossier(dossier.id) === false ? null : h(
            "button",
            {
              type: "button",
              class: "icon-btn icon-btn-sm item-delete",
              "aria-label": t("dossiers.delete", { name: dossier.name }),
              title: t("dossiers.delete", { name: dossier.name }),
              onclick: () => {
                editing = "delete";
                renderHead();
              },
            },
            icon("trash", { size: 15 }),
          ),
        );
  const sub = [t("dossiers.createdOn", { date: fmt.shortDate(dossier.created_at) })];
  if (dossier.embedding_model) sub.push(t("dossiers.index", { model: String(dossier.embedding_model).replace(/^embed:/, "") }));
  append(head, [
    titleRow,
    h("p", { class: "dossier-sub" }, sub.join(" · ")),
    editing === "delete" ? confirmBox(dossier, cancelEditing) : null,
    h(
      "div",
      { class: "dossier-actions" },
      h(
        "button",
        {
          type: "button",
          class: "btn btn-primary",
          "data-testid": "dossier-new-chat",
          onclick: () => emit("route", { dossierId: dossier.id, conversationId: null, chat: true }),
        },
        icon("message", { size: 16 }),
        t("dossiers.newChat"),
      ),
    ),
  ]);
}

async function loadConversations(listEl, dossierId) {
  try {
    const body = await api(`api/dossiers/${encodeURIComponent(dossierId)}/conversations`);
    if (!page || page.id !== dossierId) return;
    const items = Array.isArray(body) ? body : body.conversations || [];
    clear(listEl);
    if (!items.length) {
      listEl.append(h("p", { class: "section-empty", "data-testid": "dossier-conversations-empty" }, t("dossiers.noConversations")));
      return;
    }
    listEl.append(
      h(
        "ul",
        { class: "card-list" },
        items.map((c) =>
          h(
            "li",
            { "data-testid": "dossier-conversation" },
            h(
              "a",
              {
                class: "card-link",
                href: `#/d/${encodeURIComponent(dossierId)}/c/${encodeURIComponent(c.id)}`,
                onclick: (ev) => {
                  ev.preventDefault();
                  emit("route", { dossierId, conversationId: c.id, chat: true });
                },
              },
              icon("message", { size: 16 }),
              h("span", { class: "card-link-title" }, c.title || "…"),
              h(
                "span",
                { class: "card-link-sub" },
                fmt.listTime(c.updated_at),
                " · ",
                c.message_count === 1 ? t("sidebar.message") : t("sidebar.messages", { n: c.message_count ?? 0 }),
              ),
            ),
          ),
        ),
      ),
    );
  } catch (exc) {
    if (!page || page.id !== dossierId) return;
    clear(listEl);
    listEl.append(h("p", { class: "section-empty" }, apiError(exc).message || t("dossiers.loadError")));
  }
}

function section(id, titleKey, ...children) {
  return h(
    "section",
    { class: "dossier-section", "aria-labelledby": id },
    h("h2", { class: "section-title", id }, t(titleKey)),
    children,
  );
}

/** Show the dossier page in place of the thread (the caller hides the chat). */
export function showDossierPage(id) {
  if (page && page.id === id) return;
  hideDossierPage();
  const el = h("div", { class: "dossier-page", "data-testid": "dossier-page", "data-id": id }, h("header", { class: "dossier-head" }));
  const conversationsEl = h("div", { class: "dossier-conversations" }, h("span", { class: "spinner" }));
  const documents = mountDocuments(id, { onChange: () => loadDossiers() });
  editing = null;
  el.append(
    section("dossier-search-title", "search.title", searchPanel(id)),
    section("dossier-documents-title", "docs.title", documents.el),
    section("dossier-conversations-title", "dossiers.conversations", conversationsEl),
  );
  const sharing = sharingPanel(id); // accounts mode only
  if (sharing) el.append(section("dossier-sharing-title", "sharing.title", sharing));
  page = { id, documents, el };
  const viewEl = $("#dossier-view");
  clear(viewEl).append(el);
  viewEl.hidden = false;
  viewEl.scrollTop = 0;
  renderHead();
  setActiveDossier(id);
  loadConversations(conversationsEl, id);
}

export function hideDossierPage() {
  if (!page) return;
  page.documents.close();
  page = null;
  const viewEl = $("#dossier-view");
  clear(viewEl);
  viewEl.hidden = true;
  setActiveDossier(null);
}

/** Re-render the open page after a language switch (its search results are dropped). */
export function relabelDossierPage() {
  if (!page) return;
  const { id } = page;
  hideDossierPage();
  showDossierPage(id);
}

on("dossiers-changed", renderHead);
on("dossier-role", renderHead);

export function openDossierId() {
  return page ? page.id : null;
}

