"""Helpers of the dossier tests: create dossiers, upload files, follow ingestion events."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from app_harness import RunningApp, iter_events, poll

INGEST_TIMEOUT = 240.0  # a cold embedding engine and a busy 2-core machine


async def create_dossier(app: RunningApp, name: str = "Affaire Martin") -> dict[str, Any]:
    resp = await app.client.post("/api/dossiers", json={"name": name})
    assert resp.status_code == 201, resp.text
    data: dict[str, Any] = resp.json()
    return data


async def upload(
    client: httpx.AsyncClient, dossier_id: str, *paths: Path, names: list[str] | None = None
) -> httpx.Response:
    files = [
        ("file", ((names[i] if names else p.name), p.read_bytes(), "application/octet-stream"))
        for i, p in enumerate(paths)
    ]
    return await client.post(f"/api/dossiers/{dossier_id}/documents", files=files)


class EventLog:
    """Follows GET /api/dossiers/{id}/events in a task; `wait_for` a condition on the
    events seen so far (no sleeps: it wakes on each event)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self._changed = asyncio.Event()
        self.connected = asyncio.Event()
        self.ended = False

    def of(self, document_id: str) -> list[dict[str, Any]]:
        return [d for e, d in self.events if e == "document" and d["document_id"] == document_id]

    def statuses(self, document_id: str) -> list[str]:
        out: list[str] = []
        for d in self.of(document_id):
            if not out or out[-1] != d["status"]:
                out.append(d["status"])
        return out

    async def wait_for(self, check: Any, timeout: float = INGEST_TIMEOUT, what: str = "") -> None:
        async with asyncio.timeout(timeout):
            while not check():
                assert not self.ended, f"the event stream ended: {self.events}"
                self._changed.clear()
                await self._changed.wait()

    def finished(self, *document_ids: str) -> bool:
        return all(
            any(d["status"] in ("ready", "failed") for d in self.of(i)) for i in document_ids
        )

    async def run(self, client: httpx.AsyncClient, dossier_id: str) -> None:
        try:
            await self._read(client, dossier_id)
        finally:
            self.ended = True
            self._changed.set()

    async def _read(self, client: httpx.AsyncClient, dossier_id: str) -> None:
        async with client.stream(
            "GET", f"/api/dossiers/{dossier_id}/events", timeout=httpx.Timeout(None, connect=10)
        ) as resp:
            assert resp.status_code == 200
            self.connected.set()
            async for item in iter_events(resp):
                self.events.append(item)
                self._changed.set()


@contextlib.asynccontextmanager
async def follow(app: RunningApp, dossier_id: str) -> AsyncIterator[EventLog]:
    log = EventLog()
    task = asyncio.create_task(log.run(app.client, dossier_id))
    try:
        await asyncio.wait_for(log.connected.wait(), 30)
        yield log
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
            await task


async def wait_documents(
    app: RunningApp, dossier_id: str, *, timeout: float = INGEST_TIMEOUT
) -> list[dict[str, Any]]:
    """Poll the documents until none is queued/extracting/embedding (deadline)."""

    async def settled() -> list[dict[str, Any]] | None:
        docs: list[dict[str, Any]] = (await app.get(f"/api/dossiers/{dossier_id}/documents"))[
            "documents"
        ]
        return docs if all(d["status"] in ("ready", "failed") for d in docs) else None

    return await poll(settled, timeout=timeout, interval=0.1, max_interval=1.0, what="ingestion")
