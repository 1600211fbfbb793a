// The thread: messages, streaming answers, status lines, error cards, and the composer.
import { extractPart, renderClaims, stopNotice } from "./answer-checks.js";
import { ApiError, api, postStream } from "./api.js";
import { $, clear, h } from "./dom.js";
import { findDossier } from "./dossiers.js";
import * as fmt from "./format.js";
import { getLanguage, has, t } from "./i18n.js";
import { icon } from "./icons.js";
import { renderMarkdown } from "./markdown.js";
import { prefs } from "./prefs.js";
import { linkCitations, sourcesList } from "./sources.js";
import { emit, modelLabel, shortModelLabel, state } from "./state.js";
import { toast } from "./toast.js";

let threadEl;
let innerEl;
let inputEl;
let sendBtn;
let stopBtn;
let stickToBottom = true;
let dossierId = null; // the open conversation's dossier: its answers are grounded in it

/** The dossier the open (or new) conversation belongs to, or null. */
export function chatDossierId() {
  return dossierId;
}

// ------------------------------------------------------------------ helpers
function nearBottom() {
  return threadEl.scrollHeight - threadEl.scrollTop - threadEl.clientHeight < 80;
}

function scrollToBottom(force = false) {
  if (force || stickToBottom) threadEl.scrollTop = threadEl.scrollHeight;
}

async function copyText(text, button) {
  let ok = false;
  try {
    await navigator.clipboard.writeText(text);
    ok = true;
  } catch {
    const area = h("textarea", { class: "visually-hidden", "aria-hidden": "true" });
    area.value = text;
    document.body.append(area);
    area.select();
    try {
      ok = document.execCommand("copy");
    } catch {
      ok = false;
    }
    area.remove();
  }
  if (ok) {
    toast(t("msg.copied"));
    if (button) {
      button.classList.add("is-done");
      button.replaceChildren(icon("check", { size: 15 }));
      setTimeout(() => {
        button.classList.remove("is-done");
        button.replaceChildren(icon("copy", { size: 15 }));
      }, 1500);
    }
  }
}

function copyButton(getText, label = t("msg.copy")) {
  const btn = h("button", {
    type: "button",
    class: "icon-btn icon-btn-sm copy-btn",
    title: label,
    "aria-label": label,
  });
  btn.append(icon("copy", { size: 15 }));
  btn.addEventListener("click", () => copyText(getText(), btn));
  return btn;
}

function timeEl(value) {
  const d = fmt.parseDate(value);
  return h("time", { datetime: d.toISOString(), title: fmt.fullDate(d) }, fmt.clock(d));
}

/** Put model output into `el` as sanitized Markdown, with copy buttons on code blocks. */
export function setMarkdown(el, text) {
  el.innerHTML = renderMarkdown(text); // escaped by the renderer: no input tag survives
  for (const pre of el.querySelectorAll("pre")) {
    const code = pre.querySelector("code");
    const head = h(
      "div",
      { class: "code-head" },
      h("span", { class: "code-lang" }, pre.dataset.lang || "code"),
      copyButton(() => (code ? code.textContent : ""), t("msg.copyCode")),
    );
    pre.prepend(head);
  }
}

// ------------------------------------------------------------------ messages
function userMessage({ content, created_at: createdAt }) {
  return h(
    "article",
    { class: "msg msg-user", "data-testid": "user-message" },
    h(
      "div",
      { class: "msg-body" },
      h("div", { class: "bubble" }, content),
      h(
        "div",
        { class: "msg-meta" },
        copyButton(() => content),
        timeEl(createdAt),
      ),
    ),
  );
}

function metaParts(message) {
  const parts = [];
  const timings = message.timings || {};
  const usage = message.usage || {};
  if (message.model_id) {
    parts.push(
      h(
        "span",
        { class: "meta-model", title: `${modelLabel(message.model_id)} (${message.model_id})`, "data-model-id": message.model_id },
        shortModelLabel(message.model_id),
      ),
    );
  }
  if (timings.ttft_s !== null && timings.ttft_s !== undefined) {
    parts.push(
      h("span", { class: "meta-item", title: t("msg.ttftTitle") }, `TTFT ${fmt.seconds(timings.ttft_s, 2)}`),
    );
  }
  if (timings.tokens_per_s) {
    parts.push(h("span", { class: "meta-item" }, t("msg.tps", { v: fmt.number(timings.tokens_per_s, 1) })));
  }
  if (usage.completion_tokens) {
    parts.push(h("span", { class: "meta-item" }, t("msg.tokens", { n: usage.completion_tokens })));
  }
  if (timings.start_s) {
    parts.push(h("span", { class: "meta-item" }, t("msg.start", { v: fmt.seconds(timings.start_s) })));
  }
  return parts;
}

