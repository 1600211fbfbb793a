// What the backend checked about an answer, shown with it (docs/answers.md):
// - citation chips by verdict: a passage that supports its sentence looks as always, one
//   that does not is marked (and its tooltip says so); statements with no citation are
//   subtly underlined; one line sums it up ("4 affirmations sourcées sur 5");
// - the notice of an answer stopped (a loop cut, max_tokens) with retry / a larger model;
// - the extractive answer a grounded turn adds when the model cited nothing that holds.
// Document and model text only enters the page through text nodes (setMarkdown escapes).
import { clear, h } from "./dom.js";
import { getLanguage, t } from "./i18n.js";
import { icon } from "./icons.js";
import { CITATION, citationTextNodes, linkCitations, where } from "./sources.js";
import { openViewer } from "./viewer.js";

/** Statements that are claims (greetings and "I could not find" sentences are not). */
function counted(claims) {
  return (claims || []).filter((c) => c && c.verdict !== "not_a_claim");
}

/** "4 affirmations sourcées sur 5": null when the answer makes no claim. */
export function claimsSummary(claims) {
  const all = counted(claims);
  if (!all.length) return null;
  const sourced = all.filter((c) => c.verdict === "supported").length;
  const kind = sourced === all.length ? "is-all" : sourced === 0 ? "is-none" : "is-some";
  // "1 affirmation sourcée sur 3" (French agrees with the count), "1 of 1 statement".
  const one = getLanguage() === "fr" ? sourced <= 1 : all.length === 1;
  return h(
    "p",
    { class: `claims-summary ${kind}`, "data-testid": "claims-summary", "data-sourced": String(sourced), "data-total": String(all.length) },
    icon(sourced === all.length ? "check" : "alert", { size: 14 }),
    h("span", {}, t(one ? "claims.summaryOne" : "claims.summary", { n: sourced, total: all.length })),
  );
}

/**
 * Citation chips from the claims' verdicts: each `[n]` of a passage that was sent becomes
 * a chip, `is-unsupported` (and its tooltip says so) when the passage does not back the
 * sentence it ends. Occurrences are matched to the claims' citations in answer order.
 */
export function linkCheckedCitations(root, { dossierId, sources, claims }) {
  const byN = new Map((sources || []).map((s) => [Number(s.n), s]));
  const queue = new Map(); // n -> verdicts of its occurrences, in answer order
  for (const claim of claims || []) {
    for (const c of claim.citations || []) {
      if (!queue.has(Number(c.n))) queue.set(Number(c.n), []);
      queue.get(Number(c.n)).push(c.verdict);
    }
  }
  const nodes = citationTextNodes(root);
  let made = 0;
  for (const node of nodes) {
    const frag = document.createDocumentFragment();
    let at = 0;
    let changed = false;
    CITATION.lastIndex = 0;
    for (let m = CITATION.exec(node.data); m; m = CITATION.exec(node.data)) {
      const numbers = m[1].split(/\s*[,;]\s*/).map(Number);
      if (!numbers.some((x) => byN.has(x) && queue.get(x)?.length)) continue;
      changed = true;
      frag.append(node.data.slice(at, m.index));
      for (const x of numbers) {
        const source = byN.get(x);
        const verdict = queue.get(x)?.shift();
        if (!source || !verdict) {
          frag.append(`[${x}]`);
          continue;
        }
        made += 1;
        const unsupported = verdict !== "supported";
        const place = `${source.filename} — ${where(source)}${source.label ? ` — ${source.label}` : ""}`;
        frag.append(
          h(
            "button",
            {
              type: "button",
              class: `cite${unsupported ? " is-unsupported" : ""}`,
              "data-testid": "citation",
              "data-n": String(x),
              "data-verdict": verdict,
              title: unsupported ? `${t("claims.unsupported")} (${place})` : place,
              "aria-label": `${t("sources.open", { n: x, file: source.filename, where: where(source) })}${unsupported ? ` — ${t("claims.unsupported")}` : ""}`,
              onclick: () => openViewer({ dossierId, documentId: source.document_id, filename: source.filename, page: source.page || 1, charStart: source.char_start, charEnd: source.char_end, label: source.label }),
            },
            String(x),
          ),
        );
      }
      at = m.index + m[0].length;
    }
    if (!changed) continue;
    frag.append(node.data.slice(at));
    node.replaceWith(frag);
  }
  return made;
}

/** Underline, subtly, the statements that cite nothing (when found in one text node). */
export function markUncited(root, claims) {
  let marked = 0;
  for (const claim of claims || []) {
    if (claim.verdict !== "uncited") continue;
    const text = String(claim.text || "").trim();
    if (text.length < 8) continue;
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      if (node.parentElement?.closest(".claim-uncited, pre, code")) continue;
      const at = node.data.indexOf(text);
      if (at < 0) continue;
      const range = document.createRange();
      range.setStart(node, at);
      range.setEnd(node, at + text.length);
      const span = h("span", { class: "claim-uncited", "data-testid": "uncited-claim", title: t("claims.uncited") });
      range.surroundContents(span);
      marked += 1;
      break;
    }
  }
  return marked;
}

/** Chips, marks and the summary of a grounded answer whose claims were checked. */
export function renderClaims(answerEl, summaryEl, { dossierId, sources, claims }) {
  linkCheckedCitations(answerEl, { dossierId, sources, claims });
  markUncited(answerEl, claims);
  clear(summaryEl);
  const summary = claimsSummary(claims);
  if (summary) summaryEl.append(summary);
}

/** The notice under an answer that did not end by itself. */
export function stopNotice(stopped, { onRetry = null, onPickModel = null } = {}) {
  if (!stopped) return null;
  const key = stopped === "repetition" ? "stop.repetition" : "stop.maxTokens";
  const actions = [];
  if (onRetry) {
    actions.push(h("button", { type: "button", class: "btn btn-sm btn-secondary", "data-testid": "stop-retry", onclick: onRetry }, icon("refresh", { size: 14 }), t("error.retry")));
  }
  if (onPickModel && stopped === "repetition") {
    actions.push(h("button", { type: "button", class: "btn btn-sm btn-secondary", "data-testid": "stop-pick-model", onclick: onPickModel }, icon("sliders", { size: 14 }), t("stop.pickModel")));
  }
  return h(
    "div",
    { class: `stop-notice is-${stopped}`, role: "status", "data-testid": "stop-notice", "data-stopped": stopped },
    icon("alert", { size: 15 }),
    h("span", { class: "stop-text" }, t(key)),
    actions.length ? h("span", { class: "stop-actions" }, actions) : null,
  );
}

/** The extractive answer (quoted passages, their numbers as chips), shown as an answer part. */
export function extractPart(extract, { dossierId, sources, setMarkdown }) {
  if (!extract || !extract.text) return null;
  const body = h("div", { class: "markdown" });
  setMarkdown(body, extract.text);
  linkCitations(body, { dossierId, sources, citations: extract.sources || [] });
  return h("section", { class: "answer-extract", "data-testid": "answer-extract", "aria-label": t("extract.label") }, body);
}
