"""`legal-assistant dossiers create | add | list | search | rm` and `ask --dossier`, as a
user types them, against a real `legal-assistant serve` backend (real SurrealDB, real
embedding engine, real extraction worker, the real bundled MLX model)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from dossier_builders import article, build_docx, corrupt_pdf, planted_pdf

from app_harness import Backend, closed_port, hermetic_env, run_backend


@pytest.fixture
def backend(tmp_path: Path, models_dir: Path, bundled_model: Path) -> Iterator[Backend]:
    env = hermetic_env(
        LEGAL_ASSISTANT_DATA_DIR=str(tmp_path / "data"),
        LEGAL_ASSISTANT_MODELS_DIR=str(models_dir),
        LEGAL_ASSISTANT_CONFIG_FILE=str(tmp_path / "absent.toml"),
        LEGAL_ASSISTANT_MLX_MAX_TOKENS="24",
        HF_HOME=str(tmp_path / "hf"),
    )
    with run_backend(env, tmp_path / "backend.err") as running:
        yield running


def cli(backend: Backend, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "legal_assistant.cli", *args, "--url", backend.url],
        env=backend.env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_dossiers_commands_end_to_end(backend: Backend, tmp_path: Path) -> None:
    created = cli(backend, "dossiers", "create", "Affaire Test")
    assert created.returncode == 0, created.stderr
    dossier_id, name = created.stdout.split(maxsplit=1)
    assert len(dossier_id) == 32 and name.strip() == "Affaire Test"

    pdf = planted_pdf(tmp_path / "responsabilite.pdf", "1382", page=2, pages=3)
    docx = build_docx(tmp_path / "propriete.docx", [("544", article("544"))])
    added = cli(backend, "dossiers", "add", "--dossier", "Affaire Test", str(pdf), str(docx))
    assert added.returncode == 0, (added.stdout, added.stderr)
    assert "✓ responsabilite.pdf: 3 page(s)" in added.stderr, added.stderr
    assert "✓ propriete.docx: 1 page(s)" in added.stderr
    again = cli(backend, "dossiers", "add", "-d", dossier_id, str(pdf))
    assert again.returncode == 0 and "already in the dossier" in again.stderr

    listed = cli(backend, "dossiers", "list")
    assert listed.returncode == 0, listed.stderr
    assert dossier_id in listed.stdout and "Affaire" in listed.stdout  # (a narrow table)

    found = cli(
        backend, "dossiers", "search", "-d", dossier_id, "dommage causé à autrui", "-k", "3"
    )
    assert found.returncode == 0, found.stderr
    first = found.stdout.splitlines()[0]
    assert first.startswith("[1] responsabilite.pdf, p. 2"), found.stdout

    asked = cli(backend, "ask", "Qui doit réparer le dommage ?", "--dossier", "Affaire Test")
    assert asked.returncode == 0, asked.stderr
    assert asked.stdout.strip()  # the answer, streamed to stdout
    assert "responsabilite.pdf, p. 2" in asked.stderr, asked.stderr  # its sources

    broken = corrupt_pdf(tmp_path / "abime.pdf")
    failed = cli(backend, "dossiers", "add", "-d", dossier_id, str(broken))
    assert failed.returncode == 1 and "✗ abime.pdf" in failed.stderr, failed.stderr
    assert "Traceback" not in failed.stderr

    unknown = cli(backend, "dossiers", "search", "-d", "nope", "x")
    assert unknown.returncode == 1 and "nope" in unknown.stderr

    removed = cli(backend, "dossiers", "rm", dossier_id, "--yes")
    assert removed.returncode == 0, removed.stderr
    assert dossier_id not in cli(backend, "dossiers", "list").stdout


def test_no_backend_is_a_clear_message(tmp_path: Path) -> None:
    env = hermetic_env(LEGAL_ASSISTANT_CONFIG_FILE=str(tmp_path / "absent.toml"))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "legal_assistant.cli",
            "dossiers",
            "list",
            "--url",
            f"http://127.0.0.1:{closed_port()}",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1 and "No backend running" in result.stderr
    assert "Traceback" not in result.stderr
