"""A judgment's fiche d'arrêt, saved with its document.

One file per document (`<dossier>/briefs/<document_id>.json`, beside the extracted
pages), removed with the document or its dossier. A new fiche replaces the old one by an
atomic rename only once it is complete: a generation that fails midway — or a backend
killed during the write — leaves the previous fiche as it was.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from legal_assistant.documents.files import DossierFiles
from legal_assistant.errors import LegalAssistantError
from legal_assistant.judgments.fiche import Brief


class BriefStore:
    def __init__(self, files: DossierFiles) -> None:
        self._files = files

    def _path(self, dossier_id: str, document_id: str) -> Path:
        return self._files.brief_path(dossier_id, document_id)

    async def get(self, dossier_id: str, document_id: str) -> Brief | None:
        path = self._path(dossier_id, document_id)
        try:
            raw = await asyncio.to_thread(path.read_text, encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            return Brief.from_dict(json.loads(raw))
        except (ValueError, KeyError, TypeError) as e:
            raise LegalAssistantError("storage_error", f"unreadable fiche {path.name}: {e}") from e

    async def save(self, dossier_id: str, brief: Brief) -> None:
        path = self._path(dossier_id, brief.document_id)
        data = json.dumps(brief.to_dict(), ensure_ascii=False)

        def write() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)

        try:
            await asyncio.to_thread(write)
        except OSError as e:
            raise LegalAssistantError("storage_error", f"cannot save the fiche: {e}") from e

    async def delete(self, dossier_id: str, document_id: str) -> None:
        await asyncio.to_thread(self._path(dossier_id, document_id).unlink, missing_ok=True)
