// The document viewer: one page of a document's extracted text at a time
// (GET .../documents/{doc}/pages/{n}), the cited passage highlighted from its character
// offsets and scrolled into view, previous/next page, and a link to the original file.
// A modal <dialog>: Escape closes it, focus goes back where it was.
import { ApiError, api, eventSourceUrl } from "./api.js";
import { clear, h } from "./dom.js";
import { t } from "./i18n.js";
import { icon } from "./icons.js";

let dialog = null;
let els = null;
let opener = null;
// What is shown: {dossierId, documentId, filename, page, pages, focus: {page, start, end, label}}
let view = null;
let seq = 0;

// The extraction's page notes (documents/ocr.py), in the UI language.
const NOTES = {
  "no text, OCR not installed": "viewer.note.notInstalled",
  "no text, OCR disabled": "viewer.note.disabled",
  "no text found by OCR": "viewer.note.nothing",
  "no text, OCR failed": "viewer.note.failed",
};

function docPath(v) {
  return `api/dossiers/${encodeURIComponent(v.dossierId)}/documents/${encodeURIComponent(v.documentId)}`;
}

function build() {
  const close = h("button", { type: "button", class: "icon-btn", "aria-label": t("common.close"), title: t("common.close"), "data-testid": "viewer-close" }, icon("x", { size: 18 }));
  const prev = h("button", { type: "button", class: "btn btn-secondary btn-sm", "data-testid": "viewer-prev" }, icon("chevronLeft", { size: 15 }), h("span", { class: "viewer-nav-text" }));
  const next = h("button", { type: "button", class: "btn btn-secondary btn-sm", "data-testid": "viewer-next" }, h("span", { class: "viewer-nav-text" }), icon("chevronRight", { size: 15 }));
  const download = h("a", { class: "btn btn-ghost btn-sm", "data-testid": "viewer-download", download: "" }, icon("download", { size: 15 }), h("span", {}));
  els = {
    title: h("h2", { class: "viewer-title", id: "viewer-title", "data-testid": "viewer-title" }),
    sub: h("p", { class: "viewer-sub", "data-testid": "viewer-page-label" }),
    note: h("p", { class: "viewer-note", "data-testid": "viewer-note", hidden: true }),
    body: h("div", { class: "viewer-body", tabindex: "0", "data-testid": "viewer-body" }),
    indicator: h("span", { class: "viewer-indicator", "aria-live": "polite" }),
    prev,
    next,
    download,
    close,
  };
  dialog = h(
    "dialog",
    { class: "viewer", "aria-labelledby": "viewer-title", "data-testid": "viewer" },
    h(
      "div",
      { class: "viewer-inner" },
      h(
        "header",
        { class: "viewer-head" },
        h("span", { class: "viewer-icon", "aria-hidden": "true" }, icon("file", { size: 18 })),
        h("div", { class: "viewer-heading" }, els.title, els.sub),
        close,
      ),
      els.note,
      els.body,
      h("footer", { class: "viewer-foot" }, prev, els.indicator, next, h("span", { class: "viewer-spacer" }), download),
    ),
  );
  close.addEventListener("click", () => dialog.close());
  prev.addEventListener("click", () => go(-1));
  next.addEventListener("click", () => go(1));
  dialog.addEventListener("click", (ev) => {
    if (ev.target === dialog) dialog.close(); // a click on the backdrop
  });
  // On the document, not the dialog: paging to the last page disables "next", and the
  // focus it held falls back to <body>.
  document.addEventListener("keydown", (ev) => {
    if (!dialog.open || ev.target instanceof HTMLInputElement || ev.altKey || ev.ctrlKey || ev.metaKey) return;
    if (ev.key === "ArrowLeft") {
      ev.preventDefault();
      go(-1);
    } else if (ev.key === "ArrowRight") {
      ev.preventDefault();
      go(1);
    }
  });
  dialog.addEventListener("close", () => {
    seq += 1;
    if (opener && opener.isConnected) opener.focus();
    opener = null;
  });
  document.body.append(dialog);
}

function go(delta) {
  if (!view) return;
  const target = view.page + delta;
  if (target < 1 || (view.pages && target > view.pages)) return;
  load(target);
}

function relabel() {
  els.close.setAttribute("aria-label", t("common.close"));
  els.close.title = t("common.close");
  els.prev.querySelector(".viewer-nav-text").textContent = t("viewer.prev");
  els.next.querySelector(".viewer-nav-text").textContent = t("viewer.next");
  els.prev.setAttribute("aria-label", t("viewer.prevLabel"));
  els.next.setAttribute("aria-label", t("viewer.nextLabel"));
  els.download.querySelector("span").textContent = t("viewer.download");
  els.download.title = t("viewer.downloadTitle");
}

/**
 * A PDF's text layer breaks lines where the page did. Join a line to the next when that
 * one goes on in lower case (a sentence wrapped, not a new paragraph): one character for
 * one, so the passages' offsets still point at the same text.
 */