class AssistantMessage {
  constructor({ createdAt = new Date(), pending = false } = {}) {
    this.text = "";
    this.frame = 0;
    this.answerEl = h("div", { class: "markdown", "data-testid": "answer", "aria-busy": pending ? "true" : null });
    this.flagsEl = h("div", { class: "msg-flags" });
    this.sourcesEl = h("div", { class: "msg-sources" });
    this.grounding = null; // {dossierId, sources, citations, claims?} for a grounded answer
    // What was checked about the answer (answer-checks.js): the claims' summary, a stop
    // notice, the extractive answer.
    this.checksEl = h("div", { class: "msg-checks" });
    this.extract = null;
    this.extractEl = h("div", { class: "msg-extract" });
    this.metaEl = h("div", { class: "msg-meta", "data-testid": "message-meta" });
    this.timeHolder = h("span", { class: "msg-time" }, timeEl(createdAt));
    this.typingEl = pending
      ? h(
          "div",
          { class: "typing", "aria-label": t("msg.waiting") },
          h("span", { class: "typing-dot" }),
          h("span", { class: "typing-dot" }),
          h("span", { class: "typing-dot" }),
          h("span", { class: "typing-text" }, t("msg.waiting")),
        )
      : null;
    this.el = h(
      "article",
      { class: `msg msg-assistant${pending ? " is-streaming" : ""}`, "data-testid": "assistant-message" },
      h("div", { class: "avatar", "aria-hidden": "true" }, icon("scale", { size: 16 })),
      h(
        "div",
        { class: "msg-body" },
        h("div", { class: "msg-head" }, h("span", { class: "msg-author" }, t("msg.assistant")), this.timeHolder),
        this.typingEl,
        this.answerEl,
        this.checksEl,
        this.extractEl,
        this.sourcesEl,
        this.flagsEl,
        this.metaEl,
      ),
    );
  }

  append(content) {
    this.text += content;
    if (this.typingEl) {
      this.typingEl.remove();
      this.typingEl = null;
    }
    if (!this.frame) {
      this.frame = requestAnimationFrame(() => {
        this.frame = 0;
        setMarkdown(this.answerEl, this.text);
        scrollToBottom();
      });
    }
  }

  setText(text) {
    this.text = text;
    if (this.typingEl) {
      this.typingEl.remove();
      this.typingEl = null;
    }
    setMarkdown(this.answerEl, text);
    this.renderGrounding();
  }

  /** The passages the answer is grounded in (event `sources`, or saved with it). */
  setSources(sources, dossier) {
    this.grounding = { dossierId: dossier, sources: sources || [], citations: this.grounding?.citations || null, claims: this.grounding?.claims || null };
    this.renderGrounding();
  }

  /** The citation numbers the backend verified: only these become chips. */
  setCitations(citations) {
    if (!this.grounding) return;
    this.grounding.citations = citations || [];
    setMarkdown(this.answerEl, this.text);
    this.renderGrounding();
  }

  /** The answer's checked statements (`done.claims`): chips by verdict, a summary. */
  setClaims(claims) {
    if (!this.grounding || !Array.isArray(claims)) return;
    this.grounding.claims = claims;
    setMarkdown(this.answerEl, this.text);
    this.renderGrounding();
  }

  /** An answer that did not end by itself: keep what came before a loop, say why. */
  setStopped(stopped, { keptChars = null, onRetry = null } = {}) {
    // kept_chars counts code points (Python), not UTF-16 units.
    if (stopped === "repetition" && Number.isInteger(keptChars)) this.text = Array.from(this.text).slice(0, keptChars).join("").trimEnd();
    this.flush();
    this.checksEl.querySelector(".stop-notice")?.remove();
    const notice = stopNotice(stopped, { onRetry, onPickModel: () => emit("open-settings") });
    if (notice) this.checksEl.append(notice);
  }

  setExtract(extract) {
    this.extract = extract || null;
    this.renderGrounding();
  }

