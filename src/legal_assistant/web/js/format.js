// Numbers, sizes, durations and times in the UI language.
import { getLanguage, t } from "./i18n.js";

const locale = () => (getLanguage() === "en" ? "en-GB" : "fr-FR");

export function number(value, digits = 1) {
  return new Intl.NumberFormat(locale(), {
    maximumFractionDigits: digits,
    minimumFractionDigits: 0,
  }).format(value);
}

export function bytes(value) {
  if (value === null || value === undefined) return "—";
  const units = getLanguage() === "en" ? ["B", "KB", "MB", "GB", "TB"] : ["o", "Ko", "Mo", "Go", "To"];
  let v = Number(value);
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return `${number(v, v >= 100 || i === 0 ? 0 : 1)} ${units[i]}`;
}

export function seconds(value, digits = 1) {
  if (value === null || value === undefined || Number.isNaN(value)) return "—";
  const v = Math.max(0, Number(value));
  if (v < 60) return t("time.s", { v: number(v, v < 10 ? digits : 0) });
  if (v < 3600) return t("time.min", { m: Math.floor(v / 60), s: Math.floor(v % 60) });
  return t("time.h", { h: Math.floor(v / 3600), m: Math.floor((v % 3600) / 60) });
}

export function parseDate(value) {
  if (!value) return new Date();
  const d = value instanceof Date ? value : new Date(value);
  return Number.isNaN(d.getTime()) ? new Date() : d;
}

export function clock(value) {
  return new Intl.DateTimeFormat(locale(), { hour: "2-digit", minute: "2-digit" }).format(
    parseDate(value),
  );
}

export function fullDate(value) {
  return new Intl.DateTimeFormat(locale(), { dateStyle: "full", timeStyle: "medium" }).format(
    parseDate(value),
  );
}

export function shortDate(value) {
  return new Intl.DateTimeFormat(locale(), { day: "numeric", month: "short" }).format(
    parseDate(value),
  );
}

/** "today" | "yesterday" | "earlier" for grouping the conversation list. */
export function dayBucket(value) {
  const d = parseDate(value);
  const start = new Date();
  start.setHours(0, 0, 0, 0);
  if (d >= start) return "today";
  const yesterday = new Date(start);
  yesterday.setDate(start.getDate() - 1);
  if (d >= yesterday) return "yesterday";
  return "earlier";
}

/** Short time for a list item: the hour today, the date otherwise. */
export function listTime(value) {
  return dayBucket(value) === "today" ? clock(value) : shortDate(value);
}
