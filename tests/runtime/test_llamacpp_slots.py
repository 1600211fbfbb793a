"""KV slots kept across swaps, against the real `llama-server` and the bundled GGUF: a slot
saved when the engine is switched away, restored when it comes back (cached tokens checked
through /slots and `timings`, greedy answer identical), a corrupted or lying slot file
dropped instead of served, and the directory's size bound."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from legal_assistant.config import Settings
from legal_assistant.runtime.bundled import bundled_gguf_path
from legal_assistant.runtime.engines.base import EngineHandle
from legal_assistant.runtime.engines.llamacpp import LlamaCppSpec, slot_dir, slot_key
from legal_assistant.runtime.installer import INSTALL_HINT, is_installed
from legal_assistant.runtime.kv_slots import MIN_TOKENS_WORTH_SAVING, slot_list
from legal_assistant.runtime.supervisor import Supervisor

if TYPE_CHECKING:
    from legal_assistant.runtime import Engine

MODEL = "llamacpp:smollm2-135m"
# A long, fixed prefix (a dossier's passages) so the slot is worth keeping.
PASSAGES = " ".join(
    f"Article {i}. Le bailleur est tenu de délivrer au preneur le logement en bon état "
    f"d'usage et de réparation, et d'en assurer la jouissance paisible ({i})."
    for i in range(1, 7)
)
PROMPT = f"{PASSAGES}\n\nQuestion : quelles sont les obligations du bailleur ?"


@pytest.fixture
async def sup(settings: Settings) -> AsyncIterator[Supervisor]:
    assert is_installed(settings.engines_dir, "llamacpp"), (
        f"llama-server missing: run `make engines` or `{INSTALL_HINT}`"
    )
    supervisor = Supervisor(settings.model_copy(update={"llamacpp_parallel": 2}))
    try:
        yield supervisor
    finally:
        await supervisor.shutdown()


async def complete(engine: Engine, prompt: str = PROMPT) -> dict[str, Any]:
    async with httpx.AsyncClient(trust_env=False, timeout=300) as client:
        resp = await client.post(
            f"{engine.base_url}/v1/chat/completions",
            json={
                "model": engine.served_model,
                "messages": [{"role": "user", "content": prompt}],
                "max_tokens": 16,
                "temperature": 0.0,
            },
        )
        resp.raise_for_status()
        data: dict[str, Any] = resp.json()
        return data


def answer(data: dict[str, Any]) -> str:
    return str(data["choices"][0]["message"]["content"])


def handle(engine: Engine, settings: Settings, http: httpx.AsyncClient) -> EngineHandle:
    assert engine.served_model is not None
    return EngineHandle(
        engine_id=engine.id,
        ref=engine.ref,
        base_url=engine.base_url,
        model_arg=engine.served_model,
        served_model=engine.served_model,
        settings=settings,
        http=http,
    )


async def slots_of(engine: Engine) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(trust_env=False, timeout=60) as client:
        return await slot_list(client, engine.base_url)


async def switch_away(sup: Supervisor, tmp_path: Path) -> Engine:
    """Switch to another GGUF file: the supervisor stops the model's engine, whose spec
    saves its slots first (before_stop)."""
    other = tmp_path / "other.gguf"
    if not other.exists():
        await asyncio.to_thread(shutil.copyfile, bundled_gguf_path(), other)
    return await sup.ensure_ready(f"llamacpp:{other}")


async def come_back(sup: Supervisor) -> Engine:
    """Switch back: a new process serves the model; its slots are restored (after_ready)
    before the supervisor hands it out."""
    return await sup.ensure_ready(MODEL)


def saved_files(settings: Settings) -> list[Path]:
    key = slot_key(str(bundled_gguf_path()), settings)
    return sorted(slot_dir(settings).glob(f"{key}-*.bin"))


async def test_slot_saved_at_switch_and_restored(
    sup: Supervisor, settings: Settings, tmp_path: Path
) -> None:
    engine = await sup.ensure_ready(MODEL)
    cold = await complete(engine)
    prompt_tokens = cold["timings"]["prompt_n"]
    assert prompt_tokens >= MIN_TOKENS_WORTH_SAVING  # processed in full: nothing cached
    first_pid = engine.pid

    await switch_away(sup, tmp_path)
    back = await come_back(sup)
    assert back.pid != first_pid
    [saved] = saved_files(settings)
    meta = json.loads(saved.with_suffix(".json").read_text())
    assert meta["n_tokens"] >= prompt_tokens

    # The restore was verified by continuing the saved prompt (all its tokens but the
    # last) from the cache: /slots reports that prompt; the other slot holds the probe's.
    held = sorted((s.get("n_prompt_tokens") or 0 for s in await slots_of(back)), reverse=True)
    assert held[0] == meta["n_tokens"] - 1 and all(n < 10 for n in held[1:])

    warm = await complete(back)
    assert answer(warm) == answer(cold)  # greedy: the restored cache changes nothing
    assert warm["timings"]["prompt_n"] < prompt_tokens // 10  # the prefix came from disk
    assert warm["timings"]["cache_n"] >= prompt_tokens - 2


async def test_corrupted_slot_file_is_dropped_not_served(
    sup: Supervisor, settings: Settings, tmp_path: Path
) -> None:
    engine = await sup.ensure_ready(MODEL)
    cold = await complete(engine)
    await switch_away(sup, tmp_path)
    [saved] = saved_files(settings)
    data = bytearray(saved.read_bytes())
    for i in range(len(data) // 2, len(data) // 2 + 4096):  # garbage in the KV tensors
        data[i] ^= 0x5A
    saved.write_bytes(bytes(data))

    back = await come_back(sup)
    assert saved_files(settings) == [] and not saved.with_suffix(".json").exists()
    assert all((s.get("n_prompt_tokens") or 0) < 10 for s in await slots_of(back))
    again = await complete(back)
    assert again["timings"]["prompt_n"] == cold["timings"]["prompt_n"]  # prefilled anew
    assert answer(again) == answer(cold)


async def test_restore_reporting_other_tokens_than_saved_is_dropped(
    sup: Supervisor, settings: Settings, tmp_path: Path
) -> None:
    """llama.cpp's silent bad restores (#26676, #28194) report other token counts than
    were saved; a sidecar claiming more than the file holds produces exactly that report."""
    engine = await sup.ensure_ready(MODEL)
    await complete(engine)
    await switch_away(sup, tmp_path)
    [saved] = saved_files(settings)
    side = saved.with_suffix(".json")
    meta = json.loads(side.read_text())
    side.write_text(json.dumps({**meta, "n_tokens": meta["n_tokens"] + 7}))

    back = await come_back(sup)
    assert saved_files(settings) == []
    assert all((s.get("n_prompt_tokens") or 0) < 10 for s in await slots_of(back))


async def test_cache_bound_evicts_the_oldest_file(
    sup: Supervisor, settings: Settings, tmp_path: Path
) -> None:
    """Two saves of different models under a bound that holds one: the older goes. The
    second save is run by hand with a bound sized from the first file."""
    engine = await sup.ensure_ready(MODEL)
    await complete(engine)
    second = await switch_away(sup, tmp_path)  # the bundled model's slot is saved
    [first_file] = saved_files(settings)
    size = first_file.stat().st_size
    bounded = settings.model_copy(update={"kv_cache_max_gb": size * 1.5 / 1024**3})

    await complete(second)
    async with httpx.AsyncClient(trust_env=False, timeout=120) as http:
        await LlamaCppSpec().before_stop(handle(second, bounded, http), reason="switch")
    other_key = slot_key(str(tmp_path / "other.gguf"), bounded)
    assert not first_file.exists()
    assert [p.name.split("-")[0] for p in slot_dir(settings).glob("*.bin")] == [other_key]
