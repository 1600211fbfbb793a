"""The extractive answer: what a grounded turn adds when the model cited nothing that holds.

A small local model often ignores the passages it was given, loops, or cites nothing. The
user asked about their dossier and the dossier does answer (the passages passed the
retrieval's relevance threshold): rather than leave them with an unsourced paragraph, the
turn quotes the best passages for the question — each with its document, page (or
paragraph) and label, and its number, so the citation chips open the page — introduced
honestly as what it is.

Pure: the passages are the turn's `sources` (already ranked by the hybrid search); from
each of the best `count`, the quote is the passage's sentences that share the most words
with the question (a window of at most `max_chars`), so a long passage is quoted where it
speaks to the question rather than from its first line.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from legal_assistant.errors import Language

INTRO: dict[Language, str] = {
    "fr": (
        "Le modèle n'a pas produit de réponse sourcée ; voici les passages du dossier qui "
        "traitent de votre question :"
    ),
    "en": (
        "The model did not produce a sourced answer; here are the passages of the case "
        "file that deal with your question:"
    ),
}
_PAGE = {"fr": "p.", "en": "p."}
_QUOTES = {"fr": ("« ", " »"), "en": ("“", "”")}
_PARAGRAPH = {"fr": "§", "en": "para."}
_SENTENCE = re.compile(r"[^.!?;\n]+(?:[.!?;]+|\n|$)")
_WORD = re.compile(r"\w+")
# Words too common to say what a question is about (FR and EN), and short ones.
_STOP = frozenset(
    {
        "alors",
        "aussi",
        "avec",
        "avoir",
        "dans",
        "donc",
        "elle",
        "elles",
        "etre",
        "leur",
        "leurs",
        "mais",
        "meme",
        "nous",
        "pour",
        "quel",
        "quelle",
        "quelles",
        "quels",
        "sans",
        "sont",
        "sous",
        "cette",
        "ceci",
        "cela",
        "comment",
        "quoi",
        "peut",
        "peuvent",
        "doit",
        "about",
        "also",
        "been",
        "does",
        "from",
        "have",
        "into",
        "that",
        "their",
        "there",
        "these",
        "they",
        "this",
        "what",
        "when",
        "where",
        "which",
        "with",
        "would",
        "could",
        "should",
    }
)


def _words(text: str) -> set[str]:
    folded = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(c for c in folded if not unicodedata.combining(c))
    # A 5-letter prefix stands in for a stem: "locataire"/"locataires", "bail"/"baux" no.
    return {w[:5] for w in _WORD.findall(plain) if len(w) > 3 and w not in _STOP}


def quote(passage: str, question: str, max_chars: int = 500) -> str:
    """The sentences of `passage` that best answer `question`, at most `max_chars`
    (with "…" where the passage was cut)."""
    text = " ".join(passage.split())
    if len(text) <= max_chars:
        return text
    sentences = [m.group().strip() for m in _SENTENCE.finditer(text) if m.group().strip()]
    asked = _words(question)
    best = max(range(len(sentences)), key=lambda i: (len(_words(sentences[i]) & asked), -i))
    picked = [sentences[best]]
    start = end = best
    # Grow the window after (then before) the best sentence while it fits.
    while True:
        grew = False
        if end + 1 < len(sentences) and len(" ".join([*picked, sentences[end + 1]])) <= max_chars:
            end += 1
            picked.append(sentences[end])
            grew = True
        elif start > 0 and len(" ".join([sentences[start - 1], *picked])) <= max_chars:
            start -= 1
            picked.insert(0, sentences[start])
            grew = True
        if not grew:
            break
    body = " ".join(picked)
    cut = len(body) > max_chars  # one sentence longer than the window
    if cut:
        body = body[: max_chars - 1].rstrip()
    more = cut or end + 1 < len(sentences)
    return ("… " if start > 0 else "") + body + (" …" if more else "")


def extractive_answer(
    sources: list[dict[str, Any]],
    question: str,
    language: Language,
    *,
    count: int = 3,
    max_chars: int = 500,
) -> dict[str, Any] | None:
    """`{"text", "sources": [n, ...]}` quoting the best `count` passages; None without
    passages."""
    picked = sources[:count]
    if not picked:
        return None
    blocks = [INTRO[language]]
    for s in picked:
        where = (
            f"{_PARAGRAPH[language]} {s['paragraph']}"
            if s.get("paragraph")
            else f"{_PAGE[language]} {s['page']}"
        )
        head = ", ".join(str(x) for x in (s.get("filename"), where, s.get("label")) if x)
        opening, closing = _QUOTES[language]
        quoted = quote(str(s["text"]), question, max_chars)
        blocks.append(f"**{head}** [{s['n']}]\n> {opening}{quoted}{closing}")
    return {"text": "\n\n".join(blocks), "sources": [int(s["n"]) for s in picked]}
