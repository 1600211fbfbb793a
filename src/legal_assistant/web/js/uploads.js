// Uploading files to a dossier: the drop zone (drag and drop, or the file picker; several
// files), then one XMLHttpRequest per file — fetch cannot report upload progress — two at a
// time, each with its own row and progress bar. A refused file keeps its row with the
// server's reason (type, size, empty...) until dismissed.
import { ApiError, uploadFile } from "./api.js";
import { h } from "./dom.js";
import * as fmt from "./format.js";
import { t } from "./i18n.js";
import { icon } from "./icons.js";

const ACCEPT = ".pdf,.docx,.odt,.rtf,.txt,.md,.markdown,.html,.htm";
const PARALLEL_UPLOADS = 2;

/** A readable reason from what the backend stored: a string or {code, message(_fr|_en)}. */
export function reasonText(error) {
  // The row already shows an alert icon: drop the messages' own leading "❌".
  const plain = (text) => String(text).replace(/^\u274c\s*/u, "");
  if (!error) return "";
  if (typeof error === "object") {
    const lang = document.documentElement.lang === "en" ? "en" : "fr";
    return plain(error[`message_${lang}`] || error.message || (error.code ? t(`err.${error.code}`) : ""));
  }
  return plain(error);
}

export function meter(value, label) {
  const pct = value === null ? null : Math.max(0, Math.min(100, value * 100));
  const bar = h("div", { class: `meter-bar${pct === null ? " is-indeterminate" : ""}` });
  if (pct !== null) bar.style.setProperty("width", `${pct}%`);
  return h(
    "div",
    {
      class: "meter doc-meter",
      role: "progressbar",
      "aria-label": label,
      "aria-valuemin": "0",
      "aria-valuemax": "100",
      "aria-valuenow": pct === null ? null : String(Math.round(pct)),
    },
    bar,
  );
}

export function extBadge(filename) {
  const m = /\.([a-z0-9]{1,5})$/i.exec(filename || "");
  return h("span", { class: "doc-icon", "aria-hidden": "true" }, m ? m[1].toUpperCase() : "DOC");
}

/**
 * The upload zone and queue for POST `path`. onUploaded(documents) gets each 202's
 * documents; onChange() follows rows coming and going. attach(listEl) names the list the
 * rows go into (at its top).
 */
