"""The fiche's exports: the DOCX opens with python-docx and the Markdown reads back, both
with the header block of references, the section headings and the "§ n" citations."""

from __future__ import annotations

import io

from docx import Document

from judgments.corpus_judgments import zoned_decision
from legal_assistant.judgments.export import to_docx, to_markdown
from legal_assistant.judgments.extractive import ExtractiveFiche
from legal_assistant.judgments.fiche import Brief, Statement

NAME = "ECLI_FR_CCASS_2024_C201162"


async def _brief(lang: str = "fr") -> Brief:
    decision = zoned_decision(NAME)
    sections = await ExtractiveFiche(decision, lang).build()  # type: ignore[arg-type]
    # One statement marked unverified, as a model's wrong sentence would be.
    faits = sections[1]
    bad = Statement("Le pourvoi est irrecevable.", (2,), False, reason="unsupported")
    sections[1] = type(faits)(faits.key, faits.title, "generated", (*faits.statements, bad))
    return Brief(
        "a" * 32,
        lang,  # type: ignore[arg-type]
        None,
        "2026-12-06T21:00:00Z",
        decision.judgment.to_dict(),
        tuple(sections),
        filename="arret.pdf",
    )


async def test_docx_has_references_headings_and_paragraph_citations() -> None:
    doc = Document(io.BytesIO(to_docx(await _brief())))
    headings = [p.text for p in doc.paragraphs if p.style.name.startswith("Heading")]
    assert headings == [
        "Présentation",
        "Faits",
        "Procédure",
        "Moyens",
        "Problème de droit",
        "Solution",
        "Portée",
    ]
    refs = {row.cells[0].text: row.cells[1].text for row in doc.tables[0].rows}
    assert refs["Juridiction"] == "Cour de cassation"
    assert refs["N°"] == "22-18.227"
    assert refs["Date"] == "5 décembre 2024"
    assert refs["Solution"] == "Cassation"
    body = "\n".join(p.text for p in doc.paragraphs)
    assert "(§ 1)" in body and "(§ 12)" in body
    assert "Le pourvoi est irrecevable. (§ 2) — non vérifié" in body
    assert "(texte non numéroté)" in body  # the visa and the ruling


async def test_markdown_in_english_keeps_french_quotes() -> None:
    md = to_markdown(await _brief("en"))
    assert md.startswith("# Case brief\n")
    assert "- **No.**: 22-18.227" in md
    assert "## Holding" in md
    assert "« Selon l'arrêt attaqué (Aix-en-Provence, 29 avril 2022)" in md
    assert "(§ 9)" in md
    assert "⚠️ _unverified_" in md
