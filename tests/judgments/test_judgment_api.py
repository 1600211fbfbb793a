"""Ingestion through the real app (uvicorn, embedded SurrealDB, the real extraction
worker and embedding engine) reads and stores a decision's structure, labels its
passages by zone and paragraph, and serves it after a restart; the route's 404/409."""

from __future__ import annotations

from pathlib import Path

from app_harness import make_settings, serve_app
from documents.builders import build_txt, corpus_articles
from dossiers.dossier_helpers import create_dossier, upload, wait_documents
from judgments.judgment_builders import decision, decision_blocks
from legal_assistant.errors import LegalAssistantError
from legal_assistant.store import documents as document_store
from legal_assistant.store import judgments as judgment_store

DECISION = "ECLI_FR_CCASS_2024_C201151"  # dev half


async def test_ingested_decision_structure_labels_and_restart(
    tmp_path: Path, models_dir: Path
) -> None:
    settings = make_settings(tmp_path, models_dir)
    meta = decision(DECISION).meta
    arret = build_txt(tmp_path / "arret.txt", decision_blocks(decision(DECISION).text))
    code = build_txt(
        tmp_path / "code.txt", [f"Article {a.number}\n{a.text}" for a in corpus_articles(6)]
    )
    async with serve_app(settings) as app:
        dossier_id = (await create_dossier(app))["id"]
        uploaded = (await upload(app.client, dossier_id, arret, code)).json()["documents"]
        arret_id, code_id = uploaded[0]["id"], uploaded[1]["id"]
        docs = await wait_documents(app, dossier_id)
        assert [d["status"] for d in docs] == ["ready", "ready"], docs

        base = f"/api/dossiers/{dossier_id}/documents"
        structure = await app.get(f"{base}/{arret_id}/judgment")
        assert structure["is_judgment"] is True
        assert (structure["date"], structure["numbers"], structure["solution"]) == (
            meta["date"],
            meta["numbers"],
            meta["solution"],
        )
        assert structure["formation"] == meta["chamber"]
        assert structure["attacked"] == {"court": "Cour d'appel d'Amiens", "date": "2022-04-25"}
        assert [p["n"] for p in structure["paragraphs"]] == list(range(1, 13))
        assert await app.get(f"{base}/{code_id}/judgment") == {"is_judgment": False}

        # The viewer's passages carry the zone and paragraph; the statute's are unchanged.
        page = await app.get(f"{base}/{arret_id}/pages/1")
        labels = [p["label"] for p in page["passages"]]
        assert labels[0] == "En-tête"
        assert "Faits et procédure, § 1" in labels
        assert "Motivation, § 3" in labels  # the art. 1014 dismissal, under a ground
        assert [f"Réponse de la Cour, § {n}" for n in range(5, 13)] == [
            label for label in labels if label.startswith("Réponse de la Cour")
        ]
        assert labels[-1] == "PAR CES MOTIFS"
        statute = await app.get(f"{base}/{code_id}/pages/1")
        assert all(p["label"].startswith("Article ") for p in statute["passages"]), statute
        # Search results show where in the decision a hit is.
        found = await app.get(
            f"/api/dossiers/{dossier_id}/search",
            params={"q": "frais de déplacement du masseur-kinésithérapeute à domicile"},
        )
        hit = next(r for r in found["results"] if r["document_id"] == arret_id)
        assert hit["label"] in labels, hit

    async with serve_app(settings) as app:  # the structure survives a restart
        assert await app.get(f"/api/dossiers/{dossier_id}/documents/{arret_id}/judgment") == (
            structure
        )
        # Deleted with its document, then with its dossier.
        resp = await app.client.delete(f"/api/dossiers/{dossier_id}/documents/{arret_id}")
        assert resp.status_code == 200, resp.text
        assert await judgment_store.get_judgment(app.state.db, dossier_id, arret_id) is None
        assert await judgment_store.get_judgment(app.state.db, dossier_id, code_id) is not None
        resp = await app.client.delete(f"/api/dossiers/{dossier_id}")
        assert resp.status_code == 200, resp.text
        left = await app.state.db.query("SELECT count() FROM judgment GROUP ALL")
        assert not left[-1] or left[-1][0]["count"] == 0, left


async def test_route_409_while_not_ready_and_404(tmp_path: Path, models_dir: Path) -> None:
    async with serve_app(make_settings(tmp_path, models_dir)) as app:
        dossier_id = (await create_dossier(app))["id"]
        # A document row no worker will take (not queued in the service): stays queued.
        queued = await document_store.create_document(
            app.state.db,
            document_id="0" * 31 + "1",
            dossier_id=dossier_id,
            filename="arret.txt",
            format="txt",
            size_bytes=10,
            sha256="0" * 64,
        )
        resp = await app.client.get(f"/api/dossiers/{dossier_id}/documents/{queued.id}/judgment")
        assert resp.status_code == 409, resp.text
        assert resp.json()["error"]["code"] == "judgment_not_ready"

        await document_store.mark_failed(
            app.state.db, queued.id, LegalAssistantError("extraction_failed")
        )
        resp = await app.client.get(f"/api/dossiers/{dossier_id}/documents/{queued.id}/judgment")
        assert resp.status_code == 409, resp.text

        for path in (
            f"/api/dossiers/{dossier_id}/documents/{'a' * 32}/judgment",
            f"/api/dossiers/{'b' * 32}/documents/{queued.id}/judgment",
            f"/api/dossiers/{dossier_id}/documents/..%2Fetc/judgment",
        ):
            resp = await app.client.get(path)
            assert resp.status_code == 404, (path, resp.text)
