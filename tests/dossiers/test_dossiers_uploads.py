"""Uploads that must be refused or fail cleanly: 415 / 400 / 413 (refused while the body
streams, nothing stored), duplicates (sha256), hostile file names, and documents that
cannot be read (corrupt, encrypted, mismatched content) → `failed` with a reason in
French and English, the dossier's other documents untouched. Real app, real extraction
worker, real embedding engine."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from dossier_builders import article, build_docx, build_pdf, corrupt_pdf, planted_pdf
from dossier_helpers import create_dossier, upload, wait_documents

from app_harness import RunningApp

MB = 2**20


def _files_dir(app: RunningApp, dossier_id: str) -> Path:
    return app.settings.data_dir / "dossiers" / dossier_id / "files"


def _stored(app: RunningApp, dossier_id: str) -> list[str]:
    folder = _files_dir(app, dossier_id)
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


async def test_refusals_415_400_and_bad_bodies(app: RunningApp, tmp_path: Path) -> None:
    dossier = await create_dossier(app)
    base = f"/api/dossiers/{dossier['id']}/documents"
    exe = tmp_path / "setup.exe"
    exe.write_bytes(b"MZ" + b"\0" * 100)
    resp = await upload(app.client, dossier["id"], exe)
    assert resp.status_code == 415, resp.text
    assert resp.json()["error"]["code"] == "unsupported_type"
    assert "setup.exe" in resp.json()["error"]["message"]

    empty = tmp_path / "vide.pdf"
    empty.write_bytes(b"")
    resp = await upload(app.client, dossier["id"], empty)
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "empty_file"

    # All or nothing: a good file beside a refused one is not kept either.
    good = build_docx(tmp_path / "ok.docx", [("544", article("544"))])
    resp = await upload(app.client, dossier["id"], good, exe)
    assert resp.status_code == 415
    resp = await app.client.post(
        base, content=b"not multipart", headers={"content-type": "text/plain"}
    )
    assert resp.status_code == 400
    resp = await app.client.post(base, files={"other": ("a.txt", b"x")})
    assert resp.status_code == 400  # no `file` field
    boundary = "b" + uuid.uuid4().hex
    truncated = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\nabc'
    )
    resp = await app.client.post(
        base,
        content=truncated.encode(),
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
    )
    assert resp.status_code == 400, resp.text
    bad_dossier = "f" * 32
    resp = await upload(app.client, bad_dossier, good)
    assert resp.status_code == 404
    assert _stored(app, dossier["id"]) == []
    assert (await app.get(f"/api/dossiers/{dossier['id']}/documents"))["documents"] == []


async def test_413_while_streaming_nothing_stored(app: RunningApp) -> None:
    """MAX_UPLOAD_MB=2 here. A raw client announces a 64 MB body, sends 3 MB of it and
    then waits: the 413 comes while the body is still incomplete (a server that buffered
    the upload first would wait for the other 61 MB forever). Nothing is stored."""
    dossier = await create_dossier(app)
    boundary = "b" + uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
        f'filename="gros.txt"\r\nContent-Type: text/plain\r\n\r\n'
    ).encode()
    host, port = app.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(
            (
                f"POST /api/dossiers/{dossier['id']}/documents HTTP/1.1\r\n"
                f"Host: 127.0.0.1:{port}\r\n"
                f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
                f"Content-Length: {64 * MB}\r\n\r\n"
            ).encode()
            + head
        )
        for _ in range(48):  # 3 MB, in 64 KB chunks
            writer.write(b"a" * (64 * 1024))
            await writer.drain()
        async with asyncio.timeout(60):
            status_line = await reader.readline()
            headers = await reader.readuntil(b"\r\n\r\n")
        assert status_line.split()[1] == b"413", status_line
        length = int(
            next(
                line.split(b":")[1]
                for line in headers.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            )
        )
        error = json.loads(await reader.readexactly(length))["error"]
        assert error["code"] == "file_too_large", error
    finally:
        writer.close()
    assert _stored(app, dossier["id"]) == []  # no partial .incoming-* file either
    assert (await app.get(f"/api/dossiers/{dossier['id']}/documents"))["documents"] == []

    # An ordinary client sending a whole oversized body gets the 413 too (not a reset).
    async def body() -> AsyncIterator[bytes]:
        yield head
        for _ in range(8 * 16):  # 8 MB
            yield b"a" * (64 * 1024)
        yield f"\r\n--{boundary}--\r\n".encode()

    resp = await app.client.post(
        f"/api/dossiers/{dossier['id']}/documents",
        content=body(),
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
    )
    assert resp.status_code == 413, resp.text
    assert _stored(app, dossier["id"]) == []
    # The backend is fine afterwards, and a file under the limit is accepted.
    resp = await app.client.post(
        f"/api/dossiers/{dossier['id']}/documents",
        files={"file": ("petit.txt", b"Article 1\n\nLe contrat est la loi des parties.")},
    )
    assert resp.status_code == 202


async def test_duplicate_and_hostile_names(app: RunningApp, tmp_path: Path) -> None:
    dossier = await create_dossier(app)
    pdf = planted_pdf(tmp_path / "jugement.pdf", "1382", page=1, pages=1)
    first = (await upload(app.client, dossier["id"], pdf)).json()["documents"][0]
    again = await upload(app.client, dossier["id"], pdf, names=["copie du jugement.pdf"])
    assert again.status_code == 202
    dup = again.json()["documents"][0]
    assert dup["duplicate"] is True and dup["id"] == first["id"]
    assert dup["filename"] == "jugement.pdf"  # the existing document answers
    # The same bytes twice in one request: indexed once.
    other = build_docx(tmp_path / "a.docx", [("545", article("545"))])
    both = (await upload(app.client, dossier["id"], other, other)).json()["documents"]
    assert both[0]["duplicate"] is False and both[1] == {**both[0], "duplicate": True}

    hostile = tmp_path / "x.txt"
    hostile.write_text("Article 2\n\nLa loi ne dispose que pour l'avenir.", encoding="utf-8")
    names = ["../../../etc/passwd.txt", "..\\..\\boot.ini.md", "\x00\x07note\u202e.txt"]
    for name in names:
        hostile.write_text(f"Article 2 {name!r}\n\nLa loi ne dispose que pour l'avenir.")
        resp = await upload(app.client, dossier["id"], hostile, names=[name])
        assert resp.status_code == 202, (name, resp.text)
    docs = await wait_documents(app, dossier["id"])
    shown = sorted(d["filename"] for d in docs)
    assert "passwd.txt" in shown and "boot.ini.md" in shown
    assert all("/" not in n and "\\" not in n and "\x00" not in n for n in shown)
    assert len(docs) == 5
    assert sorted(_stored(app, dossier["id"])) == sorted(d["id"] for d in docs)
    assert not (app.settings.data_dir.parent / "etc").exists()


async def test_unreadable_documents_fail_with_a_reason(app: RunningApp, tmp_path: Path) -> None:
    dossier = await create_dossier(app)
    good = planted_pdf(tmp_path / "bon.pdf", "1382", page=2, pages=2)
    encrypted = build_pdf(tmp_path / "secret.pdf", [[("544", article("544"))]], password="x")
    broken = corrupt_pdf(tmp_path / "abime.pdf")
    png = tmp_path / "photo.pdf"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 2048)
    resp = await upload(app.client, dossier["id"], good, encrypted, broken, png)
    assert resp.status_code == 202
    ids = [d["id"] for d in resp.json()["documents"]]
    docs = {d["id"]: d for d in await wait_documents(app, dossier["id"])}
    assert docs[ids[0]]["status"] == "ready"
    expected = {ids[1]: "encrypted_pdf", ids[2]: "corrupt_file", ids[3]: "content_mismatch"}
    for doc_id, code in expected.items():
        doc = docs[doc_id]
        assert doc["status"] == "failed", doc
        assert doc["error"]["code"] == code, doc["error"]
        assert doc["error"]["message"] and doc["error"]["message_en"], doc["error"]
    english = (
        await app.get(f"/api/dossiers/{dossier['id']}/documents/{ids[1]}", params={"lang": "en"})
    )["error"]["message"]
    assert "password" in english.lower()
    # The good document is searchable, the dossier intact.
    found = await app.get(
        f"/api/dossiers/{dossier['id']}/search", params={"q": "dommage causé à autrui"}
    )
    assert found["results"] and found["results"][0]["document_id"] == ids[0]
    assert found["results"][0]["page"] == 2
