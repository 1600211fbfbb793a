"""Checking one statement of a fiche against the decision.

A statement is verified only when all of these hold:
1. it cites something: paragraph numbers, or (for unnumbered text: the header, a visa,
   the ruling) the exact spans it quotes;
2. every cited paragraph exists in the decision;
3. every quotation (« … », outermost pair) appears verbatim in the decision — and, when
   paragraphs are cited, inside one of them (a true quotation under the wrong § is a
   wrong citation);
4. its own words (what is not quoted) are supported by the cited text: for a generated
   sentence the claim checker decides (bundled embedding model + content-word overlap);
   an extracted statement has no words of its own beyond our fixed labels ("Visa :"),
   so 3 is its whole check.
The first failure is kept as `reason`, so the UI can say why.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from legal_assistant.judgments.decision import Decision, normalise
from legal_assistant.judgments.fiche import Anchor, Statement

# support(statement, cited texts) -> does the cited text back the statement?
Support = Callable[[str, Sequence[str]], Awaitable[bool]]


def quotations(text: str) -> list[str]:
    """The outermost « … » quotations of `text` (a decision quotes inside quotes)."""
    found: list[str] = []
    depth, start = 0, 0
    for i, ch in enumerate(text):
        if ch == "«":
            if depth == 0:
                start = i + 1
            depth += 1
        elif ch == "»" and depth > 0:
            depth -= 1
            if depth == 0:
                quote = text[start:i].strip()
                if quote:
                    found.append(quote)
    return found


def _without_quotes(text: str) -> str:
    out: list[str] = []
    depth = 0
    for ch in text:
        if ch == "«":
            depth += 1
            continue
        if ch == "»" and depth > 0:
            depth -= 1
            continue
        if depth == 0:
            out.append(ch)
    return "".join(out)


async def check_statement(
    decision: Decision,
    text: str,
    paragraphs: Sequence[int] = (),
    *,
    anchors: Sequence[Anchor] = (),
    quotes: Sequence[str] | None = None,
    support: Support | None = None,
    own_words: bool = False,
) -> Statement:
    """The statement with `verified`, `reason` and the anchors of its quotations.

    `quotes` defaults to the « … » of `text`. `own_words`: the statement has words of
    its own (a model wrote them): they must be supported through `support`; without a
    `support` function such a statement cannot be verified.
    """
    cited = tuple(dict.fromkeys(int(n) for n in paragraphs))
    quoted = list(quotes) if quotes is not None else quotations(text)
    found: list[Anchor] = list(anchors)
    reason: str | None = None
    if not cited and not found and not quoted:
        reason = "uncited"
    missing = [n for n in cited if decision.paragraph(n) is None]
    if reason is None and missing:
        reason = "paragraph_missing"
    cited_texts = [decision.paragraph_text(n) or "" for n in cited if n not in missing]
    cited_norm = [normalise(t) for t in cited_texts]
    for quote in quoted:
        anchor = decision.find(quote)
        if anchor is None:
            reason = reason or "quote_not_verbatim"
            continue
        if cited and not any(normalise(quote) in t for t in cited_norm):
            reason = reason or "wrong_citation"
            continue
        if not cited:
            found.append(anchor)
    if reason is None and not cited and not found:
        reason = "uncited"
    if reason is None and own_words:
        words = _without_quotes(text).strip()
        evidence = cited_texts or [decision.span_text(a) for a in found]
        if support is None or not await support(words or text, evidence):
            reason = "unsupported"
    return Statement(
        text=text,
        paragraphs=cited,
        verified=reason is None,
        anchors=tuple(found),
        reason=reason,
    )
