"""The audit log and what members see of the shared engines (issue #21): reads,
searches, downloads, deletions and denials are recorded, `GET /api/audit` filters by
user and time for admins only, the table refuses any UPDATE or DELETE, and neither the
engine events stream nor `/api/engines` shows a member another user's dossier or
document names (`/metrics` is for admins).

Documents are ingested for real (extraction worker, the real embedding engine started by
the supervisor); chat engines are the fake engine."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from accounts_helpers import accounts_settings, add_user, signed_in

from app_harness import iter_events, serve_app
from legal_assistant.store import DatabaseError
from legal_assistant.store.records import timestamp

SECRET = "9931"


async def wait_ready(client: httpx.AsyncClient, dossier_id: str, document_id: str) -> None:
    """Follow the dossier's progress events until the document is ready."""
    async with client.stream("GET", f"/api/dossiers/{dossier_id}/events") as resp:
        async for event, data in iter_events(resp):
            if event == "document" and data.get("id", data.get("document_id")) == document_id:
                assert data["status"] != "failed", data
                if data["status"] == "ready":
                    return


async def test_audit_log_records_and_filters_and_is_append_only(tmp_path: Path) -> None:
    async with serve_app(accounts_settings(tmp_path)) as app:
        await add_user(app, "root", role="admin")
        await add_user(app, "alice")
        await add_user(app, "bob")
        async with (
            signed_in(app, "root") as root,
            signed_in(app, "alice") as alice,
            signed_in(app, "bob") as bob,
        ):
            start = timestamp()
            dossier = (await alice.post("/api/dossiers", json={"name": "Bail"})).json()
            base = f"/api/dossiers/{dossier['id']}"
            upload = await alice.post(
                f"{base}/documents", files={"file": ("bail.txt", b"Le preneur paie le loyer.")}
            )
            doc = upload.json()["documents"][0]
            await asyncio.wait_for(wait_ready(alice, dossier["id"], doc["id"]), 300)
            assert (await alice.get(f"{base}/search?q=loyer")).status_code == 200
            assert (await alice.get(f"{base}/documents/{doc['id']}/file")).status_code == 200
            assert (await bob.get(base)).status_code == 404
            assert (await alice.delete(f"{base}/documents/{doc['id']}")).status_code == 200
            assert (await bob.get("/api/audit")).status_code == 403

            entries = (await root.get("/api/audit", params={"user": "alice"})).json()["entries"]
            actions = {
                (e["action"], e["outcome"]) for e in entries if e["resource"].startswith(base)
            }
            assert {
                ("read", "ok"),
                ("search", "ok"),
                ("download", "ok"),
                ("delete", "ok"),
            } <= actions, actions
            assert ("login", "ok") in {(e["action"], e["outcome"]) for e in entries}
            assert all(e["user"] == "alice" for e in entries)
            assert entries == sorted(entries, key=lambda e: e["at"], reverse=True)
            bobs = (await root.get("/api/audit", params={"user": "bob"})).json()["entries"]
            denied = {(e["resource"], e["action"]) for e in bobs if e["outcome"] == "denied"}
            assert {(base, "read"), ("/api/audit", "read")} <= denied, denied
            later = (await root.get("/api/audit", params={"since": timestamp().isoformat()})).json()
            assert later["entries"] == [] or all(
                e["at"] >= start.isoformat()[:19] for e in later["entries"]
            )
            everything = (await root.get("/api/audit", params={"since": start.isoformat()})).json()
            assert {"alice", "bob"} <= {e["user"] for e in everything["entries"]}
        # Append-only, even for a statement straight on the database.
        db = app.state.db
        for statement in ("UPDATE audit SET outcome = 'ok'", "DELETE audit"):
            with pytest.raises(DatabaseError, match="append-only"):
                await db.query(statement)
        assert (await db.query("SELECT count() AS n FROM audit GROUP ALL"))[-1][0]["n"] >= 8


async def test_engine_events_and_lists_show_members_no_names(tmp_path: Path) -> None:
    async with serve_app(accounts_settings(tmp_path)) as app:
        await add_user(app, "root", role="admin")
        await add_user(app, "alice")
        await add_user(app, "bob")
        async with signed_in(app, "alice") as alice, signed_in(app, "bob") as bob:
            seen: list[str] = []
            subscribed = asyncio.Event()

            async def watch() -> None:
                async with bob.stream("GET", "/api/engines/events") as resp:
                    assert resp.status_code == 200
                    async for raw in resp.aiter_lines():
                        seen.append(raw)
                        if raw.startswith("event: snapshot"):
                            subscribed.set()
                        if '"new": "ready"' in raw and '"embed:' in raw:
                            return  # the embedding engine that indexed Alice's file

            watcher = asyncio.create_task(watch())
            await asyncio.wait_for(subscribed.wait(), 30)
            name = f"Affaire Zeta-{SECRET}"
            dossier = (await alice.post("/api/dossiers", json={"name": name})).json()
            upload = await alice.post(
                f"/api/dossiers/{dossier['id']}/documents",
                files={"file": (f"pieces-{SECRET}.txt", f"Pièce {SECRET}.".encode())},
            )
            doc = upload.json()["documents"][0]
            await asyncio.wait_for(wait_ready(alice, dossier["id"], doc["id"]), 300)
            await asyncio.wait_for(watcher, 60)
            stream = "\n".join(seen)
            assert '"embed:' in stream  # the stream did carry the engine's transitions
            assert SECRET not in stream and "Zeta" not in stream
            engines: dict[str, Any] = (await bob.get("/api/engines")).json()
            assert engines["engines"] and SECRET not in str(engines)
            assert (await bob.get("/metrics")).status_code == 403
        async with signed_in(app, "root") as root:
            metrics = await root.get("/metrics")
            assert metrics.status_code == 200 and SECRET not in metrics.text
