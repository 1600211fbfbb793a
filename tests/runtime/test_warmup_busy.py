"""Warming never disturbs an answer in flight (real `mlx_lm.server`, two real models).

Residency "swap" keeps one MLX engine: warming model B while model A streams would have to
evict A. A warm-up must refuse (`engine_busy`) instead of draining or cutting A, and the
answer on A must finish whole."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from legal_assistant.catalog import parse_model_id
from legal_assistant.config import Settings
from legal_assistant.errors import LegalAssistantError
from legal_assistant.runtime.state import EngineState
from legal_assistant.runtime.supervisor import Supervisor
from legal_assistant.runtime.warmup import Warmer, warm

BUNDLED = "mlx:smollm2-135m"


async def test_warming_another_model_during_a_stream_never_cuts_it(
    settings: Settings,
    bundled_model: Path,
    second_model: Path,
    make_sup: Callable[[Settings], Supervisor],
) -> None:
    other = f"mlx:{second_model}"
    sup = make_sup(settings.model_copy(update={"residency": "swap"}))
    lease = await sup.acquire(BUNDLED)
    engine = lease.engine
    pid = engine.pid
    body = {
        "model": engine.served_model,
        "messages": [{"role": "user", "content": "Écris un long poème sur la mer."}],
        "max_tokens": 96,
        "temperature": 0.0,
        "stream": True,
    }
    chunks: list[dict[str, object]] = []
    finish: list[str] = []
    try:
        async with (
            httpx.AsyncClient(timeout=120, trust_env=False) as client,
            client.stream(
                "POST", f"{engine.base_url}/v1/chat/completions", content=json.dumps(body)
            ) as resp,
        ):
            assert resp.status_code == 200
            lines = resp.aiter_lines()
            warmed = False
            async for line in lines:
                if not line.startswith("data: {"):
                    continue
                data = json.loads(line[6:])
                chunks.append(data)
                for choice in data.get("choices", []):
                    if choice.get("finish_reason"):
                        finish.append(choice["finish_reason"])
                if not warmed and len(chunks) >= 2:
                    warmed = True  # mid-answer: the first tokens are out
                    with pytest.raises(LegalAssistantError) as busy:
                        await warm(sup, other)
                    assert busy.value.code == "engine_busy"
                    # The background form logs and gives up the same way.
                    assert await Warmer(sup).start(other) is None
                    assert engine.state is EngineState.READY and engine.pid == pid
    finally:
        lease.release()
    assert finish and finish[-1] in ("length", "stop"), chunks[-3:]
    assert len(chunks) > 10  # the answer went on after the warm-ups were refused
    assert engine.pid == pid
    refused = sup.engine_for(parse_model_id(other))
    assert refused is None or refused.pid is None  # B was never spawned

    # Once A is idle, warming B is allowed to take its place.
    result = await asyncio.wait_for(warm(sup, other), 120)
    assert result.started and result.prefilled
    assert engine.state is EngineState.STOPPED
