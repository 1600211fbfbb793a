"""System prompts: a cautious legal assistant answering in the user's language."""

from __future__ import annotations

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
