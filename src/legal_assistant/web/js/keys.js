// "My API keys" (accounts mode): create a key (name, scopes, models allowlist, expiry,
// daily tokens) — shown once, with a copy button — list one's keys with today's usage,
// delete one. docs/accounts.md#api-keys.
import { ApiError, api } from "./api.js";
import { field, openSheet } from "./account-sheet.js";
import { append, clear, h } from "./dom.js";
import * as fmt from "./format.js";
import { t } from "./i18n.js";
import { icon } from "./icons.js";
import { toast } from "./toast.js";

const SCOPES = ["gateway", "read", "write"];
let created = null; // {name, key} of the key just made: shown until the sheet closes

function errorText(exc) {
  const err = exc instanceof ApiError ? exc : new ApiError({ code: "unknown" });
  return err.message || t(`err.${err.code}`);
}

export function openKeys() {
  created = null;
  const dialog = openSheet("keys-sheet", { titleKey: "keys.title", subKey: "keys.subtitle", testid: "keys-sheet", render });
  dialog.addEventListener("close", () => (created = null), { once: true });
}

function render(body) {
  const list = h("div", { class: "keys-list" }, h("span", { class: "spinner" }));
  body.append(created ? shownOnce(created) : null, createForm(body), h("h3", { class: "acct-heading" }, t("keys.title")), list);
  loadKeys(list);
}

function shownOnce({ key }) {
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(key);
      toast(t("keys.copied"));
    } catch {
      // No clipboard (an insecure origin): select the text for a manual copy.
      window.getSelection()?.selectAllChildren(code);
    }
  };
  const code = h("code", { class: "key-secret", "data-testid": "key-secret" }, key);
  return h(
    "div",
    { class: "key-once", role: "status", "data-testid": "key-once" },
    h("p", { class: "key-once-text" }, icon("alert", { size: 16 }), t("keys.once")),
    h("div", { class: "key-once-row" }, code, h("button", { type: "button", class: "btn btn-secondary btn-sm", "data-testid": "key-copy", onclick: copy }, icon("copy", { size: 14 }), t("keys.copy"))),
  );
}

function createForm(body) {
  const name = h("input", { class: "input", required: true, maxlength: 100, "data-testid": "key-name" });
  const scopes = SCOPES.map((s) => {
    const box = h("input", { type: "checkbox", value: s, checked: s === "gateway", "data-testid": `key-scope-${s}` });
    return { box, el: h("label", { class: "acct-check" }, box, t(`keys.scope.${s}`)) };
  });
  const models = h("input", { class: "input", placeholder: t("keys.allModels"), "data-testid": "key-models" });
  const expires = h("input", { class: "input", type: "date", "data-testid": "key-expires" });
  const daily = h("input", { class: "input", type: "number", min: 1, step: 1, "data-testid": "key-daily" });
  const message = h("p", { class: "login-error", role: "alert", hidden: true });
  const form = h(
    "form",
    { class: "acct-form", novalidate: true },
    field("key-name", t("keys.name"), name),
    h("fieldset", { class: "acct-fieldset" }, h("legend", { class: "field-label" }, t("keys.scopes")), scopes.map((s) => s.el)),
    field("key-models", t("keys.models"), models, t("keys.modelsHelp")),
    h("div", { class: "acct-pair" }, field("key-expires", t("keys.expires"), expires), field("key-daily", t("keys.daily"), daily)),
    message,
    h("button", { type: "submit", class: "btn btn-primary", "data-testid": "key-create" }, icon("key", { size: 16 }), t("keys.create")),
  );
  const fail = (text) => {
    message.textContent = text;
    message.hidden = false;
  };
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!name.value.trim()) return name.focus();
    const chosen = scopes.filter((s) => s.box.checked).map((s) => s.box.value);
    if (!chosen.length) return fail(t("keys.pickScope"));
    const allow = models.value.split(",").map((m) => m.trim()).filter(Boolean);
    const payload = { name: name.value.trim(), scopes: chosen, models: allow.length ? allow : null };
    // A date means "through that day", in the user's time zone.
    if (expires.value) payload.expires_at = new Date(`${expires.value}T23:59:59`).toISOString();
    if (daily.value) payload.daily_tokens = parseInt(daily.value, 10);
    try {
      const made = await api("api/keys", { method: "POST", body: payload });
      created = { name: made.name, key: made.key };
      render(clear(body));
      body.querySelector("[data-testid=key-copy]")?.focus();
    } catch (exc) {
      fail(errorText(exc));
    }
  });
  return form;
}

async function loadKeys(list) {
  try {
    const { keys } = await api("api/keys");
    clear(list);
    if (!keys.length) {
      list.append(h("p", { class: "section-empty", "data-testid": "keys-empty" }, t("keys.none")));
      return;
    }
    list.append(h("ul", { class: "acct-list" }, keys.map((k) => keyRow(k, list))));
  } catch (exc) {
    append(clear(list), [h("p", { class: "section-empty" }, errorText(exc))]);
  }
}

function keyRow(key, list) {
  const facts = [
    key.scopes.map((s) => t(`keys.scope.${s}`)).join(", "),
    key.models ? key.models.join(", ") : t("keys.allModels"),
    key.expires_at ? t("keys.expiresOn", { date: fmt.shortDate(key.expires_at) }) : t("keys.noExpiry"),
    key.daily_tokens ? t("keys.perDay", { n: key.daily_tokens }) : null,
    t("keys.lastUsed", { date: key.last_used_at ? fmt.listTime(key.last_used_at) : t("keys.never") }),
  ].filter(Boolean);
  const remove = async () => {
    try {
      await api(`api/keys/${encodeURIComponent(key.id)}`, { method: "DELETE" });
      toast(t("keys.deleted"));
      loadKeys(list);
    } catch (exc) {
      toast(errorText(exc), { kind: "error" });
    }
  };
  return h(
    "li",
    { class: "acct-row", "data-testid": "key-row", "data-id": key.id },
    h(
      "div",
      { class: "acct-row-main" },
      h("strong", { class: "acct-row-title" }, icon("key", { size: 14 }), key.name),
      h("span", { class: "acct-row-sub" }, facts.join(" · ")),
      h("span", { class: "acct-row-sub", "data-testid": "key-usage" }, t("keys.usage", { tokens: key.tokens_today ?? 0, requests: key.requests_today ?? 0 })),
    ),
    h(
      "button",
      { type: "button", class: "icon-btn icon-btn-sm item-delete", "aria-label": t("keys.delete", { name: key.name }), title: t("keys.delete", { name: key.name }), "data-testid": "key-delete", onclick: remove },
      icon("trash", { size: 15 }),
    ),
  );
}
