// A dossier's documents, each with its ingestion live from GET /api/dossiers/{id}/events
// (extracting p/N, embedding n/M, ready, failed + reason), its pages, passages, flagged
// pages, and a remove button (inline confirmation). The upload zone is uploads.js.
import { ApiError, api, eventSourceUrl } from "./api.js";
import { clear, h } from "./dom.js";
import * as fmt from "./format.js";
import { t } from "./i18n.js";
import { icon } from "./icons.js";
import { judgmentSlot, knownParagraphs } from "./judgment.js";
import { toast } from "./toast.js";
import { extBadge, meter, reasonText, uploadQueue } from "./uploads.js";
import { openViewer } from "./viewer.js";

const BUSY = new Set(["queued", "extracting", "embedding"]);
const CHIP = { queued: "chip", extracting: "chip chip-loading", embedding: "chip chip-loading", ready: "chip chip-ready", failed: "chip chip-failed" };

function pageList(value) {
  if (Array.isArray(value)) return value;
  return [];
}

function progressText(doc) {
  const { stage, done, total } = doc.live || doc; // the last event, else the listed fields
  const status = doc.status;
  const known = Number.isFinite(done) && Number.isFinite(total) && total > 0;
  if (status === "queued") return t("docs.queued");
  if (status === "extracting" || stage === "extracting") {
    return known ? t("docs.extractingN", { done, total }) : t("docs.extracting");
  }
  if (status === "embedding" || stage === "embedding") {
    return known ? t("docs.embeddingN", { done, total }) : t("docs.embedding");
  }
  return t(`docs.status.${status}`);
}

function fraction(doc) {
  const live = doc.live || doc;
  if (typeof live.progress === "number" && live.progress > 0) return live.progress;
  if (Number.isFinite(live.done) && Number.isFinite(live.total) && live.total > 0) return live.done / live.total;
  return doc.status === "queued" ? 0 : null; // null: an indeterminate bar
}

