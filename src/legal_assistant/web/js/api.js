// Talking to the backend: JSON calls, the chat stream (SSE over a POST, read from fetch's
// ReadableStream), and EventSource URLs. Every call carries the API key when one is set;
// in accounts mode the session cookie goes by itself, and every state-changing request
// carries the session's CSRF token (X-CSRF-Token, from login or /api/auth/me).
import { getLanguage } from "./i18n.js";
import { prefs } from "./prefs.js";
import { emit } from "./state.js";

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);
let csrfToken = null; // the signed-in session's, set by auth.js

export function setCsrfToken(token) {
  csrfToken = token || null;
}

export class ApiError extends Error {
  constructor({ code = "unknown", message = "", detail = "", status = 0, logTail = [] } = {}) {
    super(message || code);
    this.code = code;
    this.detail = detail;
    this.status = status;
    this.logTail = logTail;
  }
}

export function authHeaders(method = "GET") {
  const headers = { "Accept-Language": getLanguage() };
  const key = prefs.apiKey();
  if (key) headers.Authorization = `Bearer ${key}`;
  if (csrfToken && !SAFE_METHODS.has(method.toUpperCase())) headers["X-CSRF-Token"] = csrfToken;
  return headers;
}

/** A 401 `not_signed_in` means the session expired or was revoked: auth.js shows the login. */
function noticeSignedOut(status, code) {
  if (status === 401 && code === "not_signed_in") emit("signed-out");
}

async function errorFrom(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  const err = body && typeof body === "object" ? body.error || body : {};
  noticeSignedOut(response.status, err.code);
  return new ApiError({
    code: typeof err.code === "string" ? err.code : response.status === 401 ? "unauthorized" : "unknown",
    message: typeof err.message === "string" ? err.message : "",
    detail: typeof err.detail === "string" ? err.detail : "",
    status: response.status,
  });
}

/** fetch + JSON; throws ApiError (code "network" when the server cannot be reached). */
export async function api(path, { method = "GET", body, signal, headers = {} } = {}) {
  const init = { method, signal, headers: { ...authHeaders(method), Accept: "application/json", ...headers } };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (exc) {
    if (exc && exc.name === "AbortError") throw exc;
    throw new ApiError({ code: "network" });
  }
  if (!response.ok) throw await errorFrom(response);
  return response.json();
}

/**
 * POST `body` to `path` and call onEvent(name, data) for every server-sent event.
 * Resolves when the stream ends; rejects with ApiError for a refused request (4xx JSON)
 * or an unreachable server, and with an AbortError when `signal` aborts.
 */
export async function postStream(path, body, { signal, onEvent }) {
  let response;
  try {
    response = await fetch(path, {
      method: "POST",
      signal,
      headers: {
        ...authHeaders("POST"),
        Accept: "text/event-stream",
        "Content-Type": "application/json",
      },
      body: JSON.stringify(body),
    });
  } catch (exc) {
    if (exc && exc.name === "AbortError") throw exc;
    throw new ApiError({ code: "network" });
  }
  if (!response.ok) throw await errorFrom(response);
  if (!response.body) throw new ApiError({ code: "network" });
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  const parser = new SSEParser(onEvent);
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      parser.feed(decoder.decode(value, { stream: true }));
    }
    parser.feed(decoder.decode());
    parser.end();
  } finally {
    reader.releaseLock?.();
  }
}

/** Incremental text/event-stream parser (https://html.spec.whatwg.org/#event-stream-interpretation). */
export class SSEParser {
  constructor(onEvent) {
    this.onEvent = onEvent;
    this.buffer = "";
    this.event = "";
    this.data = [];
  }

  feed(chunk) {
    this.buffer += chunk;
    let idx;
    while ((idx = this.buffer.search(/\r\n|\r|\n/)) >= 0) {
      const line = this.buffer.slice(0, idx);
      const sepLen = this.buffer.startsWith("\r\n", idx) ? 2 : 1;
      // A lone \r at the very end may be the first half of \r\n: wait for more.
      if (sepLen === 1 && this.buffer[idx] === "\r" && idx === this.buffer.length - 1) break;
      this.buffer = this.buffer.slice(idx + sepLen);
      this.line(line);
    }
  }

  line(line) {
    if (line === "") {
      this.dispatch();
      return;
    }
    if (line.startsWith(":")) return; // comment / ping
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") this.event = value;
    else if (field === "data") this.data.push(value);
  }

  dispatch() {
    if (this.data.length) {
      const raw = this.data.join("\n");
      let data = raw;
      try {
        data = JSON.parse(raw);
      } catch {
        data = { raw };
      }
      this.onEvent(this.event || "message", data);
    }
    this.event = "";
    this.data = [];
  }

  end() {
    if (this.buffer) this.line(this.buffer);
    this.buffer = "";
    this.dispatch();
  }
}

/** URL for EventSource, which cannot send headers: the key goes in the query string. */
export function eventSourceUrl(path) {
  const url = new URL(path, document.baseURI);
  const key = prefs.apiKey();
  if (key) url.searchParams.set("api_key", key);
  url.searchParams.set("lang", getLanguage());
  return url.href;
}

/**
 * POST one file as multipart (field `file`) with XMLHttpRequest, because fetch cannot report
 * upload progress. onProgress(sentBytes, totalBytes) follows the request body; resolves with
 * the JSON answer, rejects with ApiError (code "network" when the connection broke, which is
 * also what a server that refuses an oversized body mid-stream looks like).
 */
export function uploadFile(path, file, { onProgress, signal } = {}) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", path);
    for (const [name, value] of Object.entries({ ...authHeaders("POST"), Accept: "application/json" })) {
      xhr.setRequestHeader(name, value);
    }
    xhr.responseType = "text";
    if (onProgress) {
      xhr.upload.addEventListener("progress", (ev) => onProgress(ev.loaded, ev.lengthComputable ? ev.total : file.size));
    }
    const fail = (code) => reject(new ApiError({ code, status: xhr.status }));
    xhr.addEventListener("error", () => fail("network"));
    xhr.addEventListener("abort", () => reject(new DOMException("aborted", "AbortError")));
    xhr.addEventListener("load", () => {
      let body = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        body = null;
      }
      if (xhr.status >= 200 && xhr.status < 300 && body) {
        resolve(body);
        return;
      }
      const err = body && typeof body === "object" ? body.error || body : {};
      noticeSignedOut(xhr.status, err.code);
      reject(
        new ApiError({
          code: typeof err.code === "string" ? err.code : xhr.status === 401 ? "unauthorized" : "unknown",
          message: typeof err.message === "string" ? err.message : "",
          detail: typeof err.detail === "string" ? err.detail : "",
          status: xhr.status,
        }),
      );
    });
    if (signal) {
      if (signal.aborted) {
        reject(new DOMException("aborted", "AbortError"));
        return;
      }
      signal.addEventListener("abort", () => xhr.abort(), { once: true });
    }
    const form = new FormData();
    form.append("file", file, file.name);
    xhr.send(form);
  });
}
