"""`legal-assistant brief FILE` as a user runs it (a real subprocess: the extraction
worker, the parser, the fiche; no backend, no dossier), on a real decision of the corpus
as TXT and as a PDF of several pages, and on a file that is not a judgment."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from docx import Document

from documents.builders import build_pdf
from judgments.corpus_judgments import corpus_text

NAME = "ECLI_FR_CCASS_2024_C201162"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEGAL_ASSISTANT_")}
    env.update(
        LEGAL_ASSISTANT_DATA_DIR=str(tmp_path / "data"),
        LEGAL_ASSISTANT_CONFIG_FILE=str(tmp_path / "absent.toml"),
        COLUMNS="200",
    )
    return env


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "legal_assistant.cli", "brief", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def paged(text: str, per_page: int = 5) -> list[list[str]]:
    blocks = [b.strip() for b in text.split("\n\n") if b.strip()]
    return [blocks[i : i + per_page] for i in range(0, len(blocks), per_page)]


def test_txt_prints_the_fiche_and_writes_both_exports(env: dict[str, str], tmp_path: Path) -> None:
    src = tmp_path / "arret.txt"
    src.write_text(corpus_text(NAME), encoding="utf-8")
    md, docx = tmp_path / "fiche.md", tmp_path / "fiche.docx"
    result = run(env, str(src), "--md", str(md), "--docx", str(docx))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    out = result.stdout
    for title in ("Présentation", "Faits", "Procédure", "Moyens", "Solution", "Portée"):
        assert title in out
    assert "(§ 1)" in out and "(§ 12)" in out
    assert "22-18.227" in out and "non vérifié" not in out
    # Not a terminal: the progress bar becomes one line per section on stderr.
    assert "Fiche d'arrêt : 1/7 Présentation" in result.stderr
    assert "Fiche d'arrêt : 7/7 Portée" in result.stderr
    assert "(§ 1)" in md.read_text(encoding="utf-8")
    doc = Document(io.BytesIO(docx.read_bytes()))
    assert "(§ 9)" in "\n".join(p.text for p in doc.paragraphs)


def test_pdf_in_english(env: dict[str, str], tmp_path: Path) -> None:
    pdf = build_pdf(tmp_path / "arret.pdf", paged(corpus_text(NAME)))
    result = run(env, str(pdf), "--lang", "en")
    assert result.returncode == 0, result.stderr
    assert "Holding" in result.stdout and "Case brief" not in result.stderr.split("\n")[-1]
    assert "« Vu les articles 54, 55, 57 et 58" in result.stdout
    assert "(§ 12)" in result.stdout


def test_not_a_judgment_is_refused_clearly(env: dict[str, str], tmp_path: Path) -> None:
    src = tmp_path / "bail.txt"
    src.write_text("Contrat de bail.\n\nLe loyer est de 800 euros par mois.\n", encoding="utf-8")
    result = run(env, str(src))
    assert result.returncode == 1
    assert "pas une décision de justice" in result.stderr
    assert "Traceback" not in result.stderr
