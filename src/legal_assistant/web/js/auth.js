// Signing in (accounts mode): the probe that decides between the login page and the app,
// the login page, the signed-in user's menu in the header (password, API keys, users and
// audit for admins, sign out), and the return to the login page when the session ends
// (a 401 `not_signed_in` from any call, noticed by api.js). With AUTH_MODE=none the probe
// answers `auth_mode: "none"` and nothing here shows: no login, no account menu.
import "./accounts-strings.js";
import { ApiError, api, setCsrfToken } from "./api.js";
import { accountIcon, closeSheets, field, openSheet, relabelSheets } from "./account-sheet.js";
import { $, append, clear, h } from "./dom.js";
import { LANGUAGES, getLanguage, setLanguage, t } from "./i18n.js";
import { icon } from "./icons.js";
import { prefs } from "./prefs.js";
import { on } from "./state.js";
import { toast } from "./toast.js";

const account = { me: null, booted: false };
let pendingBoot = null; // the app's init, run once the first sign-in succeeds
let loginNotice = "";

/** The signed-in user {id, username, role} in accounts mode; null otherwise. */
export function currentUser() {
  return account.me && account.me.auth_mode === "accounts" ? account.me.user : null;
}

export function isAccountsMode() {
  return currentUser() !== null;
}

export function isAdmin() {
  return currentUser()?.role === "admin";
}

function signedIn(me) {
  account.me = me;
  setCsrfToken(me.csrf_token);
}

/**
 * Ask the backend who we are, then run `boot` (the app) — or show the login page first
 * when accounts mode wants a sign-in. Anything else (AUTH_MODE=none, a missing API key,
 * an unreachable server) boots the app as before: it shows those errors itself.
 */
export async function startAuth(boot) {
  const stored = prefs.lang();
  setLanguage(stored && LANGUAGES.includes(stored) ? stored : "fr");
  on("signed-out", sessionEnded);
  try {
    signedIn(await api("api/auth/me"));
  } catch (exc) {
    if (exc instanceof ApiError && exc.code === "not_signed_in") {
      pendingBoot = boot;
      showLogin();
      return;
    }
  }
  runBoot(boot);
}

function runBoot(boot) {
  account.booted = true;
  // Engines are the admins' to start, stop and inspect: members do not get the buttons.
  document.body.classList.toggle("is-member", isAccountsMode() && !isAdmin());
  boot();
  mountAccountMenu();
  // The buttons have their handlers now (index.html disabled the app until here).
  const app = $(".app");
  app.removeAttribute("aria-disabled");
  app.removeAttribute("aria-busy");
}

// ------------------------------------------------------------------ login page
function sessionEnded() {
  if (!account.me || $("#login-screen")) return; // already on the login page
  account.me = null;
  setCsrfToken(null);
  closeSheets();
  loginNotice = "auth.expired";
  showLogin();
}

function showLogin() {
  const app = $(".app");
  if (app) app.hidden = true;
  document.body.classList.add("is-signed-out");
  let screen = $("#login-screen");
  if (!screen) {
    screen = h("main", { class: "login-screen", id: "login-screen", "data-testid": "login-page" });
    document.body.prepend(screen);
  }
  renderLogin(screen);
  document.title = `${t("auth.title")} — ${t("app.name")}`;
  document.body.classList.add("is-ready");
}

function renderLogin(screen, { username = "", error = "" } = {}) {
  const user = h("input", { class: "input", name: "username", autocomplete: "username", required: true, maxlength: 200, "data-testid": "login-username" });
  user.value = username;
  const password = h("input", {
    class: "input",
    type: "password",
    name: "password",
    autocomplete: "current-password",
    required: true,
    maxlength: 1024,
    "data-testid": "login-password",
  });
  const message = h("p", { class: "login-error", role: "alert", "data-testid": "login-error", hidden: !error }, error);
  const notice = loginNotice && !error ? h("p", { class: "login-notice", role: "status", "data-testid": "login-notice" }, t(loginNotice)) : null;
  const submit = h("button", { type: "submit", class: "btn btn-primary btn-block", "data-testid": "login-submit" }, t("auth.submit"));
  const form = h(
    "form",
    { class: "login-form", novalidate: true },
    field("login-username", t("auth.username"), user),
    field("login-password", t("auth.password"), password),
    message,
    submit,
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!user.value.trim() || !password.value) {
      (user.value.trim() ? password : user).focus();
      return;
    }
    submit.disabled = true;
    submit.textContent = t("auth.submitting");
    try {
      const me = await api("api/auth/login", { method: "POST", body: { username: user.value.trim(), password: password.value } });
      signedIn({ ...me, auth_mode: "accounts" });
      finishLogin(screen);
    } catch (exc) {
      const err = exc instanceof ApiError ? exc : new ApiError({ code: "unknown" });
      renderLogin(screen, { username: user.value, error: err.message || t(`err.${err.code}`) });
      $("#login-password")?.focus();
    }
  });
  const langs = h(
    "div",
    { class: "lang-switch", role: "group", "aria-label": t("header.language") },
    LANGUAGES.map((lang) =>
      h(
        "button",
        {
          type: "button",
          lang,
          "aria-pressed": String(lang === getLanguage()),
          onclick: () => {
            setLanguage(lang);
            prefs.setLang(lang);
            renderLogin(screen, { username: user.value });
            document.title = `${t("auth.title")} — ${t("app.name")}`;
          },
        },
        lang.toUpperCase(),
      ),
    ),
  );
  clear(screen).append(
    h(
      "div",
      { class: "login-card" },
      h(
        "div",
        { class: "login-brand" },
        h("span", { class: "brand-mark", "aria-hidden": "true" }, icon("scale", { size: 20 })),
        h("span", { class: "brand-name" }, t("app.name")),
        h("span", { class: "login-spacer" }),
        langs,
      ),
      h("h1", { class: "login-title" }, t("auth.title")),
      h("p", { class: "login-sub" }, t("auth.subtitle")),
      notice,
      form,
      h("p", { class: "login-foot" }, icon("lock", { size: 13 }), t("auth.footer")),
    ),
  );
  (user.value ? password : user).focus();
}