export function uploadQueue(path, { onUploaded, onChange }) {
  const rows = new Map(); // upload key -> <li>
  const queue = []; // {key, file} waiting for a free slot
  let listEl = null;
  let active = 0;
  let uploadSeq = 0;
  let closed = false;

  const input = h("input", { type: "file", multiple: true, accept: ACCEPT, class: "visually-hidden", tabindex: "-1", "aria-hidden": "true", "data-testid": "file-input" });
  const pick = h("button", { type: "button", class: "btn btn-secondary btn-sm", "data-testid": "pick-files" }, icon("upload", { size: 15 }), t("docs.pick"));
  const zone = h(
    "div",
    { class: "dropzone", "data-testid": "dropzone" },
    h("span", { class: "dropzone-icon", "aria-hidden": "true" }, icon("upload", { size: 22 })),
    h("p", { class: "dropzone-text" }, t("docs.drop")),
    pick,
    h("p", { class: "dropzone-formats" }, t("docs.formats")),
    input,
  );

  function uploadRow(key, file) {
    const text = h("span", { class: "doc-progress-text", "data-testid": "upload-progress" }, t("docs.uploading", { pct: 0 }));
    const bar = meter(0, t("docs.uploadLabel", { name: file.name }));
    const row = h(
      "li",
      { class: "doc-row is-uploading", "data-testid": "upload", "data-key": key },
      extBadge(file.name),
      h(
        "div",
        { class: "doc-main" },
        h("div", { class: "doc-line" }, h("span", { class: "doc-name" }, file.name), h("span", { class: "chip chip-loading" }, t("docs.status.uploading"))),
        h("div", { class: "doc-facts" }, fmt.bytes(file.size)),
        h("div", { class: "doc-progress" }, bar, text),
      ),
      h("div", { class: "doc-actions" }),
    );
    row.progress = (sent, total) => {
      const pct = total ? Math.min(100, (sent / total) * 100) : 0;
      bar.firstChild.style.setProperty("width", `${pct}%`);
      bar.setAttribute("aria-valuenow", String(Math.round(pct)));
      text.textContent = t("docs.uploading", { pct: Math.round(pct) });
    };
    return row;
  }

  function uploadFailed(key, file, err) {
    const row = rows.get(key);
    if (!row) return;
    let reason = err.message || (err.code === "network" ? t("docs.uploadBroken") : t(`err.${err.code}`));
    if (!err.message && err.status === 413) reason = t("docs.tooLarge");
    reason = reasonText(reason);
    const failed = h(
      "li",
      { class: "doc-row is-failed", "data-testid": "upload", "data-key": key, "data-status": "failed" },
      extBadge(file.name),
      h(
        "div",
        { class: "doc-main" },
        h("div", { class: "doc-line" }, h("span", { class: "doc-name" }, file.name), h("span", { class: "chip chip-failed", "data-testid": "document-status" }, t("docs.status.refused"))),
        h("p", { class: "doc-error", role: "alert", "data-testid": "document-error" }, icon("alert", { size: 14 }), h("span", {}, reason)),
      ),
      h(
        "div",
        { class: "doc-actions" },
        h(
          "button",
          {
            type: "button",
            class: "icon-btn icon-btn-sm",
            "aria-label": t("docs.dismiss"),
            title: t("docs.dismiss"),
            onclick: () => {
              failed.remove();
              rows.delete(key);
              onChange();
            },
          },
          icon("x", { size: 15 }),
        ),
      ),
    );
    row.replaceWith(failed);
    rows.set(key, failed);
  }

  async function runUpload({ key, file }) {
    active += 1;
    try {
      const body = await uploadFile(path, file, { onProgress: (s, n) => rows.get(key)?.progress?.(s, n) });
      if (closed) return;
      rows.get(key)?.remove();
      rows.delete(key);
      onUploaded(body.documents || []);
    } catch (exc) {
      if (closed) return;
      uploadFailed(key, file, exc instanceof ApiError ? exc : new ApiError({ code: "unknown" }));
    } finally {
      active -= 1;
      pump();
    }
  }

  function pump() {
    while (!closed && active < PARALLEL_UPLOADS && queue.length) runUpload(queue.shift());
  }

  function addFiles(files) {
    for (const file of files) {
      uploadSeq += 1;
      const key = `upload-${uploadSeq}`;
      const row = uploadRow(key, file);
      rows.set(key, row);
      listEl.prepend(row);
      queue.push({ key, file });
    }
    onChange();
    pump();
  }

  pick.addEventListener("click", () => input.click());
  input.addEventListener("change", () => {
    addFiles([...input.files]);
    input.value = "";
  });
  let depth = 0;
  zone.addEventListener("dragenter", (ev) => {
    ev.preventDefault();
    depth += 1;
    zone.classList.add("is-dragging");
  });
  zone.addEventListener("dragleave", () => {
    depth = Math.max(0, depth - 1);
    if (!depth) zone.classList.remove("is-dragging");
  });
  zone.addEventListener("dragover", (ev) => {
    ev.preventDefault();
    if (ev.dataTransfer) ev.dataTransfer.dropEffect = "copy";
  });
  zone.addEventListener("drop", (ev) => {
    ev.preventDefault();
    depth = 0;
    zone.classList.remove("is-dragging");
    const files = ev.dataTransfer ? [...ev.dataTransfer.files] : [];
    if (files.length) addFiles(files);
  });
  // A file dropped beside the zone must not make the browser navigate away to it.
  const guard = (ev) => {
    if (ev.dataTransfer && [...ev.dataTransfer.types].includes("Files")) ev.preventDefault();
  };
  window.addEventListener("dragover", guard);
  window.addEventListener("drop", guard);

  return {
    zone,
    addFiles,
    attach(el) {
      listEl = el;
    },
    close() {
      closed = true;
      window.removeEventListener("dragover", guard);
      window.removeEventListener("drop", guard);
    },
  };
}
