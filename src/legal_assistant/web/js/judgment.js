// A judgment in a dossier: its header card (court, formation, date, n°, solution, attacked
// decision), its zones as an outline that opens the viewer there, and its fiche d'arrêt —
// built with progress per section (POST .../brief, SSE), each "§ n" opening the viewer at
// that paragraph highlighted, unverified statements marked, DOCX/Markdown downloads, and
// "regenerate" with the chosen model. A side sheet (<dialog>) like the viewer.
import { ApiError, api, eventSourceUrl, postStream } from "./api.js";
import { clear, h } from "./dom.js";
import { getLanguage, t } from "./i18n.js";
import { SECTIONS } from "./judgment-strings.js";
import { icon } from "./icons.js";
import { meter } from "./uploads.js";
import { modelLabel, state } from "./state.js";
import { openViewer } from "./viewer.js";

const known = new Map(); // "dossier/document" -> Promise<judgment | null>
const resolved = new Map(); // "dossier/document" -> judgment, once known

function docPath(dossierId, documentId) {
  return `api/dossiers/${encodeURIComponent(dossierId)}/documents/${encodeURIComponent(documentId)}`;
}

/** The document's structure (GET .../judgment), fetched once; null when unavailable. */
export function judgmentOf(dossierId, documentId) {
  const key = `${dossierId}/${documentId}`;
  if (!known.has(key)) {
    known.set(
      key,
      api(`${docPath(dossierId, documentId)}/judgment`).then((judgment) => {
        resolved.set(key, judgment);
        return judgment;
      }).catch(() => {
        known.delete(key); // not ready, or a network hiccup: ask again next time
        return null;
      }),
    );
  }
  return known.get(key);
}

/** A judgment's numbered paragraphs when already known (for the viewer), else null. */
export function knownParagraphs(dossierId, documentId) {
  const judgment = resolved.get(`${dossierId}/${documentId}`);
  return judgment && judgment.is_judgment ? judgment.paragraphs || [] : null;
}

/** An element for a ready document's row: the "Fiche d'arrêt" button once the document
 * is known to be a judgment, nothing otherwise. */
export function judgmentSlot(dossierId, doc) {
  const slot = h("span", { class: "judgment-slot" });
  judgmentOf(dossierId, doc.id).then((judgment) => {
    if (!judgment || !judgment.is_judgment || !slot.isConnected) return;
    slot.append(
      h(
        "button",
        {
          type: "button",
          class: "btn btn-secondary btn-sm",
          title: t("judgment.openTitle"),
          "data-testid": "judgment-open",
          onclick: (ev) => openJudgment({ dossierId, doc, judgment, opener: ev.currentTarget }),
        },
        icon("scale", { size: 14 }),
        h("span", {}, t("judgment.open")),
      ),
    );
  });
  return slot;
}

function longDate(iso) {
  if (!iso) return "";
  const d = new Date(`${iso.slice(0, 10)}T12:00:00Z`);
  if (Number.isNaN(d.getTime())) return iso;
  return new Intl.DateTimeFormat(getLanguage(), { dateStyle: "long", timeZone: "UTC" }).format(d);
}

