"""Ingestion survives the backend: stopped mid-embedding, the next start resumes the job
(no duplicate vectors); a file gone meanwhile fails with `file_missing`; a dossier whose
vectors came from another embedding model is re-indexed at start-up. Real app stopped and
started again on the same data directory (real SurrealDB, real engines)."""

from __future__ import annotations

import logging
import signal
import time
from pathlib import Path

import httpx
import pytest
from dossier_builders import articles, build_pdf, planted_pdf
from dossier_helpers import create_dossier, follow, upload, wait_documents

from app_harness import hermetic_env, make_settings, run_backend, serve_app
from legal_assistant.config import Settings
from legal_assistant.store import Database
from legal_assistant.store.documents import get_document
from legal_assistant.store.dossiers import set_embedding_model


async def _open_db(settings: Settings) -> Database:
    db = Database()
    await db.connect(
        settings.resolved_surrealdb_url, settings.surrealdb_namespace, settings.surrealdb_database
    )
    return db


def _long_pdf(path: Path, pages: int) -> Path:
    items = articles("livre-iii", limit=pages * 3)
    return build_pdf(path, [items[i * 3 : i * 3 + 3] for i in range(pages)])


async def test_stopped_mid_embedding_resumes_at_next_start(
    tmp_path: Path, models_dir: Path
) -> None:
    # Small batches: progress events come early, long before the document is done.
    settings = make_settings(tmp_path, models_dir, ingest_embed_batch=4)
    pdf = _long_pdf(tmp_path / "long.pdf", pages=40)
    async with serve_app(settings) as app:
        dossier = await create_dossier(app)
        async with follow(app, dossier["id"]) as log:
            resp = await upload(app.client, dossier["id"], pdf)
            doc_id = resp.json()["documents"][0]["id"]
            await log.wait_for(
                lambda: any(d["status"] == "embedding" and d["done"] > 0 for d in log.of(doc_id))
            )
    # The backend is stopped: the job was interrupted, its state kept.
    db = await _open_db(settings)
    try:
        stopped = await get_document(db, dossier["id"], doc_id)
        assert stopped is not None and stopped.status == "embedding", stopped
        assert 0 < stopped.done < stopped.total
    finally:
        await db.close()

    async with serve_app(settings) as app:
        docs = await wait_documents(app, dossier["id"])
        assert [d["status"] for d in docs] == ["ready"], docs
        library = app.state.ingestion.library if app.state.ingestion else None
        assert library is not None
        assert await library.count(dossier["id"]) == docs[0]["passages"] > 0  # no duplicates
        found = await app.get(
            f"/api/dossiers/{dossier['id']}/search", params={"q": "contrat obligation"}
        )
        assert found["results"] and found["results"][0]["document_id"] == doc_id


async def test_missing_file_fails_and_changed_model_reindexes(
    tmp_path: Path, models_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(tmp_path, models_dir)
    async with serve_app(settings) as app:
        dossier = await create_dossier(app)
        pdf = planted_pdf(tmp_path / "a.pdf", "1382", page=2, pages=2)
        doc_id = (await upload(app.client, dossier["id"], pdf)).json()["documents"][0]["id"]
        await wait_documents(app, dossier["id"])
        other = await create_dossier(app, "Perdu")
        lost_id = (await upload(app.client, other["id"], pdf)).json()["documents"][0]["id"]
        await wait_documents(app, other["id"])

    db = await _open_db(settings)
    try:
        # As if indexed by another model (and dimension), and a job left unfinished whose
        # file has disappeared.
        await set_embedding_model(db, dossier["id"], "embed:another-model", 768)
        await db.query(
            "UPDATE type::thing('document', $id) SET status = 'embedding'", {"id": lost_id}
        )
    finally:
        await db.close()
    (settings.data_dir / "dossiers" / other["id"] / "files" / lost_id).unlink()

    caplog.set_level(logging.INFO, logger="legal_assistant")
    async with serve_app(settings) as app:
        lost = await app.get(f"/api/dossiers/{other['id']}/documents/{lost_id}")
        assert lost["status"] == "failed" and lost["error"]["code"] == "file_missing"
        docs = await wait_documents(app, dossier["id"])
        assert docs[0]["status"] == "ready"
        assert docs[0]["embedding_model"] == "embed:multilingual-e5-small"
        again = await app.get(f"/api/dossiers/{dossier['id']}")
        assert again["embedding_model"] == "embed:multilingual-e5-small"
        assert again["dimension"] == 384
        found = await app.get(
            f"/api/dossiers/{dossier['id']}/search", params={"q": "dommage causé à autrui"}
        )
        assert found["results"][0]["document_id"] == doc_id and found["results"][0]["page"] == 2
    assert any("re-indexing" in r.getMessage() for r in caplog.records)


def test_backend_killed_mid_embedding_resumes(tmp_path: Path, models_dir: Path) -> None:
    """The real `serve` process SIGKILLed while a document is embedding (no shutdown code
    runs at all): the next backend on the same data directory finishes the job."""
    env = hermetic_env(
        LEGAL_ASSISTANT_DATA_DIR=str(tmp_path / "data"),
        LEGAL_ASSISTANT_MODELS_DIR=str(models_dir),
        LEGAL_ASSISTANT_CONFIG_FILE=str(tmp_path / "absent.toml"),
        LEGAL_ASSISTANT_INGEST_EMBED_BATCH="4",
        LEGAL_ASSISTANT_WARM_DEFAULT="false",
        HF_HOME=str(tmp_path / "hf"),
    )
    pdf = _long_pdf(tmp_path / "long.pdf", pages=40)
    with run_backend(env, tmp_path / "first.err") as first:
        api = httpx.Client(base_url=first.url, timeout=60, trust_env=False)
        dossier = api.post("/api/dossiers", json={"name": "Tué"}).json()
        base = f"/api/dossiers/{dossier['id']}"
        files = {"file": ("long.pdf", pdf.read_bytes(), "application/pdf")}
        doc_id = api.post(f"{base}/documents", files=files).json()["documents"][0]["id"]
        deadline = time.monotonic() + 240
        while True:
            doc = api.get(f"{base}/documents/{doc_id}").json()
            if doc["status"] == "embedding" and doc["done"] > 0:
                break
            assert doc["status"] not in ("ready", "failed"), doc
            assert time.monotonic() < deadline, doc
            time.sleep(0.1)
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(30)
        api.close()
    with run_backend(env, tmp_path / "second.err") as second:
        api = httpx.Client(base_url=second.url, timeout=60, trust_env=False)
        deadline = time.monotonic() + 240
        while (doc := api.get(f"{base}/documents/{doc_id}").json())["status"] != "ready":
            assert doc["status"] != "failed", doc
            assert time.monotonic() < deadline, doc
            time.sleep(0.2)
        assert doc["passages"] > 0 and doc["done"] == doc["total"] == doc["passages"]
        found = api.get(f"{base}/search", params={"q": "contrat obligation", "k": 50}).json()
        assert found["results"] and {r["document_id"] for r in found["results"]} == {doc_id}
        ids = [r["passage_id"] for r in found["results"]]
        assert len(ids) == len(set(ids))  # no passage indexed twice
        api.close()
    assert "Resuming the ingestion of long.pdf" in (tmp_path / "second.err").read_text()