export function reflow(text) {
  return text.replace(/([^\n])\n(?=[a-zà-ÿœ(«,;:.])/g, "$1 ");
}

/**
 * `text[from:to]` as nodes, the number that opens each numbered paragraph of a judgment
 * ("12. ") shown as a paragraph mark. `numbers` holds {n, start, end} offsets into the page.
 */
function numbered(text, from, to, numbers) {
  const out = [];
  let at = from;
  for (const p of numbers) {
    if (p.start < at || p.end > to) continue; // straddles a boundary: left as text
    out.push(text.slice(at, p.start), h("span", { class: "para-num", "data-testid": "viewer-paragraph", "data-n": String(p.n) }, text.slice(p.start, p.end)));
    at = p.end;
  }
  out.push(text.slice(at, to));
  return out;
}

function paragraphNumbers(text, page) {
  const found = [];
  for (const p of (view && view.paragraphs) || []) {
    if (p.page !== page) continue;
    const m = /^\d{1,4}\s*[.)]/.exec(text.slice(p.char_start, p.char_start + 8));
    if (m) found.push({ n: p.n, start: p.char_start, end: p.char_start + m[0].length });
  }
  return found.sort((a, b) => a.start - b.start);
}

function pageText(text, focus, numbers = []) {
  const frag = document.createDocumentFragment();
  const start = focus ? Math.max(0, Math.min(text.length, focus.start)) : 0;
  const end = focus ? Math.max(start, Math.min(text.length, focus.end)) : 0;
  if (!focus || end <= start) {
    frag.append(...numbered(text, 0, text.length, numbers));
    return { frag, mark: null };
  }
  const mark = h("mark", { class: "passage-mark", "data-testid": "viewer-highlight" }, numbered(text, start, end, numbers));
  frag.append(...numbered(text, 0, start, numbers), mark, ...numbered(text, end, text.length, numbers));
  return { frag, mark };
}

function render(data) {
  view.page = data.page;
  view.pages = data.pages;
  const focus = view.focus && view.focus.page === data.page && Number.isFinite(view.focus.start) ? view.focus : null;
  els.title.textContent = view.filename || "…";
  const sub = [data.pages ? t("viewer.pageOf", { n: data.page, total: data.pages }) : t("viewer.page", { n: data.page })];
  if (focus && focus.label) sub.push(focus.label);
  els.sub.textContent = sub.join(" · ");
  els.indicator.textContent = data.pages ? `${data.page} / ${data.pages}` : String(data.page);
  const refocus = [els.prev, els.next].includes(document.activeElement);
  els.prev.disabled = data.page <= 1;
  els.next.disabled = Boolean(data.pages) && data.page >= data.pages;
  if (refocus && document.activeElement.disabled) els.body.focus();
  let note = data.note ? (NOTES[data.note] ? t(NOTES[data.note]) : data.note) : "";
  if (!note && data.source === "none") note = t("viewer.noText");
  if (!note && data.source === "ocr") note = t("viewer.ocr");
  els.note.hidden = !note;
  els.note.textContent = note;
  els.note.classList.toggle("is-warn", data.source === "none");
  clear(els.body);
  const text = reflow(String(data.text || ""));
  if (!text.trim()) {
    els.body.append(h("p", { class: "viewer-empty" }, t("viewer.empty")));
    return;
  }
  const { frag, mark } = pageText(text, focus, paragraphNumbers(text, data.page));
  const pageEl = h("div", { class: "viewer-page", "data-testid": "viewer-text", "data-page": String(data.page) });
  pageEl.append(frag);
  els.body.append(pageEl);
  els.body.scrollTop = 0;
  if (mark) requestAnimationFrame(() => mark.scrollIntoView({ block: "center" }));
}

async function load(n) {
  seq += 1;
  const mine = seq;
  const v = view;
  clear(els.body).append(h("div", { class: "thread-loading", "aria-busy": "true" }, h("span", { class: "spinner" })));
  els.indicator.textContent = v.pages ? `${n} / ${v.pages}` : String(n);
  try {
    const data = await api(`${docPath(v)}/pages/${encodeURIComponent(n)}`);
    if (mine !== seq || v !== view) return;
    render(data);
  } catch (exc) {
    if (mine !== seq) return;
    const err = exc instanceof ApiError ? exc : new ApiError({ code: "unknown" });
    clear(els.body).append(h("p", { class: "doc-error", role: "alert" }, icon("alert", { size: 14 }), h("span", {}, err.message || t(`err.${err.code}`))));
  }
}

/**
 * Open a document at a page; with charStart/charEnd, that passage of the page is
 * highlighted and scrolled into view; with `paragraphs` (a judgment's {n, page,
 * char_start}), each paragraph's number is shown as a paragraph mark.
 */
export function openViewer({ dossierId, documentId, filename, page = 1, charStart, charEnd, label, paragraphs = null }) {
  if (!dialog) build();
  relabel();
  view = {
    dossierId,
    documentId,
    filename,
    page,
    pages: null,
    focus: Number.isFinite(charStart) && Number.isFinite(charEnd) ? { page, start: charStart, end: charEnd, label } : null,
    paragraphs: Array.isArray(paragraphs) ? paragraphs : null, // a judgment's numbered paragraphs
  };
  els.title.textContent = filename || "…";
  els.sub.textContent = t("viewer.page", { n: page });
  els.download.href = eventSourceUrl(`${docPath(view)}/file`);
  if (!dialog.open) {
    opener = document.activeElement instanceof HTMLElement ? document.activeElement : null;
    dialog.showModal();
  }
  els.body.focus();
  load(page);
}

export function closeViewer() {
  if (dialog && dialog.open) dialog.close();
}
