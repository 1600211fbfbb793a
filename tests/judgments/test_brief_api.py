"""The fiche d'arrêt through the API: the real app (uvicorn, SurrealDB, the extraction
worker, the embedding engine that also backs the claim checker), real decisions of the
corpus uploaded as files. The chat model is a scripted OpenAI-compatible endpoint
(brief_helpers.scripted_model: see its docstring for why)."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from brief_helpers import (
    CORRECT,
    FABRICATED,
    QUESTION,
    WRONG_CITATION,
    ScriptedModel,
    script_for_c201162,
    scripted_model,
    section,
)
from docx import Document

from app_harness import RunningApp, iter_events, make_settings, serve_app
from dossiers.dossier_helpers import create_dossier, upload, wait_documents
from judgments.corpus_judgments import corpus_text
from legal_assistant.config import OpenAIEndpoint

pytestmark = pytest.mark.asyncio(loop_scope="module")

CASSATION = "ECLI_FR_CCASS_2024_C201162"
CONTRACT = (
    "CONTRAT DE BAIL D'HABITATION\n\nEntre les soussignés, M. Dupont, bailleur, et Mme Durand, "
    "locataire, il a été convenu ce qui suit.\n\nArticle 1 - Objet\n\nLe bailleur donne en "
    "location au locataire un appartement situé à Lyon.\n\nArticle 2 - Loyer\n\nLe loyer "
    "mensuel est fixé à 800 euros, payable le premier de chaque mois.\n"
)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def model() -> AsyncIterator[ScriptedModel]:
    async with scripted_model() as scripted:
        yield scripted


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def app(
    tmp_path_factory: pytest.TempPathFactory, models_dir: Path, model: ScriptedModel
) -> AsyncIterator[RunningApp]:
    endpoint = OpenAIEndpoint(name="scripted", base_url=model.base_url, models=["scripted"])
    root = tmp_path_factory.mktemp("briefs")
    settings = make_settings(root, models_dir, openai_endpoints=[endpoint], max_upload_mb=4)
    async with serve_app(settings) as running:
        yield running


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def docs(app: RunningApp, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The dossier's documents, ingested: a cassation (TXT) and a lease."""
    root = tmp_path_factory.mktemp("brief-files")
    files = {
        "cassation": (root / "arret-c201162.txt", corpus_text(CASSATION)),
        "contract": (root / "bail.txt", CONTRACT),
    }
    for path, text in files.values():
        path.write_text(text, encoding="utf-8")
    dossier = await create_dossier(app, "Arrêts")
    resp = await upload(app.client, dossier["id"], *(p for p, _ in files.values()))
    assert resp.status_code == 202, resp.text
    ids = {d["filename"]: d["id"] for d in resp.json()["documents"]}
    ready = await wait_documents(app, dossier["id"])
    assert all(d["status"] == "ready" for d in ready), ready
    out = {key: ids[path.name] for key, (path, _) in files.items()}
    out["dossier"] = dossier["id"]
    return out


def url(docs: dict[str, str], key: str, suffix: str = "brief") -> str:
    return f"/api/dossiers/{docs['dossier']}/documents/{docs[key]}/{suffix}"


async def make(app: RunningApp, path: str, **body: Any) -> list[tuple[str, dict[str, Any]]]:
    async with app.client.stream("POST", path, json=body) as resp:
        assert resp.status_code == 200, await resp.aread()
        return [item async for item in iter_events(resp)]


async def test_extractive_fiche_streams_progress_then_is_saved(
    app: RunningApp, docs: dict[str, str]
) -> None:
    resp = await app.client.get(url(docs, "cassation"))
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "not_found"
    events = await make(app, url(docs, "cassation"))
    names = [e for e, _ in events]
    assert names == ["progress"] * 7 + ["brief"], names
    assert [d["section"] for e, d in events[:7]] == [
        "presentation",
        "faits",
        "procedure",
        "moyens",
        "probleme",
        "solution",
        "portee",
    ]
    assert [(d["done"], d["total"]) for _, d in events[:7]] == [(i, 7) for i in range(1, 8)]
    brief = events[-1][1]
    assert await app.get(url(docs, "cassation")) == brief
    assert brief["document_id"] == docs["cassation"] and brief["model"] is None
    assert brief["language"] == "fr" and brief["judgment"]["is_judgment"] is True
    assert brief["judgment"]["numbers"] == ["22-18.227"]
    for sec in brief["sections"]:
        assert sec["source"] == "extracted"
        for st in sec["statements"]:
            assert st["verified"] is True, st
    assert section(brief, "faits")["statements"][0]["paragraphs"] == [1]
    assert section(brief, "probleme")["statements"] == []


