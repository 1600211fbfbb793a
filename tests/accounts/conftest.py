"""Accounts tests: the real app (uvicorn in the test's loop, real SurrealDB embedded) in
`AUTH_MODE=accounts`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from accounts_helpers import accounts_settings

from app_harness import RunningApp, serve_app


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[RunningApp]:
    async with serve_app(accounts_settings(tmp_path)) as running:
        yield running
