// The conversation list: new, open, delete (with an inline confirmation).
import { ApiError, api } from "./api.js";
import { $, clear, h } from "./dom.js";
import { findDossier } from "./dossiers.js";
import * as fmt from "./format.js";
import { t } from "./i18n.js";
import { icon } from "./icons.js";
import { emit, state } from "./state.js";
import { toast } from "./toast.js";

let listEl;
let confirming = null; // id of the conversation whose deletion awaits confirmation

export async function loadConversations() {
  try {
    state.conversations = await api("api/conversations");
    state.conversationsError = false;
  } catch (exc) {
    state.conversationsError = true;
    if (exc instanceof ApiError && exc.code === "unauthorized") emit("unauthorized");
  }
  renderSidebar();
}

async function remove(conversation) {
  try {
    await api(`api/conversations/${encodeURIComponent(conversation.id)}`, { method: "DELETE" });
  } catch (exc) {
    const err = exc instanceof ApiError ? exc : new ApiError({ code: "unknown" });
    toast(err.message || t(`err.${err.code}`), { kind: "error" });
    return;
  }
  state.conversations = state.conversations.filter((c) => c.id !== conversation.id);
  confirming = null;
  if (state.currentId === conversation.id) emit("navigate", null);
  renderSidebar();
}

function item(conversation) {
  const active = conversation.id === state.currentId;
  const title = conversation.title || "…";
  if (confirming === conversation.id) {
    const cancel = h(
      "button",
      {
        type: "button",
        class: "btn btn-sm btn-ghost",
        onclick: () => {
          confirming = null;
          renderSidebar();
        },
      },
      t("sidebar.cancel"),
    );
    const confirm = h(
      "button",
      {
        type: "button",
        class: "btn btn-sm btn-danger",
        "data-testid": "confirm-delete",
        onclick: () => remove(conversation),
      },
      icon("trash", { size: 14 }),
      t("sidebar.confirm"),
    );
    const row = h(
      "li",
      {
        class: "conv-item is-confirming",
        "data-testid": "conversation-item",
        "data-id": conversation.id,
        onkeydown: (ev) => {
          if (ev.key === "Escape") {
            confirming = null;
            renderSidebar();
          }
        },
      },
      h("span", { class: "conv-title" }, title),
      h("div", { class: "conv-confirm" }, cancel, confirm),
    );
    requestAnimationFrame(() => confirm.focus());
    return row;
  }
  const dossierId = conversation.dossier_id || null;
  const dossier = dossierId ? findDossier(dossierId) : null;
  return h(
    "li",
    {
      class: `conv-item${active ? " is-active" : ""}`,
      "data-testid": "conversation-item",
      "data-id": conversation.id,
    },
    h(
      "a",
      {
        class: "conv-open",
        href: dossierId
          ? `#/d/${encodeURIComponent(dossierId)}/c/${encodeURIComponent(conversation.id)}`
          : `#/c/${encodeURIComponent(conversation.id)}`,
        "aria-current": active ? "page" : null,
        onclick: (ev) => {
          ev.preventDefault();
          if (dossierId) emit("route", { dossierId, conversationId: conversation.id, chat: true });
          else emit("navigate", conversation.id);
        },
      },
      h("span", { class: "conv-title" }, title),
      h(
        "span",
        { class: "conv-sub" },
        dossier ? [h("span", { class: "conv-dossier" }, icon("folder", { size: 12 }), dossier.name), " · "] : null,
        h("time", { datetime: conversation.updated_at }, fmt.listTime(conversation.updated_at)),
        h("span", { "aria-hidden": "true" }, " · "),
        conversation.message_count === 1
          ? t("sidebar.message")
          : t("sidebar.messages", { n: conversation.message_count ?? 0 }),
      ),
    ),
    h(
      "button",
      {
        type: "button",
        class: "icon-btn icon-btn-sm conv-delete",
        "aria-label": t("sidebar.delete", { title }),
        title: t("sidebar.delete", { title }),
        onclick: () => {
          confirming = conversation.id;
          renderSidebar();
        },
      },
      icon("trash", { size: 15 }),
    ),
  );
}

export function renderSidebar() {
  if (!listEl) return;
  clear(listEl);
  if (state.conversationsError && state.conversations.length === 0) {
    listEl.append(h("p", { class: "conv-empty" }, t("sidebar.loadError")));
    return;
  }
  if (state.conversations.length === 0) {
    listEl.append(h("p", { class: "conv-empty", "data-testid": "conversations-empty" }, t("sidebar.empty")));
    return;
  }
  const groups = { today: [], yesterday: [], earlier: [] };
  for (const c of state.conversations) groups[fmt.dayBucket(c.updated_at)].push(c);
  for (const [bucket, items] of Object.entries(groups)) {
    if (!items.length) continue;
    const headingId = `conv-group-${bucket}`;
    listEl.append(
      h("h3", { class: "conv-group-title", id: headingId }, t(`sidebar.${bucket}`)),
      h("ul", { class: "conv-list", "aria-labelledby": headingId }, items.map(item)),
    );
  }
}

export function initSidebar() {
  listEl = $("#conv-list");
  const newBtn = $("#new-chat");
  newBtn.prepend(icon("plus", { size: 16 }));
  newBtn.addEventListener("click", () => emit("navigate", null));
  renderSidebar();
}
