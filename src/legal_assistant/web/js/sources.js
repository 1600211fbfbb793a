// Passages shown to the user: the dossier's search box and its results, the sources listed
// under a grounded answer, and the answer's verified citations [n] turned into chips. Text
// from documents only ever enters the page through text nodes (highlights are <mark>
// elements built around slices of it), never through innerHTML.
import { ApiError, api } from "./api.js";
import { append, clear, h } from "./dom.js";
import { t } from "./i18n.js";
import { icon } from "./icons.js";
import { openViewer, reflow } from "./viewer.js";

const EXCERPT = 420; // characters of a long passage shown in a result, around its first match

/** `text` as nodes, with each [start, end) range of `ranges` wrapped in <mark>. */
export function highlighted(text, ranges = [], markClass = "hit-mark") {
  const frag = document.createDocumentFragment();
  const clean = (ranges || [])
    .filter((r) => Array.isArray(r) && r.length >= 2 && Number.isFinite(r[0]) && Number.isFinite(r[1]))
    .map(([s, e]) => [Math.max(0, s), Math.min(text.length, e)])
    .filter(([s, e]) => e > s)
    .sort((a, b) => a[0] - b[0]);
  let at = 0;
  for (const [s, e] of clean) {
    if (e <= at) continue;
    const start = Math.max(s, at);
    if (start > at) frag.append(text.slice(at, start));
    frag.append(h("mark", { class: markClass }, text.slice(start, e)));
    at = e;
  }
  if (at < text.length) frag.append(text.slice(at));
  return frag;
}

/** A window of a long passage around its first highlight, with the ranges shifted. */
function excerpt(text, ranges) {
  if (text.length <= EXCERPT) return { text, ranges };
  const first = (ranges || []).reduce((m, r) => (Array.isArray(r) ? Math.min(m, r[0]) : m), text.length);
  let start = first >= text.length ? 0 : Math.max(0, first - 120);
  if (start > 0) {
    const space = text.indexOf(" ", start);
    if (space >= 0 && space < first) start = space + 1;
  }
  const end = Math.min(text.length, start + EXCERPT);
  const shift = start > 0 ? 1 : 0; // the leading "…"
  const shown = `${start > 0 ? "…" : ""}${text.slice(start, end)}${end < text.length ? "…" : ""}`;
  const moved = (ranges || [])
    .filter((r) => Array.isArray(r) && r[1] > start && r[0] < end)
    .map(([s, e]) => [Math.max(s, start) - start + shift, Math.min(e, end) - start + shift]);
  return { text: shown, ranges: moved };
}

/** "p. 3" for a paginated document, "§ 4" (paragraph) otherwise. */
export function where(item) {
  if (item.paragraph) return t("sources.paragraph", { n: item.paragraph });
  return t("sources.page", { n: item.page ?? 1 });
}

function viewerTarget(dossierId, item) {
  return {
    dossierId,
    documentId: item.document_id,
    filename: item.filename,
    page: item.page || 1,
    charStart: item.char_start,
    charEnd: item.char_end,
    label: item.label,
  };
}

// ------------------------------------------------------------------ search
function resultItem(dossierId, hit) {
  const shown = excerpt(reflow(String(hit.text || "")), hit.highlights);
  return h(
    "li",
    { class: "hit", "data-testid": "search-result", "data-page": String(hit.page ?? ""), "data-document": hit.document_id },
    h(
      "button",
      { type: "button", class: "hit-open", onclick: () => openViewer(viewerTarget(dossierId, hit)) },
      h(
        "span",
        { class: "hit-head" },
        h("span", { class: "hit-file", "data-testid": "result-file" }, hit.filename || "…"),
        h("span", { class: "hit-loc", "data-testid": "result-page" }, where(hit)),
        hit.label ? h("span", { class: "hit-label", "data-testid": "result-label" }, hit.label) : null,
      ),
      h("span", { class: "hit-text", "data-testid": "result-text" }, highlighted(shown.text, shown.ranges)),
    ),
  );
}

/** The dossier's search box; results open the viewer at their page. */
export function searchPanel(dossierId) {
  const input = h("input", {
    type: "search",
    class: "input search-input",
    "aria-label": t("search.label"),
    placeholder: t("search.placeholder"),
    maxlength: "1000",
    "data-testid": "search-input",
  });
  const button = h("button", { type: "submit", class: "btn btn-primary", "data-testid": "search-button" }, icon("search", { size: 16 }), h("span", {}, t("search.go")));
  const resultsEl = h("div", { class: "search-results", "aria-live": "polite", "data-testid": "search-results" });
  let seq = 0;

  async function run(query) {
    seq += 1;
    const mine = seq;
    clear(resultsEl).append(h("div", { class: "search-loading", "aria-busy": "true" }, h("span", { class: "spinner spinner-sm" }), t("search.searching")));
    try {
      const body = await api(`api/dossiers/${encodeURIComponent(dossierId)}/search?q=${encodeURIComponent(query)}&k=10`);
      if (mine !== seq) return;
      const results = body.results || [];
      clear(resultsEl);
      if (!results.length) {
        resultsEl.append(h("p", { class: "section-empty", "data-testid": "search-empty" }, t("search.none")));
        return;
      }
      append(resultsEl, [
        h("p", { class: "search-count" }, results.length === 1 ? t("search.one") : t("search.count", { n: results.length })),
        body.relevant === false ? h("p", { class: "search-note", "data-testid": "search-not-relevant" }, t("search.notRelevant")) : null,
        h("ol", { class: "hit-list" }, results.map((hit) => resultItem(dossierId, hit))),
      ]);
    } catch (exc) {
      if (mine !== seq) return;
      const err = exc instanceof ApiError ? exc : new ApiError({ code: "unknown" });
      clear(resultsEl).append(h("p", { class: "doc-error", role: "alert" }, icon("alert", { size: 14 }), h("span", {}, err.message || t(`err.${err.code}`))));
    }
  }

  const form = h(
    "form",
    {
      class: "search-form",
      role: "search",
      onsubmit: (ev) => {
        ev.preventDefault();
        const query = input.value.trim();
        if (query) run(query);
        else input.focus();
      },
    },
    h("span", { class: "search-icon", "aria-hidden": "true" }, icon("search", { size: 16 })),
    input,
    button,
  );
  return h("div", { class: "search-panel" }, form, resultsEl);
}

