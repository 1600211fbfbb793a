"""`legal-assistant ask --dossier` prints what was checked about the answer, as the UI
shows it (issue 20): the claims' summary and the statements not backed, the notice of a
cut loop, the extractive answer. Against a real `serve` backend (SurrealDB, extraction
worker, embedding engine, claim checker); a scripted OpenAI-compatible endpoint
(tests/fakes/scripted_endpoint.py) stands in for a model whose answer is known."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from dossier_builders import article, planted_pdf

from app_harness import hermetic_env, load_fake, run_backend

scripted = load_fake("scripted_endpoint")
SCRIPTS = {
    "checked": scripted.Script(
        f"{article('1382').rstrip('.')} [1]. Le locataire doit verser trois mois de loyer "
        "d'avance au bailleur [1]. Le délai de prescription de cette action est de dix ans."
    ),
    "looping": scripted.Script("Le dommage doit être réparé par son auteur.", loop=True),
}
QUESTION = "Que doit faire celui par la faute duquel un dommage est causé à autrui ?"


def test_ask_in_a_dossier_prints_the_checks(tmp_path: Path, models_dir: Path) -> None:
    with scripted.scripted_endpoint_in_thread(SCRIPTS) as endpoint:
        endpoints = [{"name": "s", "base_url": endpoint.url, "models": list(SCRIPTS)}]
        env = hermetic_env(
            LEGAL_ASSISTANT_DATA_DIR=str(tmp_path / "data"),
            LEGAL_ASSISTANT_MODELS_DIR=str(models_dir),
            LEGAL_ASSISTANT_CONFIG_FILE=str(tmp_path / "absent.toml"),
            LEGAL_ASSISTANT_OPENAI_ENDPOINTS=json.dumps(endpoints),
            HF_HOME=str(tmp_path / "hf"),
        )
        with run_backend(env, tmp_path / "backend.err") as backend:

            def cli(*args: str) -> subprocess.CompletedProcess[str]:
                return subprocess.run(
                    [sys.executable, "-m", "legal_assistant.cli", *args, "--url", backend.url],
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=300,
                )

            assert cli("dossiers", "create", "Affaire").returncode == 0
            pdf = planted_pdf(tmp_path / "responsabilite.pdf", "1382", page=2, pages=3)
            added = cli("dossiers", "add", "--dossier", "Affaire", str(pdf))
            assert added.returncode == 0, added.stderr
            checked = cli("ask", QUESTION, "--dossier", "Affaire", "-m", "openai:checked")
            looping = cli("ask", QUESTION, "--dossier", "Affaire", "-m", "openai:looping")

    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.startswith("Tout fait quelconque de l'homme")
    err = checked.stderr
    assert "affirmation sourcée sur 3" in err or "affirmations sourcées sur 3" in err, err
    assert "✗ [1] ne soutient pas cette phrase : « Le locataire doit verser" in err, err
    assert "? sans source : « Le délai de prescription" in err, err

    assert looping.returncode == 0, looping.stderr
    err = looping.stderr
    assert "⚠ Réponse interrompue : le modèle se répétait." in err, err
    assert "Le modèle n'a pas produit de réponse sourcée" in err, err
    assert "**responsabilite.pdf, p. 2" in err, err