function headerCard(j) {
  const rows = [];
  const line = [j.court, j.formation, longDate(j.date)].filter(Boolean).join(" · ");
  if (j.numbers && j.numbers.length) rows.push([t("judgment.numbers"), j.numbers.join(", ")]);
  if (j.solution) rows.push([t("judgment.solution"), j.solution]);
  if (j.attacked && (j.attacked.court || j.attacked.date)) {
    rows.push([t("judgment.attacked"), [j.attacked.court, longDate(j.attacked.date)].filter(Boolean).join(", ")]);
  }
  if (j.publication) rows.push([t("judgment.publication"), j.publication]);
  return h(
    "section",
    { class: "judgment-card", "aria-label": t("judgment.card"), "data-testid": "judgment-card" },
    h("p", { class: "judgment-court" }, line),
    h("dl", {}, rows.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
  );
}

class Sheet {
  constructor({ dossierId, doc, judgment }) {
    this.dossierId = dossierId;
    this.doc = doc;
    this.judgment = judgment;
    this.paragraphs = new Map((judgment.paragraphs || []).map((p) => [p.n, p]));
    this.controller = null;
    this.build();
  }

  build() {
    const close = h("button", { type: "button", class: "icon-btn", "aria-label": t("common.close"), title: t("common.close"), "data-testid": "judgment-close" }, icon("x", { size: 18 }));
    this.select = h("select", { class: "judgment-model", "data-testid": "brief-model", "aria-label": t("judgment.model") });
    this.go = h("button", { type: "button", class: "btn btn-primary btn-sm", "data-testid": "brief-generate" });
    this.downloads = h("span", { class: "judgment-downloads" });
    this.statusEl = h("p", { class: "judgment-status", "data-testid": "brief-status", "aria-live": "polite", hidden: true });
    this.progressEl = h("div", { class: "judgment-progress", "data-testid": "brief-progress", hidden: true });
    this.errorEl = h("p", { class: "doc-error", role: "alert", "data-testid": "brief-error", hidden: true });
    this.briefEl = h("div", { class: "judgment-brief", "data-testid": "brief" });
    this.dialog = h(
      "dialog",
      { class: "viewer judgment", "aria-labelledby": "judgment-title", "data-testid": "judgment" },
      h(
        "div",
        { class: "viewer-inner" },
        h(
          "header",
          { class: "viewer-head" },
          h("span", { class: "viewer-icon", "aria-hidden": "true" }, icon("scale", { size: 18 })),
          h("div", { class: "viewer-heading" }, h("h2", { class: "viewer-title", id: "judgment-title" }, t("judgment.title")), h("p", { class: "viewer-sub" }, this.doc.filename)),
          close,
        ),
        h(
          "div",
          { class: "viewer-body judgment-body", tabindex: "0" },
          headerCard(this.judgment),
          this.outline(),
          h("div", { class: "judgment-controls" }, h("label", { class: "judgment-label" }, t("judgment.model"), this.select), this.go, this.downloads),
          this.statusEl,
          this.progressEl,
          this.errorEl,
          this.briefEl,
        ),
      ),
    );
    close.addEventListener("click", () => this.dialog.close());
    this.go.addEventListener("click", () => this.generate());
    this.dialog.addEventListener("close", () => {
      this.controller?.abort();
      this.dialog.remove();
      if (this.opener && this.opener.isConnected) this.opener.focus();
    });
    this.fillModels(null);
    document.body.append(this.dialog);
  }

  fillModels(selected) {
    clear(this.select);
    this.select.append(h("option", { value: "" }, t("judgment.extractive")));
    const ids = new Set(state.catalog.models.filter((m) => m.available !== false).map((m) => m.id));
    if (state.modelId) ids.add(state.modelId);
    if (selected) ids.add(selected);
    for (const id of ids) this.select.append(h("option", { value: id }, modelLabel(id)));
    this.select.value = selected || "";
  }

  outline() {
    const items = (this.judgment.zones || []).map((z) => {
      const ps = z.paragraphs || [];
      const range = ps.length ? (ps.length === 1 ? t("judgment.paragraph", { n: ps[0] }) : t("judgment.paragraphs", { from: ps[0], to: ps[ps.length - 1] })) : "";
      const name = t(`judgment.zone.${z.zone}`);
      return h(
        "li",
        {},
        h(
          "button",
          {
            type: "button",
            class: "judgment-zone",
            "data-testid": "judgment-zone",
            "data-zone": z.zone,
            onclick: () => this.show({ page: z.page, char_start: z.char_start, char_end: z.char_end }, z.title || name),
          },
          h("span", {}, z.title && z.title !== name ? `${name} — ${z.title}` : name),
          range ? h("span", { class: "judgment-range" }, range) : null,
        ),
      );
    });
    return h("nav", { class: "judgment-outline", "aria-label": t("judgment.outline"), "data-testid": "judgment-outline" }, h("h3", {}, t("judgment.outline")), h("ol", {}, items));
  }

  show(span, label) {
    openViewer({
      dossierId: this.dossierId,
      documentId: this.doc.id,
      filename: this.doc.filename,
      page: span.page,
      charStart: span.char_start,
      charEnd: span.char_end,
      label,
      paragraphs: this.judgment.paragraphs || [],
    });
  }

  cite(n) {
    const p = this.paragraphs.get(n);
    const label = t("judgment.paragraph", { n });
    return h(
      "button",
      { type: "button", class: "cite-chip", "data-testid": "brief-cite", "data-paragraph": String(n), disabled: !p, onclick: () => p && this.show(p, label) },
      label,
    );
  }

  anchorCite(a) {
    return h(
      "button",
      { type: "button", class: "cite-chip", "data-testid": "brief-anchor", onclick: () => this.show(a, t("judgment.unnumbered")) },
      t("judgment.unnumbered"),
    );
  }

  statement(st) {
    const cites = st.paragraphs.length ? st.paragraphs.map((n) => this.cite(n)) : (st.anchors || []).slice(0, 1).map((a) => this.anchorCite(a));
    const flag = st.verified
      ? h("span", { class: "brief-ok", title: t("judgment.verified"), "aria-label": t("judgment.verified") }, "✅")
      : h("span", { class: "brief-flag", "data-testid": "brief-unverified", title: st.reason ? t(`judgment.reason.${st.reason}`) : "" }, "⚠️ ", t("judgment.unverified"), st.reason ? ` — ${t(`judgment.reason.${st.reason}`)}` : "");
    return h("li", { class: `brief-statement${st.verified ? "" : " is-unverified"}`, "data-testid": "brief-statement", "data-verified": String(st.verified) }, h("span", { class: "brief-text" }, st.text), " ", cites, " ", flag);
  }

  renderBrief(brief) {
    clear(this.briefEl);
    clear(this.downloads);
    this.go.textContent = brief ? t("judgment.regenerate") : t("judgment.generate");
    if (!brief) {
      this.briefEl.append(h("p", { class: "judgment-empty" }, t("judgment.none")));
      return;
    }
    this.fillModels(brief.model);
    const base = docPath(this.dossierId, this.doc.id);
    this.downloads.append(
      h("a", { class: "btn btn-ghost btn-sm", href: eventSourceUrl(`${base}/brief.docx`), download: "", "data-testid": "brief-docx" }, icon("download", { size: 14 }), t("judgment.docx")),
      h("a", { class: "btn btn-ghost btn-sm", href: eventSourceUrl(`${base}/brief.md`), download: "", "data-testid": "brief-md" }, icon("download", { size: 14 }), t("judgment.md")),
    );
    const when = new Date(brief.created_at).toLocaleString(getLanguage());
    this.briefEl.append(h("p", { class: "judgment-meta", "data-testid": "brief-meta" }, brief.model ? t("judgment.meta", { model: modelLabel(brief.model), date: when }) : `${t("judgment.metaExtractive")} · ${when}`));
    for (const section of brief.sections) {
      const body = section.statements.length ? h("ul", { class: "brief-statements" }, section.statements.map((st) => this.statement(st))) : null;
      this.briefEl.append(
        h(
          "section",
          { class: "brief-section", "data-testid": "brief-section", "data-key": section.key, "data-source": section.source },
          h("h3", {}, section.title),
          section.note ? h("p", { class: "brief-note" }, section.note) : null,
          body,
        ),
      );
    }
  }

  renderProgress(done, total, current) {
    this.progressEl.hidden = false;
    clear(this.progressEl).append(
      meter(total ? done / total : 0, t("judgment.progress", { done, total })),
      h("span", { class: "judgment-progress-text" }, t("judgment.progress", { done, total })),
      h(
        "ol",
        { class: "judgment-steps" },
        SECTIONS.map((key, i) => h("li", { class: i < done ? "is-done" : key === current ? "is-current" : "" }, i < done ? "✅ " : "", t(`judgment.step.${key}`))),
      ),
    );
  }

  async load() {
    try {
      this.renderBrief(await api(`${docPath(this.dossierId, this.doc.id)}/brief`));
    } catch (exc) {
      if (exc instanceof ApiError && exc.code === "not_found") this.renderBrief(null);
      else this.showError(exc);
    }
  }

  showError(exc, kept = false) {
    const err = exc instanceof ApiError ? exc : new ApiError({ code: "unknown" });
    this.errorEl.hidden = false;
    this.errorEl.textContent = [err.message || t(`err.${err.code}`), kept ? t("judgment.kept") : ""].filter(Boolean).join(" ");
  }

  async generate() {
    this.controller?.abort();
    const controller = new AbortController();
    this.controller = controller;
    this.go.disabled = true;
    this.errorEl.hidden = true;
    this.statusEl.hidden = true;
    this.renderProgress(0, SECTIONS.length, SECTIONS[0]);
    const body = { language: getLanguage() };
    if (this.select.value) body.model_id = this.select.value;
    try {
      await postStream(`${docPath(this.dossierId, this.doc.id)}/brief`, body, {
        signal: controller.signal,
        onEvent: (name, data) => {
          if (name === "progress") this.renderProgress(data.done, data.total, SECTIONS[data.done]);
          else if (name === "status") {
            this.statusEl.hidden = false;
            this.statusEl.textContent = data.message || "";
          } else if (name === "brief") {
            this.progressEl.hidden = true;
            this.statusEl.hidden = true;
            this.renderBrief(data);
          } else if (name === "error") {
            this.progressEl.hidden = true;
            this.showError(new ApiError({ code: data.code, message: data.message }), data.kept_previous);
          }
        },
      });
    } catch (exc) {
      if (!(exc && exc.name === "AbortError")) {
        this.progressEl.hidden = true;
        this.showError(exc);
      }
    } finally {
      if (this.controller === controller) this.controller = null;
      this.go.disabled = false;
    }
  }
}

/** Open the side sheet of a judgment (its card, outline and fiche). */
export function openJudgment({ dossierId, doc, judgment, opener = null }) {
  const sheet = new Sheet({ dossierId, doc, judgment });
  sheet.opener = opener;
  sheet.dialog.showModal();
  sheet.load();
  return sheet;
}
