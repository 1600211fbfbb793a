"""What the app holds for its lifetime (built in the lifespan, read by the routes)."""

from __future__ import annotations

from dataclasses import dataclass

from legal_assistant.chat.service import ChatService
from legal_assistant.config import Settings
from legal_assistant.runtime.supervisor import Supervisor
from legal_assistant.store import Database, DataDirLock


@dataclass
class AppState:
    settings: Settings
    supervisor: Supervisor
    db: Database
    chat: ChatService
    lock: DataDirLock | None
