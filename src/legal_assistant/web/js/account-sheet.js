// The side sheets of the accounts UI (password, API keys, users and audit) and their small
// shared pieces: a <dialog> built on demand with the look of the LLM settings sheet, the
// few icons the rest of the UI has no use for, and labelled form fields.
import { $, clear, h } from "./dom.js";
import { t } from "./i18n.js";
import { icon } from "./icons.js";

const SVG_NS = "http://www.w3.org/2000/svg";
const PATHS = {
  user: ["M20 21a8 8 0 0 0-16 0", "M12 13a5 5 0 1 0 0-10 5 5 0 0 0 0 10z"],
  users: ["M17 21a6 6 0 0 0-12 0", "M11 11a4 4 0 1 0 0-8 4 4 0 0 0 0 8z", "M21 21a5 5 0 0 0-4-4.9", "M16 3.2a4 4 0 0 1 0 7.6"],
  logout: ["M9 21H5a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2h4", "M16 17l5-5-5-5", "M21 12H9"],
  share: ["M18 8a3 3 0 1 0 0-6 3 3 0 0 0 0 6z", "M6 15a3 3 0 1 0 0-6 3 3 0 0 0 0 6z", "M18 22a3 3 0 1 0 0-6 3 3 0 0 0 0 6z", "M8.6 13.5l6.8 4", "M15.4 6.5l-6.8 4"],
};

/** An icon of this module's set, else of icons.js's. */
export function accountIcon(name, { size = 16 } = {}) {
  if (!PATHS[name]) return icon(name, { size });
  const svg = document.createElementNS(SVG_NS, "svg");
  for (const [k, v] of Object.entries({
    viewBox: "0 0 24 24",
    width: size,
    height: size,
    fill: "none",
    stroke: "currentColor",
    "stroke-width": "2",
    "stroke-linecap": "round",
    "stroke-linejoin": "round",
    class: `icon icon-${name}`,
    "aria-hidden": "true",
  })) {
    svg.setAttribute(k, String(v));
  }
  for (const d of PATHS[name]) {
    const path = document.createElementNS(SVG_NS, "path");
    path.setAttribute("d", d);
    svg.append(path);
  }
  return svg;
}

/** A labelled field: <label>text</label><control>, the control gets `id`. */
export function field(id, label, control, help = null) {
  control.id = id;
  return h(
    "div",
    { class: "acct-field" },
    h("label", { class: "field-label", for: id }, label),
    control,
    help ? h("p", { class: "field-help" }, help) : null,
  );
}

const sheets = new Map(); // id -> {dialog, body, render}

/**
 * Open (building it once) the side sheet `id`; `render(body)` fills its body each time it
 * opens and whenever the language changes while it is open.
 */
export function openSheet(id, { titleKey, subKey, testid, render }) {
  let entry = sheets.get(id);
  if (!entry) {
    const title = h("h2", { class: "sheet-title", id: `${id}-title` });
    const sub = h("p", { class: "sheet-sub" });
    const close = h("button", { type: "button", class: "icon-btn", onclick: () => dialog.close() }, icon("x", { size: 18 }));
    const body = h("div", { class: "sheet-body acct-sheet-body" });
    const dialog = h(
      "dialog",
      { class: "sheet acct-sheet", id, "aria-labelledby": `${id}-title`, "data-testid": testid },
      h("div", { class: "sheet-inner" }, h("header", { class: "sheet-head" }, h("div", {}, title, sub), close), body),
    );
    dialog.addEventListener("click", (ev) => {
      if (ev.target === dialog) dialog.close(); // a click on the backdrop
    });
    document.body.append(dialog);
    entry = { dialog, body, title, sub, close, titleKey, subKey, render };
    sheets.set(id, entry);
  }
  entry.render = render;
  relabelSheet(entry);
  if (!entry.dialog.open) entry.dialog.showModal();
  return entry.dialog;
}

function relabelSheet(entry) {
  entry.title.textContent = t(entry.titleKey);
  entry.sub.textContent = entry.subKey ? t(entry.subKey) : "";
  entry.close.setAttribute("aria-label", t("common.close"));
  entry.close.title = t("common.close");
  entry.render(clear(entry.body));
}

/** Re-render the open sheets in the new language. */
export function relabelSheets() {
  for (const entry of sheets.values()) if (entry.dialog.open) relabelSheet(entry);
}

export function closeSheets() {
  for (const entry of sheets.values()) if (entry.dialog.open) entry.dialog.close();
}

export function sheetBody(id) {
  return sheets.get(id)?.body || $(`#${id} .sheet-body`);
}