// ------------------------------------------------------------------ grounded answers
/** The passages a grounded answer was given, as a list under it. */
export function sourcesList(dossierId, sources, cited = null) {
  const list = Array.isArray(sources) ? sources : [];
  const citedSet = new Set(cited || []);
  if (!list.length) {
    return h("div", { class: "sources is-empty", "data-testid": "sources" }, icon("search", { size: 14 }), h("span", {}, t("sources.none")));
  }
  return h(
    "section",
    { class: "sources", "data-testid": "sources", "aria-label": t("sources.title", { n: list.length }) },
    h("h3", { class: "sources-title" }, icon("file", { size: 14 }), t("sources.title", { n: list.length })),
    h(
      "ol",
      { class: "source-list" },
      list.map((s) =>
        h(
          "li",
          { class: `source-item${citedSet.has(s.n) ? " is-cited" : ""}`, "data-testid": "source-item", "data-n": String(s.n) },
          h(
            "button",
            {
              type: "button",
              class: "source-open",
              "aria-label": t("sources.open", { n: s.n, file: s.filename, where: where(s) }),
              onclick: () => openViewer(viewerTarget(dossierId, s)),
            },
            h("span", { class: "source-n", "aria-hidden": "true" }, String(s.n)),
            h(
              "span",
              { class: "source-main" },
              h(
                "span",
                { class: "source-head" },
                h("span", { class: "source-file" }, s.filename || "…"),
                h("span", { class: "source-loc", "data-testid": "source-page" }, where(s)),
                s.label ? h("span", { class: "source-label" }, s.label) : null,
                citedSet.has(s.n) ? h("span", { class: "visually-hidden" }, t("sources.cited")) : null,
              ),
              h("span", { class: "source-snippet" }, reflow(String(s.text || ""))),
            ),
          ),
        ),
      ),
    ),
  );
}

export const CITATION = /\[(\d{1,3}(?:\s*[,;]\s*\d{1,3})*)\]/g;

/** The text nodes of `root` that may hold a "[n]" citation (not inside code or controls). */
export function citationTextNodes(root) {
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT, {
    acceptNode: (node) => (node.parentElement && node.parentElement.closest("pre, code, a, button") ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_ACCEPT),
  });
  const nodes = [];
  for (let n = walker.nextNode(); n; n = walker.nextNode()) if (/\[\d/.test(n.data)) nodes.push(n);
  return nodes;
}

/**
 * Turn the answer's citations into chips that open the viewer — only the numbers the
 * backend verified (`citations`): a number the model made up stays plain text.
 */
export function linkCitations(root, { dossierId, sources, citations }) {
  const verified = new Set((citations || []).map(Number));
  const byN = new Map((sources || []).map((s) => [Number(s.n), s]));
  if (!verified.size) return 0;
  const nodes = citationTextNodes(root);
  let made = 0;
  for (const node of nodes) {
    const frag = document.createDocumentFragment();
    let at = 0;
    CITATION.lastIndex = 0;
    for (let m = CITATION.exec(node.data); m; m = CITATION.exec(node.data)) {
      const numbers = m[1].split(/\s*[,;]\s*/).map(Number);
      if (!numbers.some((x) => verified.has(x) && byN.has(x))) continue;
      frag.append(node.data.slice(at, m.index));
      for (const x of numbers) {
        const source = byN.get(x);
        if (!verified.has(x) || !source) {
          frag.append(`[${x}]`);
          continue;
        }
        made += 1;
        frag.append(
          h(
            "button",
            {
              type: "button",
              class: "cite",
              "data-testid": "citation",
              "data-n": String(x),
              title: `${source.filename} — ${where(source)}${source.label ? ` — ${source.label}` : ""}`,
              "aria-label": t("sources.open", { n: x, file: source.filename, where: where(source) }),
              onclick: () => openViewer(viewerTarget(dossierId, source)),
            },
            String(x),
          ),
        );
      }
      at = m.index + m[0].length;
    }
    frag.append(node.data.slice(at));
    node.replaceWith(frag);
  }
  return made;
}
