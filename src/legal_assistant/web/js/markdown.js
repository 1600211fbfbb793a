// A small, safe Markdown renderer for model output.
//
// Safety model: the input is HTML-escaped FIRST (every <, >, &, ", '), and only then do we
// add the few tags we generate ourselves. Nothing from the input can become a tag or an
// attribute: link targets are kept only when they are http(s) URLs, and they are written
// escaped inside double quotes. Supported: fenced code blocks (also unterminated ones,
// which happen while streaming), inline code, bold, italic, strikethrough, headings,
// ordered/unordered (nested) lists, blockquotes, horizontal rules, links, paragraphs.

const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

export function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

// Placeholders use characters that cannot come from the input (stripped on entry).
const PH_OPEN = "\u0000";
const PH_CLOSE = "\u0001";

function safeUrl(escapedUrl) {
  // The URL is already escaped (no raw quotes or angle brackets can remain in it).
  const url = escapedUrl.trim();
  if (!/^https?:\/\/[^\s]+$/i.test(url)) return null;
  return url;
}

// Inline formatting on one escaped line (or a paragraph joined with \n).
export function renderInline(escaped) {
  const slots = [];
  const keep = (html) => {
    slots.push(html);
    return `${PH_OPEN}${slots.length - 1}${PH_CLOSE}`;
  };
  let s = escaped;
  // Inline code first: its content is not formatted further.
  s = s.replace(/(`+)([^`]|[^`][\s\S]*?[^`])\1(?!`)/g, (_m, _ticks, code) =>
    keep(`<code>${code.trim() === "" ? code : code.replace(/^ (.*) $/, "$1")}</code>`),
  );
  // Links [text](http://...) — anything but http/https stays as plain text.
  s = s.replace(/\[([^\]\n]+)\]\(([^()\s]+)\)/g, (match, text, url) => {
    const href = safeUrl(url);
    if (!href) return match;
    return keep(
      `<a href="${href}" target="_blank" rel="noopener noreferrer">${text}</a>`,
    );
  });
  // Bare URLs become links too (already escaped, so & is &amp; etc.).
  s = s.replace(/(^|[\s(])(https?:\/\/[^\s<)]+[^\s<).,;:!?'"])/gi, (_m, lead, url) => {
    const href = safeUrl(url);
    if (!href) return _m;
    return lead + keep(`<a href="${href}" target="_blank" rel="noopener noreferrer">${url}</a>`);
  });
  s = s.replace(/\*\*(?=\S)([\s\S]*?\S)\*\*/g, "<strong>$1</strong>");
  s = s.replace(/__(?=\S)([\s\S]*?\S)__(?![A-Za-z0-9])/g, "<strong>$1</strong>");
  s = s.replace(/(^|[^*\w])\*(?=[^\s*])([^*\n]*?[^\s*])\*(?!\*)/g, "$1<em>$2</em>");
  s = s.replace(/(^|[^_\w])_(?=[^\s_])([^_\n]*?[^\s_])_(?![_\w])/g, "$1<em>$2</em>");
  s = s.replace(/~~(?=\S)([\s\S]*?\S)~~/g, "<del>$1</del>");
  s = s.replace(/\n/g, "<br>");
  return s.replace(new RegExp(`${PH_OPEN}(\\d+)${PH_CLOSE}`, "g"), (_m, i) => slots[Number(i)]);
}

const LIST_ITEM = /^(\s*)([-*+]|\d{1,9}[.)])\s+(.*)$/;
const HEADING = /^(#{1,6})\s+(.*?)\s*#*\s*$/;
const RULE = /^\s{0,3}([-*_])(\s*\1){2,}\s*$/;
const FENCE = /^\s{0,3}(```+|~~~+)\s*([\w+.#-]*)\s*$/;

function renderList(lines, start) {
  // Parse a (possibly nested) list starting at lines[start]; return [html, nextIndex].
  const first = lines[start].match(LIST_ITEM);
  const baseIndent = first[1].replace(/\t/g, "    ").length;
  const ordered = /\d/.test(first[2]);
  const startNum = ordered ? parseInt(first[2], 10) : 1;
  const items = [];
  let i = start;
  while (i < lines.length) {
    const line = lines[i];
    if (line.trim() === "") {
      // A blank line ends the list unless the list continues right after it.
      const next = lines[i + 1];
      const m = next !== undefined ? next.match(LIST_ITEM) : null;
      if (m && m[1].replace(/\t/g, "    ").length >= baseIndent) {
        i += 1;
        continue;
      }
      break;
    }
    const m = line.match(LIST_ITEM);
    const indent = m ? m[1].replace(/\t/g, "    ").length : line.match(/^\s*/)[0].length;
    if (m && indent === baseIndent) {
      if (/\d/.test(m[2]) !== ordered) break;
      items.push({ text: [m[3]], children: "" });
      i += 1;
    } else if (m && indent > baseIndent && items.length) {
      const [html, next] = renderList(lines, i);
      items[items.length - 1].children += html;
      i = next;
    } else if (!m && indent > baseIndent && items.length) {
      items[items.length - 1].text.push(line.trim()); // continuation line
      i += 1;
    } else if (!m && items.length && !HEADING.test(line) && !FENCE.test(line)) {
      items[items.length - 1].text.push(line.trim()); // lazy continuation
      i += 1;
    } else {
      break;
    }
  }
  const tag = ordered ? "ol" : "ul";
  const startAttr = ordered && startNum !== 1 ? ` start="${startNum}"` : "";
  const body = items
    .map((it) => `<li>${renderInline(it.text.join("\n"))}${it.children}</li>`)
    .join("");
  return [`<${tag}${startAttr}>${body}</${tag}>`, i];
}

function renderBlocks(escapedText) {
  const lines = escapedText.split("\n");
  const out = [];
  let para = [];
  const flush = () => {
    if (para.length) {
      out.push(`<p>${renderInline(para.join("\n"))}</p>`);
      para = [];
    }
  };
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (line.trim() === "") {
      flush();
      i += 1;
      continue;
    }
    const h = line.match(HEADING);
    if (h) {
      flush();
      const level = Math.min(h[1].length + 2, 6); // h3..h6: headings inside a message
      out.push(`<h${level}>${renderInline(h[2])}</h${level}>`);
      i += 1;
      continue;
    }
    if (RULE.test(line)) {
      flush();
      out.push("<hr>");
      i += 1;
      continue;
    }
    if (LIST_ITEM.test(line) && (para.length === 0 || /^\s*([-*+]|1[.)])\s/.test(line))) {
      flush();
      const [html, next] = renderList(lines, i);
      out.push(html);
      i = next;
      continue;
    }
    if (/^\s{0,3}&gt;/.test(line)) {
      flush();
      const quoted = [];
      while (i < lines.length && /^\s{0,3}&gt;/.test(lines[i])) {
        quoted.push(lines[i].replace(/^\s{0,3}&gt;\s?/, ""));
        i += 1;
      }
      out.push(`<blockquote>${renderBlocks(quoted.join("\n"))}</blockquote>`);
      continue;
    }
    para.push(line);
    i += 1;
  }
  flush();
  return out.join("");
}

/** Render Markdown to an HTML string that only contains tags this module generates. */
export function renderMarkdown(source) {
  const text = String(source ?? "")
    .replace(/[\u0000\u0001]/g, "")
    .replace(/\r\n?/g, "\n");
  const lines = text.split("\n");
  const out = [];
  let buffer = [];
  const flushText = () => {
    if (buffer.length) {
      out.push(renderBlocks(escapeHtml(buffer.join("\n"))));
      buffer = [];
    }
  };
  let i = 0;
  while (i < lines.length) {
    const fence = lines[i].match(FENCE);
    if (!fence) {
      buffer.push(lines[i]);
      i += 1;
      continue;
    }
    flushText();
    const marker = fence[1];
    const lang = fence[2] || "";
    const code = [];
    i += 1;
    let closed = false;
    while (i < lines.length) {
      const trimmed = lines[i].trim();
      if (trimmed.startsWith(marker[0].repeat(marker.length)) && /^(`+|~+)$/.test(trimmed)) {
        closed = true;
        i += 1;
        break;
      }
      code.push(lines[i]);
      i += 1;
    }
    const langClass = lang ? ` class="language-${escapeHtml(lang)}"` : "";
    const langAttr = lang ? ` data-lang="${escapeHtml(lang)}"` : "";
    out.push(
      `<pre${langAttr}${closed ? "" : ' data-open="true"'}><code${langClass}>${escapeHtml(
        code.join("\n"),
      )}</code></pre>`,
    );
  }
  flushText();
  return out.join("");
}
