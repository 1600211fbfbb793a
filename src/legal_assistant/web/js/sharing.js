// A dossier's sharing panel (accounts mode): its owner and members with their roles,
// editable by the owner and admins. `GET /api/dossiers/{id}/access` says what the user may
// do: members see which role they have, `canManageDossier` answers false so the dossier
// page hides its owner-only buttons (rename, delete), and readers — who may not upload or
// delete documents — do not get those controls either (data-can-edit on the page).
import { ApiError, api } from "./api.js";
import { accountIcon, field } from "./account-sheet.js";
import { isAccountsMode } from "./auth.js";
import { append, clear, h } from "./dom.js";
import { t } from "./i18n.js";
import { icon } from "./icons.js";
import { emit } from "./state.js";
import { toast } from "./toast.js";

const ROLES = ["reader", "editor"];
const manage = new Map(); // dossier id -> true (owner/admin) | false (member)

/** Whether the signed-in user may rename, delete and share the dossier: true, false, or
 * null while unknown (and always true with AUTH_MODE=none: the local user owns all). */
export function canManageDossier(dossierId) {
  if (!isAccountsMode()) return true;
  return manage.has(dossierId) ? manage.get(dossierId) : null;
}

function errorText(exc) {
  const err = exc instanceof ApiError ? exc : new ApiError({ code: "unknown" });
  return err.message || t(`err.${err.code}`);
}

function setManage(dossierId, value) {
  const before = manage.get(dossierId);
  manage.set(dossierId, value);
  if (before !== value) emit("dossier-role", dossierId);
}

/** The panel for the dossier page, or null with AUTH_MODE=none (nothing to share). */
export function sharingPanel(dossierId) {
  if (!isAccountsMode()) return null;
  const el = h("div", { class: "sharing", "data-testid": "sharing-panel" }, h("span", { class: "spinner" }));
  const url = `api/dossiers/${encodeURIComponent(dossierId)}/members`;
  let draft = { username: "", role: "reader" };

  const render = (body) => {
    clear(el);
    el.append(h("p", { class: "sharing-owner", "data-testid": "sharing-owner" }, accountIcon("user", { size: 14 }), t("sharing.owner", { name: body.owner?.username || "—" })));
    if (!body.members.length) el.append(h("p", { class: "section-empty", "data-testid": "sharing-empty" }, t("sharing.none")));
    else el.append(h("ul", { class: "sharing-list" }, body.members.map((m) => memberRow(body, m))));
    el.append(addForm(body), h("p", { class: "field-help" }, t("sharing.help")));
  };

  const save = async (body, members) => {
    try {
      const saved = await api(url, { method: "PUT", body: { members: members.map(({ username, role }) => ({ username, role })) } });
      toast(t("sharing.saved"));
      draft = { username: "", role: draft.role };
      render(saved);
      return true;
    } catch (exc) {
      toast(errorText(exc), { kind: "error" });
      if (exc instanceof ApiError && exc.status === 403) notOwner();
      else render(body);
      return false;
    }
  };

  const memberRow = (body, member) => {
    const select = h(
      "select",
      { class: "input input-sm sharing-role", "aria-label": t("sharing.roleOf", { name: member.username }), "data-testid": "member-role" },
      ROLES.map((r) => h("option", { value: r, selected: r === member.role }, t(`sharing.${r}`))),
    );
    select.addEventListener("change", () =>
      save(body, body.members.map((m) => (m.username === member.username ? { ...m, role: select.value } : m))),
    );
    return h(
      "li",
      { class: "sharing-member", "data-testid": "member", "data-username": member.username },
      accountIcon("user", { size: 14 }),
      h("span", { class: "sharing-name" }, member.username),
      select,
      h(
        "button",
        {
          type: "button",
          class: "icon-btn icon-btn-sm item-delete",
          "aria-label": t("sharing.remove", { name: member.username }),
          title: t("sharing.remove", { name: member.username }),
          "data-testid": "member-remove",
          onclick: () => save(body, body.members.filter((m) => m.username !== member.username)),
        },
        icon("x", { size: 15 }),
      ),
    );
  };

  const addForm = (body) => {
    const name = h("input", { class: "input input-sm", maxlength: 64, autocomplete: "off", "data-testid": "share-username" });
    name.value = draft.username;
    name.addEventListener("input", () => (draft.username = name.value));
    const role = h(
      "select",
      { class: "input input-sm", "data-testid": "share-role" },
      ROLES.map((r) => h("option", { value: r, selected: r === draft.role }, t(`sharing.${r}`))),
    );
    role.addEventListener("change", () => (draft.role = role.value));
    const form = h(
      "form",
      { class: "sharing-add" },
      field(`share-user-${dossierId}`, t("sharing.username"), name),
      field(`share-role-${dossierId}`, t("sharing.role"), role),
      h("button", { type: "submit", class: "btn btn-secondary btn-sm", "data-testid": "share-submit" }, accountIcon("share", { size: 14 }), t("sharing.add")),
    );
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const username = name.value.trim();
      if (!username) return name.focus();
      const others = body.members.filter((m) => m.username !== username);
      if (await save(body, [...others, { username, role: role.value }])) return;
      el.querySelector("[data-testid=share-username]")?.focus();
    });
    return form;
  };

  const notOwner = (role) => {
    setManage(dossierId, false);
    const text = role ? t("sharing.yourRole", { role: t(`sharing.${role}`).toLowerCase() }) : t("sharing.notOwner");
    append(clear(el), [h("p", { class: "section-empty", "data-testid": "sharing-not-owner" }, text)]);
  };

  const failed = (exc) => {
    if (exc instanceof ApiError && exc.status === 403) notOwner(null);
    else append(clear(el), [h("p", { class: "section-empty" }, exc instanceof ApiError && exc.message ? exc.message : t("sharing.loadError"))]);
  };

  api(`api/dossiers/${encodeURIComponent(dossierId)}/access`)
    .then((access) => {
      el.closest(".dossier-page")?.setAttribute("data-can-edit", String(Boolean(access.can_edit)));
      if (!access.can_share) return notOwner(access.role);
      setManage(dossierId, true);
      return api(url).then(render);
    })
    .catch(failed);
  return el;
}
