"""`legal-assistant brief FILE`: the fiche d'arrêt of a decision file, no dossier and no
backend needed — the file is extracted (the dossiers' extraction worker), analysed,
and the fiche built here; with `--model` the engine is started in this process (and
stopped at the end), its start shown as the chat shows it."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from legal_assistant.cli.common import console, fail, load_settings, out
from legal_assistant.config import Settings
from legal_assistant.errors import Language, LegalAssistantError
from legal_assistant.judgments.brief import BriefEvent, SectionWriter, build_brief
from legal_assistant.judgments.decision import Decision, PageText
from legal_assistant.judgments.export import citation, references, to_docx, to_markdown
from legal_assistant.judgments.fiche import TITLES, Brief


async def read_decision(path: Path, settings: Settings) -> Decision:
    """Extract and analyse `path`; not a judgment -> `not_a_judgment`."""
    from legal_assistant.documents.extract import extract_document
    from legal_assistant.judgments.brief import not_a_judgment
    from legal_assistant.judgments.parse import analyse

    extracted = await extract_document(path, path.name, settings=settings)
    judgment = analyse(extracted.pages, extracted.paginated)
    if not judgment.is_judgment:
        raise not_a_judgment(path.name)
    return Decision(judgment, [PageText(p.number, p.text) for p in extracted.pages])


async def _events(
    path: Path, settings: Settings, model_id: str | None, lang: Language
) -> AsyncIterator[BriefEvent | Brief]:
    decision = await read_decision(path, settings)
    document_id = hashlib.sha256(str(path).encode()).hexdigest()[:32]
    if model_id is None:
        async for item in build_brief(decision, document_id, lang, filename=path.name):
            yield item
        return
    from legal_assistant.claims.checker import ClaimChecker
    from legal_assistant.documents.embedder import Embedder
    from legal_assistant.judgments.chat_model import ChatModel
    from legal_assistant.judgments.generated import ModelWriter, claim_support
    from legal_assistant.runtime.supervisor import Supervisor

    supervisor = Supervisor(settings)
    supervisor.reap_orphans()
    embedder = Embedder(supervisor, settings)
    model = ChatModel(settings, supervisor, model_id)
    writer: SectionWriter = ModelWriter(model, claim_support(ClaimChecker(embedder.queries)))
    try:
        async for item in build_brief(
            decision, document_id, lang, writer=writer, filename=path.name
        ):
            yield item
    finally:
        await model.aclose()
        await embedder.aclose()
        await supervisor.shutdown()


async def make(path: Path, settings: Settings, model_id: str | None, lang: Language) -> Brief:
    """The fiche, with a progress bar per section and the engine's status lines."""
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console,
        transient=True,
    )
    title = "Fiche d'arrêt" if lang == "fr" else "Case brief"
    task = progress.add_task(title, total=7)
    brief: Brief | None = None
    with progress:
        events = _events(path, settings, model_id, lang)
        try:
            async for item in events:
                if isinstance(item, Brief):
                    brief = item
                elif item.event == "progress":
                    key = item.data["section"]
                    name = TITLES[lang].get(key, key)
                    progress.update(
                        task, completed=item.data["done"], description=f"{title} — {name}"
                    )
                    if not console.is_terminal:  # no live bar in a pipe or a log: one line each
                        console.print(f"{title} : {item.data['done']}/{item.data['total']} {name}")
                elif item.event == "status":
                    progress.console.print(item.data.get("message", ""))
        finally:
            await events.aclose()  # type: ignore[attr-defined]
    assert brief is not None
    return brief


def print_brief(brief: Brief) -> None:
    unverified = "non vérifié" if brief.language == "fr" else "unverified"
    for label, value in references(brief):
        out.print(f"[bold]{label}[/bold] : {value}", soft_wrap=True, highlight=False)
    for section in brief.sections:
        out.print()
        out.rule(f"[bold]{section.title}[/bold]", align="left")
        if section.note:
            out.print(f"[italic]{section.note}[/italic]", soft_wrap=True, highlight=False)
        for st in section.statements:
            cite = citation(st, brief.language)
            flag = "" if st.verified else f" [red]⚠ {unverified}[/red]"
            cited = f" [cyan]({cite})[/cyan]" if cite else ""
            out.print(f"• {st.text}{cited}{flag}", soft_wrap=True, highlight=False, markup=True)


_FILE = typer.Argument(
    ...,
    exists=True,
    dir_okay=False,
    readable=True,
    help="The decision (PDF, DOCX, ODT, RTF, TXT…).",
)
_MODEL = typer.Option(None, "--model", help="Chat model writing the fiche; none: extractive.")
_LANG = typer.Option("fr", "--lang", help="Language of the fiche: fr or en.")
_DOCX = typer.Option(None, "--docx", help="Also write the fiche as DOCX here.")
_MD = typer.Option(None, "--md", help="Also write the fiche as Markdown here.")


def brief_command(
    file: Path = _FILE,
    model: str = _MODEL,
    lang: str = _LANG,
    docx: Path = _DOCX,
    md: Path = _MD,
) -> None:
    """The fiche d'arrêt of a court decision, every statement cited to its paragraph and
    checked (works on the file: no dossier, no backend)."""
    if lang not in ("fr", "en"):
        raise fail(f"--lang fr or en, not {lang!r}")
    language: Language = "en" if lang == "en" else "fr"
    settings = load_settings()
    try:
        brief = asyncio.run(make(file, settings, model, language))
    except LegalAssistantError as err:
        raise fail(err, language) from err
    print_brief(brief)
    if docx is not None:
        docx.write_bytes(to_docx(brief))
        console.print(f"DOCX : {docx}")
    if md is not None:
        md.write_text(to_markdown(brief), encoding="utf-8")
        console.print(f"Markdown : {md}")
