"""Several people on one real engine (issue 21): the bundled model on the real
`mlx_lm.server` (continuous batching) and the real `llama-server` (parallel slots), both
launched by the supervisor with their batching flags, answer four different questions
sent at once — each with exactly what the same question gets alone (greedy decoding),
so no answer leaks into another's."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from legal_assistant.config import Settings
from legal_assistant.runtime.installer import INSTALL_HINT, is_installed
from legal_assistant.runtime.supervisor import Supervisor

QUESTIONS = [
    "What is the capital of France?",
    "What is the capital of Italy?",
    "Name three colours of the rainbow.",
    "Qu'est-ce qu'un contrat de bail ?",
]


@pytest.fixture(params=["mlx:smollm2-135m", "llamacpp:smollm2-135m"])
async def engine_url(request: pytest.FixtureRequest, settings: Settings) -> AsyncIterator[str]:
    model: str = request.param
    if model.startswith("llamacpp"):
        assert is_installed(settings.engines_dir, "llamacpp"), (
            f"llama-server missing: run `make engines` or `{INSTALL_HINT}`"
        )
    supervisor = Supervisor(settings)
    try:
        engine = await supervisor.ensure_ready(model)
        assert supervisor.parallelism(model) >= len(QUESTIONS)  # all four decode together
        yield engine.base_url
    finally:
        await supervisor.shutdown()


async def answer(client: httpx.AsyncClient, url: str, question: str) -> str:
    resp = await client.post(
        f"{url}/v1/chat/completions",
        json={
            "messages": [{"role": "user", "content": question}],
            "max_tokens": 16,
            "temperature": 0.0,
        },
    )
    resp.raise_for_status()
    return str(resp.json()["choices"][0]["message"]["content"])


async def test_four_concurrent_answers_are_each_the_answer_alone(engine_url: str) -> None:
    async with httpx.AsyncClient(trust_env=False, timeout=300) as client:
        alone = [await answer(client, engine_url, q) for q in QUESTIONS]
        together = await asyncio.gather(*(answer(client, engine_url, q) for q in QUESTIONS))
    assert len(set(alone)) == len(QUESTIONS), alone  # distinct: a mix-up would show
    assert list(together) == alone
