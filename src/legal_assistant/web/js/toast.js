// Transient notices in a corner (copied, engine start/stop failures...).
import { h } from "./dom.js";

export function toast(text, { kind = "info", timeout = 2600, detail = "" } = {}) {
  const host = document.getElementById("toasts");
  if (!host) return;
  const el = h(
    "div",
    { class: `toast toast-${kind}`, role: kind === "error" ? "alert" : "status" },
    h("span", { class: "toast-text" }, text),
    detail ? h("span", { class: "toast-detail" }, detail) : null,
  );
  host.append(el);
  requestAnimationFrame(() => el.classList.add("is-visible"));
  setTimeout(() => {
    el.classList.remove("is-visible");
    setTimeout(() => el.remove(), 250);
  }, timeout);
}
