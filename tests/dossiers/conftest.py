"""Dossier tests: the real app (uvicorn in the test's loop, real SurrealDB embedded, the
real embedding engine through the supervisor, the real extraction worker)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from app_harness import RunningApp, make_settings, serve_app
from legal_assistant.config import Settings


@pytest.fixture
def dossier_settings(tmp_path: Path, models_dir: Path) -> Settings:
    return make_settings(tmp_path, models_dir, mlx_max_tokens=48, max_upload_mb=2)


@pytest.fixture
async def app(dossier_settings: Settings) -> AsyncIterator[RunningApp]:
    async with serve_app(dossier_settings) as running:
        yield running
