"""The fiche as files: Markdown and DOCX (python-docx).

Both open with a header block of the decision's references (court, formation, date,
numbers, solution, attacked decision, publication, ECLI), then the sections in order;
each statement ends with its citations as "§ n" (or "(texte non numéroté)" for the
header, visa and ruling, which the Court does not number) and an unverified statement
is flagged, so a printed fiche says what the screen says.
"""

from __future__ import annotations

import io
from typing import Any

from docx import Document
from docx.shared import Pt, RGBColor

from legal_assistant.errors import Language
from legal_assistant.judgments.fiche import Brief, Statement
from legal_assistant.judgments.quoting import long_date

_WORDS: dict[Language, dict[str, str]] = {
    "fr": {
        "title": "Fiche d'arrêt",
        "court": "Juridiction",
        "formation": "Formation",
        "date": "Date",
        "numbers": "N°",
        "solution": "Solution",
        "attacked": "Décision attaquée",
        "publication": "Publication",
        "ecli": "ECLI",
        "model": "Modèle",
        "extractive": "aucun (fiche extractive)",
        "unverified": "non vérifié",
        "unnumbered": "texte non numéroté",
        "file": "Document",
    },
    "en": {
        "title": "Case brief",
        "court": "Court",
        "formation": "Formation",
        "date": "Date",
        "numbers": "No.",
        "solution": "Outcome",
        "attacked": "Decision under appeal",
        "publication": "Publication",
        "ecli": "ECLI",
        "model": "Model",
        "extractive": "none (extractive brief)",
        "unverified": "unverified",
        "unnumbered": "unnumbered text",
        "file": "Document",
    },
}


def references(brief: Brief) -> list[tuple[str, str]]:
    """The header block: (label, value) for every reference the decision gave."""
    w = _WORDS[brief.language]
    j: dict[str, Any] = brief.judgment
    rows: list[tuple[str, str]] = []
    if brief.filename:
        rows.append((w["file"], brief.filename))
    for key in ("court", "formation"):
        if j.get(key):
            rows.append((w[key], str(j[key])))
    date = long_date(j.get("date"), brief.language) or j.get("date")
    if date:
        rows.append((w["date"], str(date)))
    if j.get("numbers"):
        rows.append((w["numbers"], ", ".join(j["numbers"])))
    if j.get("solution"):
        rows.append((w["solution"], str(j["solution"])))
    attacked = j.get("attacked") or {}
    if attacked.get("court") or attacked.get("date"):
        when = long_date(attacked.get("date"), brief.language) or attacked.get("date") or ""
        rows.append((w["attacked"], " — ".join(x for x in (attacked.get("court"), when) if x)))
    for key in ("publication", "ecli"):
        if j.get(key):
            rows.append((w[key], str(j[key])))
    rows.append((w["model"], brief.model or w["extractive"]))
    return rows


def citation(statement: Statement, language: Language) -> str:
    if statement.paragraphs:
        return ", ".join(f"§ {n}" for n in statement.paragraphs)
    if statement.anchors:
        return _WORDS[language]["unnumbered"]
    return ""


def to_markdown(brief: Brief) -> str:
    w = _WORDS[brief.language]
    lines = [f"# {w['title']}", ""]
    for label, value in references(brief):
        lines.append(
            f"- **{label}** : {value}" if brief.language == "fr" else f"- **{label}**: {value}"
        )
    for section in brief.sections:
        lines += ["", f"## {section.title}", ""]
        if section.note:
            lines.append(f"_{section.note}_")
        for st in section.statements:
            cite = citation(st, brief.language)
            flag = "" if st.verified else f" ⚠️ _{w['unverified']}_"
            lines.append(f"- {st.text}" + (f" ({cite})" if cite else "") + flag)
    return "\n".join(lines) + "\n"


def to_docx(brief: Brief) -> bytes:
    w = _WORDS[brief.language]
    doc = Document()
    doc.core_properties.title = w["title"]
    doc.core_properties.language = brief.language
    doc.add_heading(w["title"], level=0)
    table = doc.add_table(rows=0, cols=2)
    table.style = "Light List Accent 1"
    for label, value in references(brief):
        cells = table.add_row().cells
        cells[0].text = label
        cells[1].text = value
    for section in brief.sections:
        doc.add_heading(section.title, level=1)
        if section.note:
            note = doc.add_paragraph()
            run = note.add_run(section.note)
            run.italic = True
        for st in section.statements:
            para = doc.add_paragraph(style="List Bullet")
            para.add_run(st.text)
            cite = citation(st, brief.language)
            if cite:
                run = para.add_run(f" ({cite})")
                run.bold = True
            if not st.verified:
                run = para.add_run(f" — {w['unverified']}")
                run.italic = True
                run.font.color.rgb = RGBColor(0xB0, 0x3A, 0x2E)
                run.font.size = Pt(9)
    buf = io.BytesIO()
    doc.save(buf)
    return buf.getvalue()
