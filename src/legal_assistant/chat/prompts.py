"""System prompts: a cautious legal assistant answering in the user's language."""

from __future__ import annotations

from typing import Any

from legal_assistant.errors import Language

SYSTEM_PROMPTS: dict[Language, str] = {
    # Kept short on purpose: on a CPU engine every prompt token costs first-answer latency
    # (prefill runs at ~12 tokens/s for the bundled model).
    "fr": (
        "Tu es Legal Assistant, un assistant juridique prudent. Réponds en français, "
        "clairement. Cite les textes applicables si tu les connais, sans jamais inventer "
        "de référence. Précise que ta réponse est une information générale, pas un "
        "conseil juridique."
    ),
    "en": (
        "You are Legal Assistant, a cautious legal assistant. Answer in English, clearly. "
        "Cite the applicable texts if you know them, never inventing a reference. State "
        "that your answer is general information, not legal advice."
    ),
}


def system_prompt(language: Language) -> str:
    return SYSTEM_PROMPTS[language]


# --------------------------------------------------------------------------- dossiers
# A grounded turn (chat/grounding.py): the passages go in the user's message, numbered,
# so the conversation's history keeps only the questions and answers.
GROUNDED_SYSTEM_PROMPTS: dict[Language, str] = {
    "fr": (
        "Tu es Legal Assistant, un assistant juridique prudent. Réponds en français, "
        "uniquement à partir des extraits numérotés du dossier fournis avec la question. "
        "Après chaque affirmation, cite l'extrait qui la fonde par son numéro entre "
        "crochets, par exemple [1]. Si les extraits ne permettent pas de répondre, dis-le "
        "simplement. N'invente aucune règle ni référence."
    ),
    "en": (
        "You are Legal Assistant, a cautious legal assistant. Answer in English, only from "
        "the numbered excerpts of the case file given with the question. After each claim, "
        "cite the excerpt it rests on by its number in square brackets, for example [1]. "
        "If the excerpts do not answer the question, simply say so. Never invent a rule or "
        "a reference."
    ),
}

_EXCERPTS = {"fr": "Extraits du dossier :", "en": "Excerpts of the case file:"}
_QUESTION = {"fr": "Question :", "en": "Question:"}
_PAGE = {"fr": "p.", "en": "p."}
_PARAGRAPH = {"fr": "§", "en": "para."}

NO_PASSAGE: dict[Language, str] = {
    "fr": (
        "Je n'ai trouvé dans les documents de ce dossier aucun passage qui réponde à cette "
        "question. Je préfère ne pas répondre sans source : reformulez la question, ou "
        "ajoutez au dossier le document qui traite de ce point."
    ),
    "en": (
        "I found no passage in this case file's documents that answers this question. I "
        "would rather not answer without a source: rephrase the question, or add the "
        "document that deals with this point to the case file."
    ),
}


def grounded_system_prompt(language: Language) -> str:
    return GROUNDED_SYSTEM_PROMPTS[language]


def no_passage(language: Language) -> str:
    return NO_PASSAGE[language]


def grounded_question(
    language: Language, question: str, sources: list[dict[str, Any]], max_chars: int
) -> str:
    """The excerpts [1]..[k] (each with its file, page or paragraph and label), within
    `max_chars` of passage text shared evenly, then the question."""
    share = max(200, max_chars // max(1, len(sources)))
    blocks = []
    for s in sources:
        where = (
            f"{_PARAGRAPH[language]} {s['paragraph']}"
            if s.get("paragraph")
            else f"{_PAGE[language]} {s['page']}"
        )
        head = ", ".join(x for x in (s["filename"], where, s.get("label")) if x)
        text = " ".join(str(s["text"]).split())
        if len(text) > share:
            text = text[: share - 1].rstrip() + "…"
        blocks.append(f"[{s['n']}] ({head}) {text}")
    excerpts = "\n\n".join(blocks)
    return f"{_EXCERPTS[language]}\n\n{excerpts}\n\n{_QUESTION[language]} {question}"