async def test_exports_open_and_carry_the_citations(app: RunningApp, docs: dict[str, str]) -> None:
    await make(app, url(docs, "cassation"), language="en")
    md = await app.client.get(url(docs, "cassation", "brief.md"))
    assert md.status_code == 200 and md.headers["content-type"].startswith("text/markdown")
    assert "attachment" in md.headers["content-disposition"]
    assert md.text.startswith("# Case brief") and "(§ 1)" in md.text
    docx = await app.client.get(url(docs, "cassation", "brief.docx"))
    assert docx.status_code == 200
    doc = Document(io.BytesIO(docx.content))
    body = "\n".join(p.text for p in doc.paragraphs)
    assert "(§ 1)" in body and "Holding" in body
    assert any(row.cells[1].text == "22-18.227" for row in doc.tables[0].rows)
    for suffix in ("brief", "brief.md", "brief.docx"):
        assert (await app.client.get(url(docs, "contract", suffix))).status_code == 404


async def test_not_a_judgment_is_a_typed_422_and_unknown_documents_404(
    app: RunningApp, docs: dict[str, str]
) -> None:
    resp = await app.client.post(url(docs, "contract"), json={})
    assert resp.status_code == 422
    assert resp.json()["error"]["code"] == "not_a_judgment"
    ghost = f"/api/dossiers/{docs['dossier']}/documents/{'0' * 32}/brief"
    assert (await app.client.post(ghost, json={})).status_code == 404
    bad = await app.client.post(url(docs, "cassation"), json={"language": "de"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "bad_request"


async def test_a_document_still_ingesting_gets_409(
    app: RunningApp, docs: dict[str, str], tmp_path: Path
) -> None:
    path = tmp_path / "encore.txt"
    path.write_text(corpus_text("ECLI_FR_CCASS_2024_C201151"), encoding="utf-8")
    doc = (await upload(app.client, docs["dossier"], path)).json()["documents"][0]
    assert doc["status"] == "queued"
    resp = await app.client.post(
        f"/api/dossiers/{docs['dossier']}/documents/{doc['id']}/brief", json={}
    )
    assert resp.status_code == 409 and resp.json()["error"]["code"] == "judgment_not_ready"
    # Deleting it cancels its ingestion: the next tests do not share the CPU with it.
    gone = await app.client.delete(f"/api/dossiers/{docs['dossier']}/documents/{doc['id']}")
    assert gone.status_code == 200


async def test_generated_fiche_checks_every_model_sentence(
    app: RunningApp, docs: dict[str, str], model: ScriptedModel
) -> None:
    model.script = script_for_c201162()
    events = await make(app, url(docs, "cassation"), model_id="openai:scripted")
    assert [e for e, _ in events][-1] == "brief", events[-1]
    brief = events[-1][1]
    assert brief["model"] == "openai:scripted"

    faits = section(brief, "faits")
    assert faits["source"] == "generated"
    # The label the model put first ("Résumé des faits :") is not a statement.
    assert faits["statements"][0]["text"] == CORRECT.replace(" [§ 1]", "")
    assert faits["statements"][0]["paragraphs"] == [1]
    assert faits["statements"][0]["verified"] is True

    procedure = section(brief, "procedure")["statements"]
    wrong = procedure[0]
    assert wrong["paragraphs"] == [8] and wrong["verified"] is False
    assert wrong["text"].startswith(WRONG_CITATION[:40])
    # Nothing of the model's verified: the extractive statements are kept after it.
    assert any(st["verified"] for st in procedure[1:])

    fabricated = section(brief, "solution")["statements"][0]
    assert fabricated["text"].startswith(FABRICATED[:30])
    assert (fabricated["verified"], fabricated["reason"]) == (False, "quote_not_verbatim")

    portee = section(brief, "portee")
    assert portee["source"] == "generated" and portee["statements"]
    assert all(st["verified"] is False for st in portee["statements"])
    assert {st["reason"] for st in portee["statements"]} == {"degenerate"}

    probleme = section(brief, "probleme")["statements"]
    assert probleme[0]["paragraphs"] == [9] and probleme[0]["text"].endswith("?")
    assert probleme[0]["text"].startswith(QUESTION[:60])
    assert await app.get(url(docs, "cassation")) == brief


async def test_a_failure_midway_keeps_the_previous_fiche(
    app: RunningApp, docs: dict[str, str], model: ScriptedModel
) -> None:
    await make(app, url(docs, "cassation"))  # an extractive fiche, saved
    before = await app.get(url(docs, "cassation"))
    model.script = script_for_c201162(fail_at="moyens")
    events = await make(app, url(docs, "cassation"), model_id="openai:scripted")
    names = [e for e, _ in events]
    assert names == ["progress"] * 3 + ["error"], names
    error = events[-1][1]
    assert error["code"] == "upstream_error" and error["kept_previous"] is True
    assert error["message"] == "❌ Le serveur du modèle a renvoyé une erreur."
    assert await app.get(url(docs, "cassation")) == before


async def test_deleting_the_document_deletes_its_fiche(
    app: RunningApp, docs: dict[str, str]
) -> None:
    assert app.state.ingestion is not None
    path = app.state.ingestion.files.brief_path(docs["dossier"], docs["cassation"])
    assert path.is_file()  # saved by the tests above
    resp = await app.client.delete(f"/api/dossiers/{docs['dossier']}/documents/{docs['cassation']}")
    assert resp.status_code == 200
    assert not path.exists()
    assert (await app.client.get(url(docs, "cassation"))).status_code == 404