function finishLogin(screen) {
  if (account.booted) {
    // The session ended under a running app: reload it for this user (the route stays).
    window.location.reload();
    return;
  }
  screen.remove();
  document.body.classList.remove("is-signed-out");
  $(".app").hidden = false;
  loginNotice = "";
  const boot = pendingBoot;
  pendingBoot = null;
  runBoot(boot);
}

async function logout() {
  try {
    await api("api/auth/logout", { method: "POST" });
  } catch {
    /* the session is gone either way: show the login page */
  }
  // A fresh page: nothing of this user's dossiers stays in memory or in the URL.
  window.location.replace(window.location.pathname);
}

// ------------------------------------------------------------------ header menu
function mountAccountMenu() {
  const user = currentUser();
  if (!user || $("#account-menu")) return;
  const button = h(
    "button",
    {
      type: "button",
      class: "btn btn-ghost account-btn",
      id: "account-btn",
      "aria-haspopup": "menu",
      "aria-expanded": "false",
      "aria-controls": "account-menu-list",
      "data-testid": "account-button",
    },
    accountIcon("user"),
    h("span", { class: "account-name", "data-testid": "account-name" }, user.username),
    icon("chevron", { size: 14 }),
  );
  const list = h("div", { class: "account-menu-list", id: "account-menu-list", role: "menu", hidden: true });
  const wrap = h("div", { class: "account-menu", id: "account-menu" }, button, list);
  const setOpen = (open) => {
    list.hidden = !open;
    button.setAttribute("aria-expanded", String(open));
    if (open) list.querySelector("[role=menuitem]")?.focus();
  };
  button.addEventListener("click", () => setOpen(list.hidden));
  document.addEventListener("click", (ev) => {
    if (!wrap.contains(ev.target)) setOpen(false);
  });
  wrap.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape" && !list.hidden) {
      setOpen(false);
      button.focus();
    }
  });
  list.addEventListener("click", (ev) => {
    if (ev.target.closest("[role=menuitem]")) setOpen(false);
  });
  const anchor = $("#lang-switch");
  anchor.parentNode.insertBefore(wrap, anchor);
  renderMenu();
}

function renderMenu() {
  const list = $("#account-menu-list");
  const user = currentUser();
  if (!list || !user) return;
  $("#account-btn").setAttribute("aria-label", t("auth.account", { name: user.username }));
  const item = (testid, iconName, label, onclick) =>
    h("button", { type: "button", class: "account-item", role: "menuitem", "data-testid": testid, onclick }, accountIcon(iconName), label);
  append(clear(list), [
    h(
      "div",
      { class: "account-who" },
      h("strong", {}, user.username),
      h("span", { class: "muted" }, t(user.role === "admin" ? "auth.roleAdmin" : "auth.roleMember")),
    ),
    item("menu-keys", "key", t("auth.keys"), () => import("./keys.js").then((m) => m.openKeys())),
    isAdmin() ? item("menu-admin", "users", t("auth.admin"), () => import("./admin.js").then((m) => m.openAdmin())) : null,
    item("menu-password", "lock", t("auth.changePassword"), openPassword),
    item("menu-logout", "logout", t("auth.logout"), logout),
  ]);
}

/** After a language switch. */
export function relabelAccount() {
  renderMenu();
  relabelSheets();
}

// ------------------------------------------------------------------ password
function openPassword() {
  openSheet("password-sheet", { titleKey: "password.title", subKey: "password.subtitle", testid: "password-sheet", render: renderPassword });
}

function renderPassword(body) {
  const input = (autocomplete) => h("input", { class: "input", type: "password", autocomplete, required: true, maxlength: 1024 });
  const current = input("current-password");
  const fresh = input("new-password");
  const again = input("new-password");
  const message = h("p", { class: "login-error", role: "alert", hidden: true });
  const form = h(
    "form",
    { class: "acct-form", novalidate: true },
    field("pw-current", t("password.current"), current),
    field("pw-new", t("password.new"), fresh),
    field("pw-again", t("password.confirm"), again),
    message,
    h("button", { type: "submit", class: "btn btn-primary" }, t("password.save")),
  );
  const fail = (text) => {
    message.textContent = text;
    message.hidden = false;
  };
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (fresh.value !== again.value) return fail(t("password.mismatch"));
    try {
      const me = await api("api/auth/password", { method: "POST", body: { current_password: current.value, new_password: fresh.value } });
      signedIn({ ...account.me, ...me, auth_mode: "accounts" });
      form.closest("dialog")?.close();
      toast(t("password.done"));
    } catch (exc) {
      fail((exc instanceof ApiError && exc.message) || t(`err.${exc.code || "unknown"}`));
    }
  });
  body.append(form);
}
