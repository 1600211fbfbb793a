"""The bundled model really loops on the README question: the turn is cut, the text before
the loop kept, and the engine freed at once — against the real `mlx_lm.server` and the
bundled SmolLM2 (no stand-in). One app (one warm engine) for the module."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import psutil
import pytest
import pytest_asyncio

from app_harness import BUNDLED, RunningApp, make_settings, poll, serve_app

pytestmark = pytest.mark.asyncio(loop_scope="module")

README_QUESTION = "Bonjour, qu'est-ce qu'un contrat de bail ?"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def app(
    tmp_path_factory: pytest.TempPathFactory, models_dir: Path, bundled_model: Path
) -> AsyncIterator[RunningApp]:
    # 1,024 tokens, today's default for chat turns: what the loop ran to before it was cut.
    settings = make_settings(tmp_path_factory.mktemp("loops-real"), models_dir, mlx_max_tokens=1024)
    async with serve_app(settings) as running:
        yield running


def cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


async def test_the_readme_question_loop_is_cut_and_the_engine_freed(app: RunningApp) -> None:
    turn = await app.chat(message=README_QUESTION, model_id=BUNDLED, temperature=0.0)
    assert turn.names[-1] == "done", turn.events
    done = turn.one("done")
    assert done["stopped"] == "repetition", (done, turn.text[-400:])
    assert done["notice"] == "Réponse interrompue : le modèle se répétait."
    kept = turn.text[: done["kept_chars"]].rstrip()
    assert kept and len(kept) < len(turn.text), "the repeated tail is dropped"
    # Cut long before max_tokens (the streamed text holds the loop's few copies only).
    assert len(turn.all("token")) < 600, len(turn.all("token"))

    saved = (await app.conversation(turn.conversation_id))["messages"][-1]
    assert saved["content"] == kept and saved["stopped"] == "repetition"
    assert saved["partial"] is False and saved["error_code"] is None

    # The engine request was cancelled, not left generating to max_tokens for nobody:
    # our admission slot and lease are back at once, and the engine process goes idle.
    state = app.state
    assert state.admission.load(BUNDLED) == (0, 0)
    status = await app.mlx_status()
    pid = status["pid"]
    assert isinstance(pid, int)
    samples = [(time.monotonic(), cpu_seconds(pid))]

    async def idle() -> bool:
        now, cpu = time.monotonic(), cpu_seconds(pid)
        if now - samples[-1][0] < 0.4:
            return False
        rate = (cpu - samples[-1][1]) / (now - samples[-1][0])
        samples.append((now, cpu))
        # A generating engine burns about a core; an idle one next to nothing.
        return rate < 0.2

    await poll(idle, timeout=15, interval=0.5, what="the engine to stop generating")

    # And the next request is served at once by the same engine.
    nxt = await app.chat(message="Bonjour", model_id=BUNDLED, max_tokens=8)
    assert nxt.names[-1] == "done", nxt.events
    assert nxt.one("done")["engine_port"] == done["engine_port"]
