"""What the app holds for its lifetime (built in the lifespan, read by the routes)."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from legal_assistant.accounts.service import Accounts
from legal_assistant.api.metrics import Metrics
from legal_assistant.chat.service import ChatService
from legal_assistant.config import Settings
from legal_assistant.documents.ingest import IngestionService
from legal_assistant.runtime.admission import Admission
from legal_assistant.runtime.supervisor import Supervisor
from legal_assistant.store import Database, DataDirLock


@dataclass
class AppState:
    settings: Settings
    supervisor: Supervisor
    db: Database
    chat: ChatService
    lock: DataDirLock | None
    admission: Admission
    metrics: Metrics
    gateway_http: httpx.AsyncClient
    # Dossiers: uploads, ingestion jobs, the retrieval indexes (documents/ingest.py).
    ingestion: IngestionService | None = None
    # Users, sessions, keys, the audit log (accounts/service.py); `enabled` in accounts mode.
    accounts: Accounts | None = None