export function mountDocuments(dossierId, { onChange = () => {} } = {}) {
  const base = `api/dossiers/${encodeURIComponent(dossierId)}`;
  const docs = new Map(); // document id -> the document as last known (+ .live: last event)
  const rows = new Map(); // document id -> <li> (uploads.js owns the rows of uploads)
  const uploadedAt = new Map(); // document id -> when its 202 came back (performance.now())
  const eventAt = new Map(); // document id -> when its last event came (performance.now())
  let confirming = null;
  let closed = false;
  let refreshTimer = 0;

  const uploads = uploadQueue(`${base}/documents`, {
    onUploaded: (added) => {
      for (const doc of added) {
        // The same file twice (sha256) is answered with the document already there.
        if (doc.duplicate) toast(t("docs.duplicate", { name: doc.filename }));
        merge(doc, -Infinity); // what the 202 says is older than any event of the document
        uploadedAt.set(doc.id, performance.now());
        renderDoc(doc.id);
      }
      onChange();
    },
    onChange: () => renderSummary(),
  });
  const summaryEl = h("p", { class: "doc-summary", "data-testid": "documents-summary" });
  // Not a live region (progress would be read out on every step): the end of each job is
  // announced once, by a toast (role "status" / "alert").
  const listEl = h("ul", { class: "doc-list", "data-testid": "documents" });
  uploads.attach(listEl);
  const el = h("div", { class: "documents" }, uploads.zone, summaryEl, listEl);

  // ---------------------------------------------------------------- rendering
  function renderSummary() {
    const all = [...docs.values()];
    if (!all.length && !listEl.childElementCount) {
      summaryEl.textContent = t("docs.empty");
      return;
    }
    const passages = all.reduce((n, d) => n + (d.status === "ready" ? d.passages || 0 : 0), 0);
    const ready = all.filter((d) => d.status === "ready").length;
    summaryEl.textContent = [
      all.length === 1 ? t("dossiers.oneDocument") : t("dossiers.documents", { n: all.length }),
      t(ready <= 1 ? "docs.readyOne" : "docs.ready", { n: ready }),
      passages === 1 ? t("docs.indexedOne") : t("docs.indexed", { n: passages }),
    ].join(" · ");
  }

  function removeButton(doc) {
    return h(
      "button",
      {
        type: "button",
        class: "icon-btn icon-btn-sm item-delete",
        "aria-label": t("docs.remove", { name: doc.filename }),
        title: t("docs.remove", { name: doc.filename }),
        "data-testid": "remove-document",
        onclick: () => {
          confirming = doc.id;
          renderDoc(doc.id);
        },
      },
      icon("trash", { size: 15 }),
    );
  }

  function confirmRemove(doc) {
    const yes = h(
      "button",
      { type: "button", class: "btn btn-sm btn-danger", "data-testid": "confirm-remove-document", onclick: () => removeDoc(doc) },
      icon("trash", { size: 14 }),
      t("docs.removeConfirm"),
    );
    requestAnimationFrame(() => yes.focus());
    const cancel = () => {
      confirming = null;
      renderDoc(doc.id);
    };
    return h(
      "div",
      { class: "doc-confirm", onkeydown: (ev) => ev.key === "Escape" && cancel() },
      h("span", {}, t("docs.removeWarning")),
      h("button", { type: "button", class: "btn btn-sm btn-ghost", onclick: cancel }, t("sidebar.cancel")),
      yes,
    );
  }

  function docRow(doc) {
    const busy = BUSY.has(doc.status);
    const facts = [];
    if (doc.pages) facts.push(doc.pages === 1 ? t("docs.onePage") : t("docs.pages", { n: doc.pages }));
    if (doc.status === "ready") facts.push(doc.passages === 1 ? t("docs.onePassage") : t("docs.passages", { n: doc.passages ?? 0 }));
    if (doc.size_bytes) facts.push(fmt.bytes(doc.size_bytes));
    if (pageList(doc.ocr_pages).length) facts.push(t("docs.ocrPages", { n: pageList(doc.ocr_pages).length }));
    const name =
      doc.status === "ready"
        ? h("button", { type: "button", class: "doc-name", "data-testid": "document-open", onclick: () => openViewer({ dossierId, documentId: doc.id, filename: doc.filename, page: 1, paragraphs: knownParagraphs(dossierId, doc.id) }) }, doc.filename)
        : h("span", { class: "doc-name" }, doc.filename);
    const main = h(
      "div",
      { class: "doc-main" },
      h(
        "div",
        { class: "doc-line" },
        name,
        h("span", { class: CHIP[doc.status] || "chip", "data-testid": "document-status" }, t(`docs.status.${doc.status}`)),
      ),
      facts.length ? h("div", { class: "doc-facts", "data-testid": "document-facts" }, facts.join(" · ")) : null,
    );
    if (busy) {
      const text = progressText(doc);
      main.append(h("div", { class: "doc-progress" }, meter(fraction(doc), text), h("span", { class: "doc-progress-text", "data-testid": "document-progress" }, text)));
    }
    const noText = pageList(doc.no_text_pages);
    if (noText.length) {
      // Each page number opens the viewer there, where the page's own note says why.
      const links = noText.slice(0, 12).map((n) =>
        h("button", { type: "button", class: "page-link", onclick: () => openViewer({ dossierId, documentId: doc.id, filename: doc.filename, page: n }) }, String(n)),
      );
      main.append(
        h(
          "p",
          { class: "doc-warn", "data-testid": "document-warning" },
          icon("alert", { size: 14 }),
          h("span", {}, t(noText.length === 1 ? "docs.noTextOne" : "docs.noText", { n: noText.length }), " ", links, noText.length > 12 ? " …" : ""),
        ),
      );
    }
    if (doc.status === "failed") {
      main.append(h("p", { class: "doc-error", role: "status", "data-testid": "document-error" }, icon("alert", { size: 14 }), h("span", {}, reasonText(doc.error) || t("docs.failedUnknown"))));
    }
    if (confirming === doc.id) main.append(confirmRemove(doc));
    return h(
      "li",
      { class: `doc-row is-${doc.status}`, "data-testid": "document", "data-id": doc.id, "data-status": doc.status },
      extBadge(doc.filename),
      main,
      h(
        "div",
        { class: "doc-actions" },
        doc.status === "ready" ? judgmentSlot(dossierId, doc) : null,
        confirming === doc.id ? null : removeButton(doc),
      ),
    );
  }

  function renderDoc(id) {
    const doc = docs.get(id);
    if (!doc) return;
    const row = docRow(doc);
    const old = rows.get(id);
    if (old) old.replaceWith(row);
    else listEl.prepend(row);
    rows.set(id, row);
    renderSummary();
  }

  function renderAll() {
    const ordered = [...docs.values()].sort((a, b) => String(b.created_at || "").localeCompare(String(a.created_at || "")));
    for (const doc of ordered.reverse()) renderDoc(doc.id); // prepend: newest ends on top
    renderSummary();
  }

  // ---------------------------------------------------------------- data
  /** Take a snapshot of `doc` read from the server by a request sent at `asOf`, unless an
   * event of the document came after that: the event is newer (a list read while the
   * document failed must not put it back to "Extraction", where no event would move it). */
  function merge(doc, asOf) {
    const known = docs.get(doc.id);
    if (known && (eventAt.get(doc.id) ?? -Infinity) > asOf) return;
    const live = doc.status === "ready" || doc.status === "failed" ? null : known ? known.live : null;
    docs.set(doc.id, { ...(known || {}), ...doc, live });
  }

  async function refresh() {
    const started = performance.now();
    try {
      const body = await api(`${base}/documents`);
      if (closed) return;
      const fresh = new Set();
      for (const doc of body.documents || []) {
        fresh.add(doc.id);
        merge(doc, started);
      }
      for (const id of [...docs.keys()]) {
        // Absent from the list, and not uploaded after the list was read: it is gone.
        if (!fresh.has(id) && (uploadedAt.get(id) ?? 0) < started) {
          docs.delete(id);
          rows.get(id)?.remove();
          rows.delete(id);
        }
      }
      renderAll();
    } catch (exc) {
      if (!closed && exc instanceof ApiError && exc.code !== "not_found") summaryEl.textContent = exc.message || t("docs.loadError");
    }
  }

  function scheduleRefresh() {
    if (refreshTimer) return;
    refreshTimer = setTimeout(() => {
      refreshTimer = 0;
      refresh();
    }, 150);
  }

  async function refreshOne(id) {
    const started = performance.now();
    try {
      const doc = await api(`${base}/documents/${encodeURIComponent(id)}`);
      if (closed) return;
      merge(doc.document || doc, started);
      renderDoc(id);
      onChange();
    } catch {
      scheduleRefresh();
    }
  }

  function onEvent(ev) {
    let data;
    try {
      data = JSON.parse(ev.data);
    } catch {
      return;
    }
    eventAt.set(data.document_id, performance.now());
    const doc = docs.get(data.document_id);
    if (data.status === "deleted") {
      // Removed here or from another tab: drop its row.
      docs.delete(data.document_id);
      rows.get(data.document_id)?.remove();
      rows.delete(data.document_id);
      renderSummary();
      return;
    }
    if (!doc) {
      scheduleRefresh(); // an upload from another tab, or an event that beat our 202
      return;
    }
    const before = doc.status;
    doc.status = data.status || doc.status;
    doc.live = data;
    if (data.error) doc.error = data.error;
    renderDoc(doc.id);
    // Finished now (not a snapshot of a long-finished one): fetch its pages and passages.
    if (before !== doc.status && (doc.status === "ready" || doc.status === "failed")) {
      if (doc.status === "ready") toast(t("docs.readyToast", { name: doc.filename }));
      else toast(t("docs.failedToast", { name: doc.filename }), { kind: "error", detail: reasonText(doc.error) });
      refreshOne(doc.id);
    }
  }

  async function removeDoc(doc) {
    try {
      await api(`${base}/documents/${encodeURIComponent(doc.id)}`, { method: "DELETE" });
    } catch (exc) {
      const err = exc instanceof ApiError ? exc : new ApiError({ code: "unknown" });
      toast(err.message || t(`err.${err.code}`), { kind: "error" });
      return;
    }
    confirming = null;
    docs.delete(doc.id);
    rows.get(doc.id)?.remove();
    rows.delete(doc.id);
    renderSummary();
    toast(t("docs.removed", { name: doc.filename }));
    onChange();
  }

  const source = new EventSource(eventSourceUrl(`${base}/events`));
  source.addEventListener("document", onEvent);
  source.addEventListener("dossier", () => {
    source.close(); // the dossier was deleted: the stream ends, nothing to resume
    onChange();
  });
  source.addEventListener("open", scheduleRefresh); // (re)connected: catch up on what we missed
  renderSummary();
  refresh();

  return {
    el,
    close() {
      closed = true;
      uploads.close();
      source.close();
      clearTimeout(refreshTimer);
      clear(el);
    },
  };
}
