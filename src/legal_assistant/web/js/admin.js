// "Users and audit log", for admins (accounts mode): create a user, change a role,
// disable or enable an account; read the audit log filtered by user and date.
// The backend decides (members get 403); this sheet is only offered to admins.
import { ApiError, api } from "./api.js";
import { field, openSheet } from "./account-sheet.js";
import { append, clear, h } from "./dom.js";
import * as fmt from "./format.js";
import { getLanguage, t } from "./i18n.js";
import { icon } from "./icons.js";
import { toast } from "./toast.js";

const ROLES = ["member", "admin"];
let auditFilter = { user: "", since: "" };

/** An audit timestamp to the second, in the UI language (not the browser's). */
function stamp(iso) {
  return new Date(iso).toLocaleString(getLanguage() === "en" ? "en-GB" : "fr-FR", { dateStyle: "short", timeStyle: "medium" });
}

function errorText(exc) {
  const err = exc instanceof ApiError ? exc : new ApiError({ code: "unknown" });
  return err.message || t(`err.${err.code}`);
}

export function openAdmin() {
  openSheet("admin-sheet", { titleKey: "admin.title", subKey: "admin.subtitle", testid: "admin-sheet", render });
}

function render(body) {
  const users = h("div", { class: "acct-users" }, h("span", { class: "spinner" }));
  const audit = h("div", { class: "acct-audit" });
  body.append(
    h("h3", { class: "acct-heading" }, t("admin.users")),
    createForm(users),
    users,
    h("h3", { class: "acct-heading" }, t("admin.audit")),
    auditForm(audit),
    audit,
  );
  loadUsers(users);
  loadAudit(audit);
}

function roleSelect(value, attrs = {}) {
  return h(
    "select",
    { class: "input input-sm", ...attrs },
    ROLES.map((r) => h("option", { value: r, selected: r === value }, t(`admin.${r}`))),
  );
}

function createForm(users) {
  const name = h("input", { class: "input", required: true, maxlength: 64, autocomplete: "off", "data-testid": "user-name" });
  const password = h("input", { class: "input", type: "password", required: true, autocomplete: "new-password", maxlength: 1024, "data-testid": "user-password" });
  const role = roleSelect("member", { "data-testid": "user-role" });
  const message = h("p", { class: "login-error", role: "alert", hidden: true, "data-testid": "user-error" });
  const form = h(
    "form",
    { class: "acct-form acct-form-inline", novalidate: true },
    h("div", { class: "acct-pair" }, field("user-new-name", t("auth.username"), name), field("user-new-password", t("auth.password"), password)),
    h("div", { class: "acct-pair" }, field("user-new-role", t("admin.role"), role), h("div", { class: "acct-field acct-field-end" }, h("button", { type: "submit", class: "btn btn-primary", "data-testid": "user-create" }, icon("plus", { size: 16 }), t("admin.create")))),
    message,
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!name.value.trim()) return name.focus();
    try {
      const made = await api("api/users", { method: "POST", body: { username: name.value.trim(), password: password.value, role: role.value } });
      toast(t("admin.created", { name: made.username }));
      name.value = "";
      password.value = "";
      message.hidden = true;
      loadUsers(users);
    } catch (exc) {
      message.textContent = errorText(exc);
      message.hidden = false;
    }
  });
  return form;
}

async function loadUsers(el) {
  try {
    const { users } = await api("api/users");
    append(clear(el), [h("ul", { class: "acct-list" }, users.map((u) => userRow(u, el)))]);
  } catch (exc) {
    append(clear(el), [h("p", { class: "section-empty" }, errorText(exc))]);
  }
}

function userRow(user, el) {
  const patch = async (change) => {
    try {
      await api(`api/users/${encodeURIComponent(user.id)}`, { method: "PATCH", body: change });
    } catch (exc) {
      toast(errorText(exc), { kind: "error" });
    }
    loadUsers(el);
  };
  const role = roleSelect(user.role, { "aria-label": `${t("admin.role")} — ${user.username}`, "data-testid": "user-row-role" });
  role.addEventListener("change", () => patch({ role: role.value }));
  return h(
    "li",
    { class: `acct-row${user.disabled ? " is-disabled" : ""}`, "data-testid": "user-row", "data-username": user.username },
    h(
      "div",
      { class: "acct-row-main" },
      h("strong", { class: "acct-row-title" }, user.username),
      h("span", { class: "acct-row-sub" }, [fmt.shortDate(user.created_at), user.disabled ? t("admin.disabled") : null].filter(Boolean).join(" · ")),
    ),
    role,
    h(
      "button",
      { type: "button", class: "btn btn-ghost btn-sm", "data-testid": "user-toggle", onclick: () => patch({ disabled: !user.disabled }) },
      t(user.disabled ? "admin.enable" : "admin.disable"),
    ),
  );
}

function auditForm(audit) {
  const user = h("input", { class: "input input-sm", maxlength: 64, autocomplete: "off", "data-testid": "audit-user" });
  user.value = auditFilter.user;
  const since = h("input", { class: "input input-sm", type: "datetime-local", "data-testid": "audit-since" });
  since.value = auditFilter.since;
  const form = h(
    "form",
    { class: "acct-pair acct-audit-form" },
    field("audit-user", t("admin.user"), user),
    field("audit-since", t("admin.since"), since),
    h("div", { class: "acct-field acct-field-end" }, h("button", { type: "submit", class: "btn btn-secondary btn-sm", "data-testid": "audit-filter" }, icon("search", { size: 14 }), t("admin.filter"))),
  );
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    auditFilter = { user: user.value.trim(), since: since.value };
    loadAudit(audit);
  });
  return form;
}

async function loadAudit(el) {
  const query = new URLSearchParams({ limit: "200" });
  if (auditFilter.user) query.set("user", auditFilter.user);
  // datetime-local is the user's local time: the API wants an ISO instant.
  if (auditFilter.since) query.set("since", new Date(auditFilter.since).toISOString());
  append(clear(el), [h("span", { class: "spinner" })]);
  try {
    const { entries } = await api(`api/audit?${query}`);
    clear(el);
    if (!entries.length) {
      el.append(h("p", { class: "section-empty" }, t("admin.noEntries")));
      return;
    }
    const head = ["admin.at", "admin.user", "admin.action", "admin.resource", "admin.outcome"];
    el.append(
      h(
        "div",
        { class: "audit-scroll" },
        h(
          "table",
          { class: "audit-table", "data-testid": "audit-table" },
          h("thead", {}, h("tr", {}, head.map((k) => h("th", { scope: "col" }, t(k))))),
          h(
            "tbody",
            {},
            entries.map((e) =>
              h(
                "tr",
                { "data-testid": "audit-entry", class: `outcome-${e.outcome}` },
                h("td", { class: "audit-at" }, stamp(e.at)),
                h("td", {}, e.user),
                h("td", {}, e.action),
                h("td", { class: "audit-resource" }, e.resource || ""),
                h("td", {}, h("span", { class: `chip chip-${e.outcome}` }, t(`admin.outcome.${e.outcome}`))),
              ),
            ),
          ),
        ),
      ),
    );
  } catch (exc) {
    append(clear(el), [h("p", { class: "section-empty" }, errorText(exc))]);
  }
}
