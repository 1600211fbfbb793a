"""Gateway test kit: the real app (tests/app_harness.py's `serve_app`) reached over real
HTTP by httpx and by the official `openai` client; settings for the real engine and for
the fake one; the stand-ins (fake engine module, fake Ollama) loaded from their files.

Test modules take everything from fixtures (never `from conftest import ...`: several
`conftest.py` files share that module name)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import openai
import pytest

from app_harness import (
    TURN_TIMEOUT,
    RunningApp,
    fake_engine_command,
    load_fake,
    make_settings,
    pid_gone,
    poll,
    serve_app,
)
from legal_assistant.config import Settings


def sse_data(raw_lines: list[str]) -> list[str]:
    """The `data:` payloads of SSE lines, in order."""
    return [ln[5:].removeprefix(" ") for ln in raw_lines if ln.startswith("data:")]


class Gateway(RunningApp):
    """A running app: its URL, its state, and clients pointed at it (httpx's and the
    official `openai` one)."""

    def openai(self, api_key: str = "unused", **kw: Any) -> openai.AsyncOpenAI:
        """The official client; its httpx client ignores proxy variables."""
        return openai.AsyncOpenAI(
            base_url=f"{self.url}/v1",
            api_key=api_key,
            timeout=TURN_TIMEOUT,
            http_client=openai.DefaultAsyncHttpxClient(trust_env=False),
            **kw,
        )

    async def metrics(self) -> str:
        resp = await self.client.get("/metrics")
        assert resp.status_code == 200, resp.text
        return resp.text

    async def stream_lines(self, body: dict[str, Any], path: str = "/v1/chat/completions") -> Any:
        """POST a streaming request; return (status, headers, every body line)."""
        async with self.client.stream("POST", path, json=body) as resp:
            lines = [ln async for ln in resp.aiter_lines()]
            return resp.status_code, resp.headers, lines

    async def wait_pid_gone(self, pid: int, timeout: float = 30.0) -> None:
        await poll(lambda: pid_gone(pid), timeout=timeout, what=f"pid {pid} to exit")

    poll = staticmethod(poll)
    pid_gone = staticmethod(pid_gone)
    sse_data = staticmethod(sse_data)


ServeGateway = Callable[..., contextlib.AbstractAsyncContextManager[Gateway]]


@contextlib.asynccontextmanager
async def _serve(
    settings: Settings, *, headers: dict[str, str] | None = None
) -> AsyncIterator[Gateway]:
    async with serve_app(settings, headers=headers) as running:
        yield Gateway(running.url, running.app, running.settings, running.client)


@pytest.fixture
def serve_gateway() -> ServeGateway:
    """`async with serve_gateway(settings) as gw:` — the app on a free loopback port."""
    return _serve


@pytest.fixture
def gw_fake_settings(tmp_path: Path) -> Callable[..., Settings]:
    """Settings whose MLX command is the fake engine; overrides as keyword arguments."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "mlx_command": fake_engine_command(),
            "load_timeout_s": 15.0,
            "drain_timeout_s": 60.0,
            "stop_grace_s": 2.0,
        }
        values.update(overrides)
        return make_settings(tmp_path, tmp_path / "models", **values)

    return make


@pytest.fixture
def gw_real_settings(tmp_path: Path, models_dir: Path) -> Callable[..., Settings]:
    """Real engine (mlx_lm.server) settings, isolated in a temp dir."""

    def make(**overrides: Any) -> Settings:
        return make_settings(tmp_path, models_dir, **{"drain_timeout_s": 60.0, **overrides})

    return make


@pytest.fixture(scope="session")
def fake_engine_module() -> ModuleType:
    """tests/fakes/fake_engine.py (for `expected_text(n)`)."""
    return load_fake("fake_engine")


@pytest.fixture
def fake_ollama() -> Iterator[Any]:
    with load_fake("fake_ollama").FakeOllama() as server:
        yield server


@pytest.fixture
async def scripted_gateway(
    gw_fake_settings: Callable[..., Settings],
) -> AsyncIterator[tuple[Gateway, Any]]:
    """(the app, the scripted engine): tests/fakes/scripted_engine.py serving `scripted`,
    configured as the OpenAI endpoint of `openai:scripted` (OPENAI_ENDPOINTS)."""
    from legal_assistant.config import OpenAIEndpoint

    with load_fake("scripted_engine").ScriptedEngine(["scripted"]) as engine:
        endpoint = OpenAIEndpoint(name="scripted", base_url=engine.url, models=["scripted"])
        async with _serve(gw_fake_settings(openai_endpoints=[endpoint])) as gw:
            yield gw, engine
