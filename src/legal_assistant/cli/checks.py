"""After an `ask`: what was checked about the answer, as the web UI shows it — why it
stopped (a loop cut, max_tokens), the claims' one-line summary and the statements that
are not backed (an unsupported citation, no citation at all), and the extractive answer
of a grounded turn whose model cited nothing that holds (docs/answers.md)."""

from __future__ import annotations

from typing import Any

from rich.markup import escape

from legal_assistant.cli.common import console
from legal_assistant.errors import Language

_SUMMARY = {
    "fr": ("{n} affirmation sourcée sur {total}", "{n} affirmations sourcées sur {total}"),
    "en": ("{n} of {total} statement sourced", "{n} of {total} statements sourced"),
}
_UNSUPPORTED = {
    "fr": "✗ [{n}] ne soutient pas cette phrase : « {text} »",
    "en": "✗ [{n}] does not support this sentence: “{text}”",
}
_UNCITED = {"fr": "? sans source : « {text} »", "en": "? no source: “{text}”"}
_TRIMMED = {
    "fr": "(la répétition a été retirée de la réponse enregistrée)",
    "en": "(the repetition was removed from the saved answer)",
}


def _short(text: str, limit: int = 100) -> str:
    text = " ".join(text.split())
    return escape(text if len(text) <= limit else text[: limit - 1] + "…")


def print_checks(done: dict[str, Any], extract: dict[str, Any] | None, language: Language) -> None:
    """The notice, the extract and the claims of a finished turn (`done`)."""
    if done.get("stopped"):
        trimmed = f" [dim]{_TRIMMED[language]}[/dim]" if done["stopped"] == "repetition" else ""
        console.print(
            f"[yellow]⚠ {escape(str(done.get('notice') or done['stopped']))}[/yellow]{trimmed}"
        )
    if extract and extract.get("text"):
        console.print()
        console.print(escape(str(extract["text"])))
    claims = [c for c in done.get("claims") or [] if c.get("verdict") != "not_a_claim"]
    if not claims:
        return
    sourced = sum(c["verdict"] == "supported" for c in claims)
    one = sourced <= 1 if language == "fr" else len(claims) == 1
    line = _SUMMARY[language][0 if one else 1].format(n=sourced, total=len(claims))
    colour = "green" if sourced == len(claims) else "yellow"
    console.print(f"[{colour}]{line}[/{colour}]")
    for claim in claims:
        if claim["verdict"] == "uncited":
            console.print(f"[dim]  {_UNCITED[language].format(text=_short(claim['text']))}[/dim]")
            continue
        for cite in claim.get("citations") or []:
            if cite.get("verdict") == "unsupported":
                text = _UNSUPPORTED[language].format(n=cite["n"], text=_short(claim["text"]))
                console.print(f"[yellow]  {text}[/yellow]")