  renderGrounding() {
    if (!this.grounding) return;
    const { dossierId: dossier, sources, citations, claims } = this.grounding;
    clear(this.sourcesEl).append(sourcesList(dossier, sources, citations));
    let summaryEl = this.checksEl.querySelector(".claims-line");
    if (!summaryEl) {
      summaryEl = h("div", { class: "claims-line" });
      this.checksEl.prepend(summaryEl);
    }
    if (claims) renderClaims(this.answerEl, summaryEl, { dossierId: dossier, sources, claims });
    else if (citations) linkCitations(this.answerEl, { dossierId: dossier, sources, citations });
    const part = extractPart(this.extract, { dossierId: dossier, sources, setMarkdown });
    clear(this.extractEl);
    if (part) this.extractEl.append(part);
  }

  flush() {
    if (this.frame) {
      cancelAnimationFrame(this.frame);
      this.frame = 0;
    }
    if (this.typingEl) {
      this.typingEl.remove();
      this.typingEl = null;
    }
    setMarkdown(this.answerEl, this.text);
    this.renderGrounding();
    this.answerEl.removeAttribute("aria-busy");
    this.el.classList.remove("is-streaming");
  }

  flag(text, kind = "warn") {
    this.flagsEl.append(h("span", { class: `flag flag-${kind}`, "data-testid": "message-flag" }, text));
  }

  finish(message) {
    this.flush();
    clear(this.metaEl);
    const parts = metaParts(message);
    parts.forEach((part, i) => {
      if (i) this.metaEl.append(h("span", { class: "meta-sep", "aria-hidden": "true" }, "·"));
      this.metaEl.append(part);
    });
    this.metaEl.append(copyButton(() => this.text));
  }

  get hasText() {
    return this.text.length > 0;
  }
}

// ------------------------------------------------------------------ status lines
class StatusGroup {
  constructor() {
    this.el = h("div", { class: "status-group", "data-testid": "status-group" });
    this.active = null;
    this.timer = 0;
  }

  add(status) {
    const receivedAt = performance.now();
    const done = status.phase === "ready";
    if (this.active) this.freeze(status.elapsed_s);
    const textEl = h("span", { class: "status-text" }, status.message || status.phase);
    const timeSpan = h("span", { class: "status-time" }, fmt.seconds(status.elapsed_s));
    const line = h(
      "div",
      {
        class: `status-line${done ? " is-done" : " is-active"}`,
        "data-testid": "status-line",
        "data-phase": status.phase,
      },
      h("span", { class: "status-indicator", "aria-hidden": "true" }),
      textEl,
      timeSpan,
    );
    if (typeof status.progress === "number") {
      const pct = Math.max(0, Math.min(100, status.progress * 100));
      const bar = h("div", { class: "status-bar" });
      bar.style.setProperty("width", `${pct}%`);
      line.append(
        h(
          "div",
          {
            class: "status-progress",
            role: "progressbar",
            "aria-label": t("status.progress"),
            "aria-valuemin": "0",
            "aria-valuemax": "100",
            "aria-valuenow": String(Math.round(pct)),
          },
          bar,
        ),
      );
    }
    this.el.append(line);
    if (!done) {
      this.active = { line, timeSpan, base: Number(status.elapsed_s) || 0, receivedAt };
      this.startTimer();
    } else {
      this.stopTimer();
    }
    scrollToBottom();
  }

  freeze(elapsed) {
    if (!this.active) return;
    this.active.line.classList.remove("is-active");
    if (elapsed !== undefined && elapsed !== null) this.active.timeSpan.textContent = fmt.seconds(elapsed);
    this.active = null;
    this.stopTimer();
  }

  startTimer() {
    this.stopTimer();
    this.timer = setInterval(() => {
      if (!this.active) return;
      const v = this.active.base + (performance.now() - this.active.receivedAt) / 1000;
      this.active.timeSpan.textContent = fmt.seconds(v);
    }, 250);
  }

  stopTimer() {
    if (this.timer) clearInterval(this.timer);
    this.timer = 0;
  }

  fail() {
    if (this.active) {
      this.active.line.classList.add("is-failed");
    }
    this.end();
  }

  end() {
    if (this.active) {
      this.active.line.classList.remove("is-active");
      this.active = null;
    }
    this.stopTimer();
  }

  get count() {
    return this.el.childElementCount;
  }
}

