"""How a chat turn ends: a loop cut (`stopped: "repetition"`), `max_tokens` reached, or a
natural end — through the real app and database, with a scripted OpenAI-compatible
endpoint (tests/fakes/scripted_endpoint.py) standing in for a model that loops exactly
when told to (the bundled model's real loop: test_loops_real.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from app_harness import RunningApp, load_fake, make_settings, serve_app, wait_until
from legal_assistant.config import OpenAIEndpoint

pytestmark = pytest.mark.asyncio(loop_scope="module")

scripted = load_fake("scripted_endpoint")
LOOP = "Le bail est un contrat de location d'un bien immobilier."
PLAIN = "Un bail est un contrat de louage : le bailleur loue un bien au preneur."


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def endpoint() -> AsyncIterator[Any]:
    scripts = {
        "looping": scripted.Script("Bonjour. " + LOOP, loop=True, delay_s=0.002),
        "plain": scripted.Script(PLAIN),
    }
    async with scripted.scripted_endpoint(scripts) as ep:
        yield ep


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def app(
    tmp_path_factory: pytest.TempPathFactory, models_dir: Path, endpoint: Any
) -> AsyncIterator[RunningApp]:
    remote = OpenAIEndpoint(name="scripted", base_url=endpoint.url, models=["looping", "plain"])
    settings = make_settings(
        tmp_path_factory.mktemp("endings"), models_dir, openai_endpoints=[remote]
    )
    async with serve_app(settings) as running:
        yield running


@pytest.mark.parametrize(
    ("language", "notice"),
    [
        ("fr", "Réponse interrompue : le modèle se répétait."),
        ("en", "Answer stopped: the model was repeating itself."),
    ],
)
async def test_a_loop_is_cut_and_its_request_closed(
    app: RunningApp, endpoint: Any, language: str, notice: str
) -> None:
    hung_up = len(endpoint.hung_up)
    turn = await app.chat(
        message="Qu'est-ce qu'un bail ?", model_id="openai:looping", language=language
    )
    done = turn.one("done")
    assert done["stopped"] == "repetition" and done["notice"] == notice
    kept = f"Bonjour. {LOOP}"
    assert turn.text[: done["kept_chars"]] == kept
    assert len(turn.all("token")) < 60  # the third copy at most, of a loop with no end
    saved = (await app.conversation(turn.conversation_id))["messages"][-1]
    assert saved["content"] == kept and saved["stopped"] == "repetition"
    # The upstream request was closed by the cut, not left running.
    await wait_until(lambda: len(endpoint.hung_up) > hung_up, 10, "the endpoint saw the hang-up")
    assert endpoint.hung_up[-1] == "looping"


async def test_max_tokens_is_named_as_the_cause(app: RunningApp) -> None:
    turn = await app.chat(message="Un bail ?", model_id="openai:plain", max_tokens=5)
    done = turn.one("done")
    assert done["stopped"] == "max_tokens"
    assert done["notice"] == "Réponse tronquée : la longueur maximale a été atteinte."
    assert "kept_chars" not in done
    assert turn.text == " ".join(PLAIN.split(" ")[:5]) + " "
    saved = (await app.conversation(turn.conversation_id))["messages"][-1]
    assert saved["stopped"] == "max_tokens" and saved["content"] == turn.text


async def test_a_natural_end_carries_no_stop(app: RunningApp) -> None:
    turn = await app.chat(message="Un bail ?", model_id="openai:plain")
    done = turn.one("done")
    assert "stopped" not in done and "notice" not in done
    assert turn.text.strip() == PLAIN
    saved = (await app.conversation(turn.conversation_id))["messages"][-1]
    assert saved["stopped"] is None and saved["content"] == turn.text