// ------------------------------------------------------------------ errors
function cleanDetail(detail) {
  if (!detail || typeof detail !== "string") return "";
  // Never show a stack trace: keep the last meaningful line, if any.
  const lines = detail
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !/^Traceback\b/.test(l) && !/^File "/.test(l) && !/^\^+$/.test(l));
  const text = lines.slice(-2).join(" — ");
  return text.length > 300 ? `${text.slice(0, 297)}…` : text;
}

export function errorCard({ code, message, detail, partial = false, onRetry = null }) {
  const knownMessage = has(`err.${code}`) ? t(`err.${code}`) : t("err.unknown");
  const hintKey = `hint.${code}`;
  const body = h(
    "div",
    { class: "error-body" },
    h("p", { class: "error-title" }, t("error.title")),
    h("p", { class: "error-message", "data-testid": "error-message" }, message || knownMessage),
  );
  if (has(hintKey)) {
    body.append(
      h(
        "p",
        { class: "error-hint", "data-testid": "error-hint" },
        h("strong", {}, `${t("error.hint")} `),
        t(hintKey),
      ),
    );
  }
  if (partial) body.append(h("p", { class: "error-note" }, t("error.partialKept")));
  const shown = cleanDetail(detail);
  if (shown) {
    body.append(
      h(
        "details",
        { class: "error-details" },
        h("summary", {}, t("error.details")),
        h("code", {}, `${code}: ${shown}`),
      ),
    );
  }
  const actions = h("div", { class: "error-actions" });
  if (["engine_not_installed", "engine_crashed", "engine_wedged", "timeout", "port_busy", "upstream_error"].includes(code)) {
    actions.append(
      h(
        "button",
        { type: "button", class: "btn btn-sm btn-secondary", onclick: () => emit("open-engines", { logs: true }) },
        icon("terminal", { size: 15 }),
        t("error.logs"),
      ),
    );
  }
  if (["unauthorized", "invalid_model_id", "unknown_provider", "model_not_found"].includes(code)) {
    actions.append(
      h(
        "button",
        { type: "button", class: "btn btn-sm btn-secondary", onclick: () => emit("open-settings") },
        icon("sliders", { size: 15 }),
        t("error.settings"),
      ),
    );
  }
  if (onRetry) {
    actions.append(
      h(
        "button",
        { type: "button", class: "btn btn-sm btn-secondary", onclick: onRetry },
        icon("refresh", { size: 15 }),
        t("error.retry"),
      ),
    );
  }
  if (actions.childElementCount) body.append(actions);
  return h(
    "div",
    { class: "error-card", role: "alert", "data-testid": "error-card", "data-code": code || "unknown" },
    h("div", { class: "error-icon", "aria-hidden": "true" }, icon("alert", { size: 18 })),
    body,
  );
}

// ------------------------------------------------------------------ thread views
function emptyState() {
  const suggestions = ["empty.s1", "empty.s2", "empty.s3"].map((key) =>
    h(
      "button",
      {
        type: "button",
        class: "suggestion",
        onclick: () => {
          inputEl.value = t(key);
          autosize();
          updateSendState();
          inputEl.focus();
        },
      },
      icon("message", { size: 16 }),
      h("span", {}, t(key)),
    ),
  );
  return h(
    "div",
    { class: "empty-state", "data-testid": "empty-state" },
    h("div", { class: "empty-mark", "aria-hidden": "true" }, icon("scale", { size: 30 })),
    h("h1", { class: "empty-title" }, dossierId ? t("dossiers.chatTitle", { name: findDossier(dossierId)?.name || "…" }) : t("empty.title")),
    h("p", { class: "empty-subtitle" }, dossierId ? t("dossiers.chatSubtitle") : t("empty.subtitle")),
    h("div", { class: "suggestions" }, suggestions),
    h("p", { class: "empty-disclaimer" }, t("empty.disclaimer")),
  );
}

function renderStoredAssistant(message, onRetry = null) {
  const code = message.error_code;
  const failed = Boolean(code) && code !== "cancelled";
  if (failed && !message.content) return [errorCard({ code, message: "", detail: "" })];
  const view = new AssistantMessage({ createdAt: message.created_at });
  view.setText(message.content || t("msg.empty"));
  if (message.sources) {
    view.setSources(message.sources, dossierId);
    view.setCitations(message.citations || []);
    if (message.claims) view.setClaims(message.claims);
    if (message.extract) view.setExtract(message.extract);
  }
  if (message.stopped) view.setStopped(message.stopped, { onRetry });
  if (code === "cancelled") view.flag(t("msg.stopped"));
  else if (failed || message.partial) view.flag(t("msg.partial"));
  view.finish(message);
  const out = [view.el];
  if (failed) out.push(errorCard({ code, message: "", detail: "" }));
  return out;
}

export function renderThread() {
  clear(innerEl);
  const detail = state.current;
  if (!detail || !detail.messages || detail.messages.length === 0) {
    innerEl.append(emptyState());
    threadEl.classList.add("is-empty");
    return;
  }
  threadEl.classList.remove("is-empty");
  let question = "";
  detail.messages.forEach((message, i) => {
    if (message.role === "user") {
      question = message.content;
      innerEl.append(userMessage(message));
    } else if (message.role === "assistant") {
      // The last answer can be asked again (a loop cut: "Réessayer").
      const asked = question;
      const retry = i === detail.messages.length - 1 && asked ? () => send(asked, { regenerate: true }) : null;
      const turn = h("div", { class: "turn" }, renderStoredAssistant(message, retry));
      innerEl.append(turn);
    }
  });
  stickToBottom = true;
  scrollToBottom(true);
}

// ------------------------------------------------------------------ sending
function setStreaming(on) {
  stopBtn.hidden = !on;
  sendBtn.hidden = on;
  document.body.classList.toggle("is-streaming", on);
  updateSendState();
}

function updateSendState() {
  sendBtn.disabled = !inputEl.value.trim() || Boolean(state.streaming);
}

function autosize() {
  inputEl.style.setProperty("height", "auto");
  inputEl.style.setProperty("height", `${Math.min(inputEl.scrollHeight, 220)}px`);
}

export async function send(text, { regenerate = false } = {}) {
  const message = String(text ?? "").trim();
  if (!message || state.streaming) return;
  // Retry after an error answers the saved question again instead of saving it twice.
  regenerate = regenerate && Boolean(state.currentId);
  const modelId = state.modelId || state.catalog.default;
  const controller = new AbortController();
  const streaming = { controller, conversationId: state.currentId };
  state.streaming = streaming;
  setStreaming(true);

  if (!state.current || !state.current.messages || state.current.messages.length === 0) {
    clear(innerEl);
    threadEl.classList.remove("is-empty");
  }
  if (!regenerate) innerEl.append(userMessage({ content: message, created_at: new Date() }));
  const statuses = new StatusGroup();
  const answer = new AssistantMessage({ pending: true });
  const turn = h("div", { class: "turn", "data-testid": "turn" }, statuses.el, answer.el);
  innerEl.append(turn);
  stickToBottom = true;
  scrollToBottom(true);

  const body = {
    message,
    model_id: modelId,
    language: getLanguage(),
  };
  if (state.currentId) body.conversation_id = state.currentId;
  if (dossierId) body.dossier_id = dossierId;
  const turnDossier = dossierId;
  if (regenerate) body.regenerate = true;
  const maxTokens = prefs.maxTokens();
  if (maxTokens) body.max_tokens = maxTokens;

  let finished = false;
  const showError = (err) => {
    statuses.fail();
    answer.flush();
    if (!answer.hasText) answer.el.remove();
    else answer.flag(t("msg.partial"));
    turn.append(
      errorCard({
        code: err.code,
        message: err.message,
        detail: err.detail,
        partial: answer.hasText,
        onRetry: () => send(message, { regenerate: true }),
      }),
    );
    scrollToBottom();
  };

  try {
    await postStream("api/chat/stream", body, {
      signal: controller.signal,
      onEvent: (event, data) => {
        if (event === "meta") {
          if (data.conversation_id && data.conversation_id !== state.currentId) {
            state.currentId = data.conversation_id;
            streaming.conversationId = data.conversation_id;
            state.current = { id: data.conversation_id, messages: [{ role: "user", content: message }] };
            emit("conversation-created", data.conversation_id);
          }
        } else if (event === "sources") {
          answer.setSources(data.sources, turnDossier);
          scrollToBottom();
        } else if (event === "status") {
          statuses.add(data);
        } else if (event === "token") {
          statuses.end();
          if (typeof data.content === "string") answer.append(data.content);
        } else if (event === "extract") {
          answer.setExtract(data);
        } else if (event === "done") {
          finished = true;
          statuses.end();
          answer.finish({
            model_id: data.model || modelId,
            timings: data.timings,
            usage: data.usage,
          });
          if (!answer.hasText) answer.setText(t("msg.empty"));
          if (Array.isArray(data.citations)) answer.setCitations(data.citations);
          if (Array.isArray(data.claims)) answer.setClaims(data.claims);
          if (data.stopped) {
            answer.setStopped(data.stopped, { keptChars: data.kept_chars, onRetry: () => send(message, { regenerate: true }) });
          }
          scrollToBottom();
        } else if (event === "error") {
          finished = true;
          showError(
            new ApiError({
              code: data.code,
              message: data.message,
              detail: data.detail,
              logTail: data.log_tail,
            }),
          );
        }
      },
    });
    if (!finished) showError(new ApiError({ code: "interrupted" }));
  } catch (exc) {
    if (exc && exc.name === "AbortError") {
      statuses.end();
      answer.flush();
      if (answer.hasText) {
        answer.flag(t("msg.stopped"));
        answer.finish({ model_id: modelId });
      } else {
        answer.el.remove();
        turn.append(h("div", { class: "status-line is-muted", "data-testid": "stopped-line" }, t("msg.stopped")));
      }
    } else if (exc instanceof ApiError) {
      showError(exc);
      if (exc.code === "unauthorized") emit("open-settings", { focusKey: true });
    } else {
      console.error(exc);
      showError(new ApiError({ code: "unknown" }));
    }
  } finally {
    statuses.end();
    if (state.streaming === streaming) state.streaming = null;
    setStreaming(false);
    emit("turn-finished", streaming.conversationId);
  }
}

export function stop() {
  if (state.streaming) state.streaming.controller.abort();
}

/**
 * Open a conversation (or the empty new-chat view when id is null); `dossier` puts it in
 * that dossier (a saved conversation's own dossier_id wins).
 */
export async function openConversation(id, { dossier = null } = {}) {
  if (state.streaming) stop();
  state.currentId = id;
  state.current = null;
  setDossier(dossier);
  if (!id) {
    renderThread();
    return;
  }
  clear(innerEl);
  innerEl.append(h("div", { class: "thread-loading", "aria-busy": "true" }, h("span", { class: "spinner" })));
  try {
    const detail = await api(`api/conversations/${encodeURIComponent(id)}`);
    if (state.currentId !== id) return;
    state.current = detail;
    if ((detail.dossier_id || null) !== dossierId) setDossier(detail.dossier_id || null);
    renderThread();
  } catch (exc) {
    if (state.currentId !== id) return;
    clear(innerEl);
    const err = exc instanceof ApiError ? exc : new ApiError({ code: "unknown" });
    innerEl.append(errorCard({ code: err.code, message: err.message, detail: err.detail }));
  }
}

/** The catalog arrived after messages were drawn: put model labels in place of ids. */
export function relabelModels() {
  for (const el of innerEl.querySelectorAll(".meta-model[data-model-id]")) {
    const id = el.dataset.modelId;
    el.textContent = shortModelLabel(id);
    el.title = `${modelLabel(id)} (${id})`;
  }
}

function setDossier(id) {
  dossierId = id || null;
  document.body.classList.toggle("in-dossier", Boolean(dossierId));
  emit("chat-dossier", dossierId);
}

export function focusComposer() {
  inputEl.focus();
}

export function initChat() {
  threadEl = $("#thread");
  innerEl = $("#thread-inner");
  inputEl = $("#composer-input");
  sendBtn = $("#send-btn");
  stopBtn = $("#stop-btn");
  sendBtn.append(icon("send", { size: 18 }));
  stopBtn.append(icon("stop", { size: 16 }));
  threadEl.addEventListener("scroll", () => {
    stickToBottom = nearBottom();
  });
  $("#composer").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const text = inputEl.value;
    if (!text.trim() || state.streaming) return;
    inputEl.value = "";
    autosize();
    send(text);
  });
  inputEl.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing && !ev.altKey && !ev.ctrlKey && !ev.metaKey) {
      ev.preventDefault();
      $("#composer").requestSubmit();
    }
  });
  inputEl.addEventListener("input", () => {
    autosize();
    updateSendState();
  });
  stopBtn.addEventListener("click", () => {
    stop();
    inputEl.focus();
  });
  updateSendState();
}
